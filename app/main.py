"""The FastAPI application factory; nothing heavy happens at import time."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.sessions import SessionMiddleware
from swagger_ui_bundle import swagger_ui_path

from app.auth.deps import CsrfFailed, NotAuthenticated, PermissionDenied
from app.auth.keys import secret_key
from app.auth.pages import router as auth_pages
from app.collections.pages import router as collections_pages
from app.collections.routes import router as collections_router
from app.documents.pages import router as documents_pages
from app.documents.routes import router as documents_router
from app.jobs.pages import router as jobs_pages
from app.runtime import Runtime
from app.search.pages import router as search_pages
from app.search.routes import router as search_router
from app.settings import Settings, get_settings
from app.web import WEB_DIR, is_htmx, make_templates, render

log = logging.getLogger(__name__)

# A background service (e.g. the worker): started with the runtime, returns its stop function.
Service = Callable[[Runtime], Callable[[], None]]


class SecurityHeaders(BaseHTTPMiddleware):
    """Pages load scripts, styles and images only from this server and are never framed."""

    CSP = (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; object-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
        "form-action 'self'"
    )

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        if request.url.path == "/docs":  # Swagger UI starts itself with an inline script
            return response
        response.headers.setdefault("Content-Security-Policy", self.CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response


def announce_admin_password(password: str) -> None:
    """Print a generated first-admin password once, where the person starting the server sees it."""
    bar = "=" * 64
    print(
        f"\n{bar}\nCreated the first admin user.\n  username: admin\n  password: {password}\n"
        f"It is shown only this once: log in and change it, or set KB_ADMIN_PASSWORD.\n{bar}\n",
        file=sys.stderr,
        flush=True,
    )


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    services: list[Service] | None = None,
) -> FastAPI:
    """Build the app; the runtime (database, embedders, indexes) opens at start-up."""
    settings = settings or (runtime.settings if runtime else get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or Runtime.create(settings)
        rt.ensure_default_collection()
        generated = rt.ensure_first_admin()
        if generated:
            announce_admin_password(generated)
        app.state.runtime = rt
        stops = [start(rt) for start in services or []]
        try:
            yield
        finally:
            for stop in stops:
                stop()
            if runtime is None:
                rt.close()

    app = FastAPI(
        title="Knowledge base",
        version="0.1.0",
        lifespan=lifespan,
        # FastAPI's own /docs and /redoc load their scripts from a CDN; ours are served
        # from the swagger-ui-bundle package, so the docs work on a network without internet.
        docs_url=None,
        redoc_url=None,
        # No telemetry leaves this server, whatever the environment says.
        telemetry={"auto_configure": False, "tracing": False, "metrics": False, "logs": False},
    )
    app.state.templates = make_templates()
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key(settings),
        session_cookie="kb_session",
        max_age=settings.session_max_age_s,
        same_site="lax",
        https_only=settings.cookie_secure,
    )
    app.mount("/static", StaticFiles(directory=str(WEB_DIR / "static")), name="static")
    app.mount("/static-docs", StaticFiles(directory=swagger_ui_path), name="static-docs")
    app.add_middleware(SecurityHeaders)
    for router in (
        search_router,
        documents_router,
        collections_router,
        auth_pages,
        search_pages,
        documents_pages,
        collections_pages,
        jobs_pages,
    ):
        app.include_router(router)
    _error_pages(app)

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Knowledge base API",
            swagger_js_url="/static-docs/swagger-ui-bundle.js",
            swagger_css_url="/static-docs/swagger-ui.css",
            swagger_favicon_url="/static-docs/favicon-32x32.png",
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns per damaged object
    return app


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error_pages(app: FastAPI) -> None:
    """One place that turns domain errors into HTTP answers: JSON for the API, pages else."""

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
        if _is_api(request):
            return JSONResponse(
                {"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        target = "/login?next=" + quote(
            request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
        if is_htmx(request):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    def forbidden(request: Request, exc: Exception, message_id: str) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": str(exc)}, status_code=403)
        ctx = {"message_id": message_id, "status": 403}
        return render(request, "error.html", ctx, status_code=403)

    @app.exception_handler(PermissionDenied)
    async def permission_denied(request: Request, exc: PermissionDenied) -> Response:
        return forbidden(request, exc, "You do not have permission to do this.")

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, exc: CsrfFailed) -> Response:
        return forbidden(request, exc, "Your session expired; reload the page and try again.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request) or request.url.path.startswith("/static/"):
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
            )
        message = "Page not found" if exc.status_code == 404 else str(exc.detail)
        return render(
            request,
            "error.html",
            {"message_id": message, "status": exc.status_code},
            status_code=exc.status_code,
        )
