"""Security headers on every response, as plain ASGI middleware (no body buffering).

Pages load scripts, styles and images only from this server and are never framed;
nothing but the static files may be cached, since pages and API answers hold documents
(and the tokens page shows a new token once).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'"
)
_STATIC = ("/static/", "/static-docs/")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith(_STATIC)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                # A route may set its own (the API docs allow their one inline script).
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = CSP
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if not static:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
