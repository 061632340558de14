"""The app's routes, read from the app itself (for the hostile-value and access walks)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute in ``routes``, included routers walked into."""
    for route in routes:
        if hasattr(route, "original_router"):  # FastAPI's included router
            yield from api_routes(route.original_router.routes)
        elif isinstance(route, APIRoute):
            yield route
