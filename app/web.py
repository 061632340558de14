"""Rendering pages: one template set for full pages and their htmx fragments.

A page route calls ``render(request, "page.html", {...}, block="results")``: a normal
request gets the whole page, an htmx request (``HX-Request`` header) only that block,
rendered from the same template by jinja2-fragments, so the two never drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from jinja2 import pass_context
from jinja2.runtime import Context
from jinja2_fragments.fastapi import Jinja2Blocks

from app.auth.deps import CSRF_FIELD, CSRF_HEADER, csrf_token
from app.i18n import (
    LANGUAGE_NAMES,
    SUPPORTED,
    label,
    negotiate,
    reason_translator,
    translator,
)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
LANG_COOKIE = "kb_lang"


def make_templates() -> Jinja2Blocks:
    templates = Jinja2Blocks(directory=str(WEB_DIR / "templates"))
    # ``languages`` is the header's language switcher: pages must not pass their own.
    templates.env.globals.update(
        languages=SUPPORTED, language_names=LANGUAGE_NAMES, csrf_field=CSRF_FIELD
    )
    templates.env.filters["filesize"] = filesize
    templates.env.filters["label"] = label_filter
    return templates


@pass_context
def label_filter(context: Context, value: object, group: str) -> str:
    """``{{ value|label('kind') }}``: a stored value's label in the page's language
    (the tables are ``app.i18n.LABELS``)."""
    return label(context["_"], group, value)


def filesize(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def request_language(request: Request) -> str:
    return negotiate(request.headers.get("accept-language"), request.cookies.get(LANG_COOKIE))


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    block: str | None = None,
    status_code: int = 200,
) -> Response:
    """The page, or only ``block`` of it when htmx asks."""
    lang = request_language(request)
    ctx: dict[str, Any] = {
        "lang": lang,
        "_": translator(lang),
        "reason": reason_translator(lang),
        "user": getattr(request.state, "viewer", None),
        "csrf_token": csrf_token(request),
        "csrf_header": CSRF_HEADER,
        "path": request.url.path,
    }
    ctx.update(context or {})
    templates: Jinja2Blocks = request.app.state.templates
    if block is not None and is_htmx(request):
        return templates.TemplateResponse(
            request, name, ctx, status_code=status_code, block_name=block
        )
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


# Paths answered in JSON: the REST API, and the OpenAI-compatible facade (app/openai_facade),
# whose clients parse OpenAI's error shape.
API_PREFIXES = ("/api/", "/v1/")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def api_error(
    path: str, message: object, status_code: int, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """An error in JSON: ``{"detail": ...}`` under /api/, OpenAI's ``{"error": {...}}``
    under /v1/ (so an OpenAI client shows the message rather than a parse error)."""
    if path.startswith("/v1/"):
        kind = "invalid_request_error" if status_code < 500 else "server_error"
        body: dict[str, object] = {
            "error": {"message": str(message), "type": kind, "param": None, "code": None}
        }
    else:
        body = {"detail": message}
    return JSONResponse(body, status_code=status_code, headers=headers)
