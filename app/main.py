"""The FastAPI application factory; nothing heavy happens at import time."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from swagger_ui_bundle import swagger_ui_path

from app import handlers
from app.admission import Admission, Slots
from app.answer.routes import router as answer_router
from app.auth.keys import secret_key
from app.auth.pages import router as auth_pages
from app.collections.access_pages import router as access_pages
from app.collections.pages import router as collections_pages
from app.collections.routes import groups_router
from app.collections.routes import router as collections_router
from app.documents.pages import router as documents_pages
from app.documents.routes import chunks_router
from app.documents.routes import router as documents_router
from app.feedback.pages import router as feedback_pages
from app.headers import CSP, SecurityHeaders
from app.http_limits import BodyLimits
from app.jobs.pages import router as jobs_pages
from app.llm import check_llm
from app.openai_facade.routes import router as openai_router
from app.runtime import Runtime
from app.search.pages import router as search_pages
from app.search.routes import router as search_router
from app.settings import Settings, get_settings
from app.text.dictionary import dictionary
from app.web import WEB_DIR, make_templates

log = logging.getLogger(__name__)

# A background service (e.g. the worker): started with the runtime, returns its stop function.
Service = Callable[[Runtime], Callable[[], None]]


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
        # Sync routes and dependencies run in this threadpool; the database pool has a
        # connection for each of its threads (Settings.db_pool_size), so none waits.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.web_threads
        rt.ensure_default_collection()
        generated = rt.ensure_first_admin()
        if generated:
            announce_admin_password(generated)
        app.state.runtime = rt
        # The cross-lingual dictionary takes seconds to parse: not on a reader's request.
        threading.Thread(target=dictionary, name="dictionary", daemon=True).start()
        if rt.llm is not None:  # logs what is wrong with KB_LLM_*; start-up does not wait
            threading.Thread(
                target=check_llm, args=(rt.llm,), name="llm-check", daemon=True
            ).start()
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
    app.state.search_slots = Slots(
        settings.search_concurrency, settings.request_queue_seconds, name="search"
    )
    # Inside SessionMiddleware (added after it): it needs the verified session.
    # Innermost: only admitted requests reach the threadpool and the database pool.
    app.add_middleware(Admission, limit=settings.web_threads, wait_s=settings.request_queue_seconds)
    app.add_middleware(BodyLimits, max_upload_bytes=settings.max_upload_bytes)
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
        answer_router,
        documents_router,
        chunks_router,
        collections_router,
        groups_router,
        auth_pages,
        search_pages,
        documents_pages,
        collections_pages,
        access_pages,
        jobs_pages,
        feedback_pages,
        openai_router,
    ):
        app.include_router(router)
    handlers.install(app)

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        return _api_docs()

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        # Async and without a database: it answers while every request thread is busy.
        return {"status": "ok"}

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns per damaged object
    return app


def _api_docs() -> Response:
    """Swagger UI from the swagger-ui-bundle package (no CDN); its one inline start-up
    script is allowed by its hash, so the page keeps a strict CSP."""
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Knowledge base API",
        swagger_js_url="/static-docs/swagger-ui-bundle.js",
        swagger_css_url="/static-docs/swagger-ui.css",
        swagger_favicon_url="/static-docs/favicon-32x32.png",
    )
    html = bytes(page.body).decode()
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in scripts
    )
    page.headers["Content-Security-Policy"] = CSP.replace(
        "script-src 'self'", f"script-src 'self' {hashes}"
    )
    return page
