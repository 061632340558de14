"""Who is asking: a Bearer API token or a session cookie; role checks; CSRF.

Every route declares the role it needs with one of the aliases at the bottom, so the
check happens on the server for every request, pages and API alike.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.auth import service
from app.auth.models import Role, User, Viewer
from app.deps import RuntimeDep, SessionDep, runtime_of

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class NotAuthenticated(Exception):
    """No valid session or token: pages redirect to the login form, the API answers 401."""


class PermissionDenied(Exception):
    """Authenticated, but the role does not allow this (403)."""


class CsrfFailed(Exception):
    """A state-changing browser request without the session's CSRF token (403)."""


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


def client_address(request: Request) -> str:
    """The client's address: the peer's, or what a trusted proxy (KB_TRUSTED_PROXIES, applied
    by uvicorn before the app sees the request) said it forwarded for."""
    return request.client.host if request.client else "unknown"


def start_session(request: Request, session: Session, user: User) -> None:
    """Log ``user`` in: a new server-side session (flushed; the caller commits) and a fresh
    cookie with a new CSRF token, against session fixation."""
    lifetime = runtime_of(request).settings.session_max_age_s
    _row, secret = service.start_session(
        session,
        user,
        lifetime_s=lifetime,
        address=client_address(request),
        user_agent=request.headers.get("user-agent", ""),
    )
    request.session.clear()
    request.session.update(sid=secret, csrf=secrets.token_urlsafe(32))


def end_session(request: Request, session: Session) -> None:
    """End this browser's session on the server (the caller commits) and drop the cookie."""
    secret = request.session.get("sid")
    if isinstance(secret, str):
        service.end_session(session, secret)
    request.session.clear()


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL (default port left out), or None if it has none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def cross_site(request: Request) -> bool:
    """True when the browser says a page of another site sent this request.

    Browsers send ``Origin`` with every form POST (``Referer`` as a fallback); a request
    with neither is not a browser's cross-site form, and the CSRF token still decides.
    Allowed: this server's own origin (from the Host header) and KB_ALLOWED_ORIGINS.
    """
    sent = request.headers.get("origin") or request.headers.get("referer")
    if not sent:
        return False
    origin = _origin(sent)  # "null" (a sandboxed or privacy-hidden origin) gives None
    if origin is None:
        return True
    allowed = {_origin(str(request.base_url))}
    allowed.update(runtime_of(request).settings.allowed_origin_list)
    return origin not in allowed


def check_origin(request: Request) -> None:
    if cross_site(request):
        raise CsrfFailed("this form was sent from another site")


async def verify_csrf(request: Request) -> None:
    expected = request.session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    # Bytes, not str: compare_digest refuses non-ASCII text (a hostile token is a 403).
    if not expected or not sent or not hmac.compare_digest(str(expected).encode(), sent.encode()):
        raise CsrfFailed("the form is missing its security token; reload the page and try again")


def _session_user(request: Request, session: Session) -> User | None:
    """The user of the cookie's live server-side session. Reads only: an ended or expired
    session just drops the cookie."""
    secret = request.session.get("sid")
    if not isinstance(secret, str):
        if "uid" in request.session:  # a cookie of a version before server-side sessions
            request.session.clear()
        return None
    row = service.session_for(session, secret)
    if row is None:
        request.session.clear()
        return None
    request.state.session_id = row.id
    return row.user


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth[:7].lower() == "bearer " else None


def authenticated_user(request: Request, rt: RuntimeDep, session: SessionDep) -> User:
    """The user behind the request's token or session cookie; raises NotAuthenticated.

    A plain ``def``: FastAPI runs it in the threadpool, so its queries never block the
    event loop, and it uses the request's one session (one pool connection per request).
    It never writes: a token's last use is recorded off the request path.
    """
    token = _bearer(request)
    if token is not None:
        found = service.token_for(session, token)
        if found is None:
            raise NotAuthenticated("invalid, revoked or disabled API token")
        rt.token_usage.note(found.id, found.last_used_at)
        return _remember(request, found.user)
    user = _session_user(request, session)
    if user is None:
        raise NotAuthenticated("log in first, or send 'Authorization: Bearer <token>'")
    return _remember(request, user)


async def current_user(
    request: Request, user: Annotated[User, Depends(authenticated_user)]
) -> User:
    """The authenticated user; a browser's writes must come from this site (``Origin``)
    and carry the session's CSRF token.

    Async only to read a form body for the token; it touches no database.
    """
    # No CSRF check for a token: a browser never adds an Authorization header on its own.
    if _bearer(request) is None and request.method not in SAFE_METHODS:
        check_origin(request)
        await verify_csrf(request)
    return user


def optional_user(request: Request, session: SessionDep) -> User | None:
    """The logged-in user of a page that also works without one (the login page)."""
    user = _session_user(request, session)
    return _remember(request, user) if user is not None else None


def _remember(request: Request, user: User) -> User:
    """Keep the user on the request, with a plain copy for pages: an error page rendered
    after the request's session failed must not need the database to show who is in."""
    request.state.user = user
    request.state.viewer = Viewer.of(user)
    return user


def require(role: Role) -> Callable[..., Awaitable[User]]:
    # Async: the check reads the user's loaded columns only, and as a plain def it would
    # cost each request a trip through the threadpool.
    async def dependency(user: Annotated[User, Depends(current_user)]) -> User:
        if not user.can(role):
            raise PermissionDenied(f"this needs the {role.value} role")
        return user

    return dependency


CurrentUser = Annotated[User, Depends(current_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]
ReaderUser = Annotated[User, Depends(require(Role.READER))]
EditorUser = Annotated[User, Depends(require(Role.EDITOR))]
AdminUser = Annotated[User, Depends(require(Role.ADMIN))]
