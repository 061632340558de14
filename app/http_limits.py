"""Request-body limits, enforced before a byte is spooled (pure ASGI middleware).

Starlette parses a multipart form, spooling its files to temporary files, before any
route dependency runs, so authentication and the per-file size check come too late to
protect the disk. :class:`BodyLimits` runs first and

* answers an upload (``POST /api/v1/documents``, ``POST /upload``) that carries neither an
  ``Authorization`` header nor a session naming a user with 401 (the API) or the way to
  the login page, without reading its body; the real authentication still runs in the
  route;
* answers 413 to a request whose ``Content-Length`` is over the limit of its path: an
  upload may carry :data:`FILES_PER_REQUEST` files of ``max_upload_bytes`` plus the form
  around them, every other request (``/login`` included) :data:`DEFAULT_LIMIT`;
* counts the bytes of a body sent without ``Content-Length`` (chunked) and of each part
  of an upload form, and stops reading with 413 as soon as the request, or one file in
  it, is over its limit.

Answers are JSON ``{"detail": ...}`` under ``/api/``, a translated page elsewhere (for an
htmx upload, the upload page's result block). It must sit inside ``SessionMiddleware``
(added before it), which verifies the signed session cookie it looks at.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from urllib.parse import quote

from python_multipart.multipart import parse_options_header
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.text.sizes import human_size
from app.web import api_error, is_api_path, render

MIB = 1024 * 1024
DEFAULT_LIMIT = 1 * MIB  # forms, JSON, the login form: far more than any of them needs
FILES_PER_REQUEST = 20  # an upload may carry this many files of the largest size
FORM_OVERHEAD = 1 * MIB  # the other fields of an upload form, part headers, boundaries
PART_OVERHEAD = 64 * 1024  # a file part's headers and delimiter around its bytes
UPLOAD_PATHS = frozenset({"/api/v1/documents", "/upload"})
SESSION_COOKIE = "kb_session"

# Messages for a person (translated on pages; app/i18n_catalog.py).
REQUEST_TOO_LARGE = "The request is larger than the limit of {size}."
UPLOAD_TOO_LARGE = (
    "The upload is larger than the limit of {size} per request; send fewer files at a time."
)
FILE_TOO_LARGE = "A file is larger than the limit of {size} per file."
LOG_IN = "log in first, or send 'Authorization: Bearer <token>'"


class _BodyCut(Exception):
    """Raised to the app from ``receive`` once a body is over its limit."""


class _PartMeter:
    """Counts the bytes of each part of a multipart body as it streams by."""

    def __init__(self, boundary: bytes, limit: int) -> None:
        self.delimiter = b"\r\n--" + boundary
        self.limit = limit
        # The body's first delimiter has no CRLF before it: pretend it had.
        self.tail = b"\r\n"
        self.offset = -2  # the stream offset of ``tail``'s first byte
        self.part_start = 0  # the stream offset just after the last delimiter seen

    def feed(self, chunk: bytes) -> bool:
        """False once a part has grown past the limit."""
        data = self.tail + chunk
        at = data.find(self.delimiter)
        end = 0
        while at != -1:
            if self.offset + at - self.part_start > self.limit:  # a part that ended here
                return False
            end = at + len(self.delimiter)
            self.part_start = self.offset + end
            at = data.find(self.delimiter, end)
        # Keep what may be the start of a delimiter; everything before it is part data.
        keep = max(len(data) - len(self.delimiter) + 1, end)
        self.tail = data[keep:]
        self.offset += keep
        return self.offset - self.part_start <= self.limit


class BodyLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_upload_bytes: int,
        files_per_request: int = FILES_PER_REQUEST,
        default_limit: int = DEFAULT_LIMIT,
        upload_paths: Collection[str] = UPLOAD_PATHS,
    ) -> None:
        self.app = app
        self.upload_limit = max_upload_bytes * files_per_request + FORM_OVERHEAD
        self.file_limit = max_upload_bytes
        self.part_limit = max_upload_bytes + PART_OVERHEAD
        self.default_limit = default_limit
        self.upload_paths = frozenset(upload_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        path = str(scope["path"]).rstrip("/") or "/"
        upload = scope["method"] == "POST" and path in self.upload_paths
        if upload and not _may_upload(scope, headers):
            await _unauthenticated(scope, send)
            return
        limit = self.upload_limit if upload else self.default_limit
        message = UPLOAD_TOO_LARGE if upload else REQUEST_TOO_LARGE
        length = _content_length(headers)
        if length is not None and length > limit:
            await _too_large(scope, send, message, limit)
            return
        meter = _multipart_meter(headers, self.part_limit) if upload else None

        cut: tuple[str, int] | None = None  # (message, limit) once the body was cut off
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal cut, received
            if cut is not None:
                raise _BodyCut
            msg = await receive()
            if msg["type"] == "http.request":
                body = msg.get("body", b"")
                received += len(body)
                if received > limit:
                    cut = (message, limit)
                elif meter is not None and not meter.feed(body):
                    cut = (FILE_TOO_LARGE, self.file_limit)
                if cut is not None:
                    raise _BodyCut
            return msg

        async def guarded_send(msg: Message) -> None:
            nonlocal started
            if cut is not None and not started:
                return  # the app's answer to the cut-off body (a parse error): ours follows
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if cut is None or started:
                raise
        if cut is not None and not started:
            await _too_large(scope, send, *cut)


def _content_length(headers: Headers) -> int | None:
    try:
        return int(headers["content-length"])
    except (KeyError, ValueError):
        return None


def _multipart_meter(headers: Headers, limit: int) -> _PartMeter | None:
    kind, options = parse_options_header(headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        return None
    return _PartMeter(boundary, limit)


def _may_upload(scope: Scope, headers: Headers) -> bool:
    """Whether the request claims a user: a Bearer token, or a signed session cookie that
    names one (a server-side session id, or a user id)."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return True
    session = scope.get("session")
    if isinstance(session, Mapping):
        return isinstance(session.get("sid"), str) or isinstance(session.get("uid"), int)
    # Not behind SessionMiddleware: the cookie's presence is all there is to check.
    return f"{SESSION_COOKIE}=" in headers.get("cookie", "")


