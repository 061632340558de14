"""The FastAPI application factory; nothing heavy happens at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.templating import Jinja2Templates

from app.collections.routes import router as collections_router
from app.documents.routes import router as documents_router
from app.runtime import Runtime
from app.search.routes import router as search_router
from app.settings import Settings, get_settings

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

# A background service (e.g. the worker): started with the runtime, returns its stop function.
Service = Callable[[Runtime], Callable[[], None]]


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
        app.state.runtime = rt
        stops = [start(rt) for start in services or []]
        try:
            yield
        finally:
            for stop in stops:
                stop()
            if runtime is None:
                rt.close()

    app = FastAPI(title="Knowledge base", version="0.1.0", lifespan=lifespan)
    app.state.templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))
    app.include_router(search_router)
    app.include_router(documents_router)
    app.include_router(collections_router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return app