def _is_api(scope: Scope) -> bool:
    return is_api_path(str(scope["path"]))


def _is_htmx(headers: Headers) -> bool:
    return headers.get("hx-request") == "true"


async def _unauthenticated(scope: Scope, send: Send) -> None:
    """What ``NotAuthenticated`` gets from the app's handler, before the body is read."""
    headers = Headers(scope=scope)
    close = {"Connection": "close"}
    response: Response
    if _is_api(scope):
        response = api_error(
            str(scope["path"]), LOG_IN, 401, {"WWW-Authenticate": "Bearer", **close}
        )
    else:
        target = "/login?next=" + quote(str(scope["path"]))
        if _is_htmx(headers):
            response = Response(status_code=401, headers={"HX-Redirect": target, **close})
        else:
            response = RedirectResponse(target, status_code=303, headers=close)
    await response(scope, _no_body, send)


async def _too_large(scope: Scope, send: Send, message: str, limit: int) -> None:
    params = {"size": human_size(limit)}
    close = {"Connection": "close"}  # the rest of the body is never read
    response: Response
    if _is_api(scope):
        response = api_error(str(scope["path"]), message.format(**params), 413, close)
    elif "app" not in scope or "session" not in scope:  # no templates, or no CSRF token
        response = PlainTextResponse(message.format(**params), status_code=413, headers=close)
    else:
        request = Request(scope, _no_body)
        error = {"message": message, "params": params}
        if _is_htmx(request.headers) and str(scope["path"]).rstrip("/") == "/upload":
            response = render(
                request, "upload.html", {"error": error}, block="upload_results", status_code=413
            )
        else:
            ctx = {"message_id": message, "params": params, "status": 413}
            response = render(request, "error.html", ctx, status_code=413)
        response.headers.update(close)
    await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}
