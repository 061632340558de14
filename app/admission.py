"""At most ``KB_WEB_THREADS`` requests inside the app at once; the rest wait their turn.

FastAPI runs each sync dependency and the route in the threadpool one after another,
giving the thread back in between. Without a bound on requests, 128 clients each get as
far as authentication (checking out a database connection) and then queue for a thread
to run their route, holding the connection: the pool runs dry while the threads that
could finish wait for connections. Admitting only as many requests as there are threads
(and pool connections for them) means every admitted request can finish; the others
wait here, cheaply, and are answered 503 with ``Retry-After`` if their turn does not
come within ``KB_REQUEST_QUEUE_SECONDS``. ``/healthz`` and static files skip the queue.
"""

from __future__ import annotations

import logging

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import Unavailable
from app.handlers import BUSY, answer

log = logging.getLogger(__name__)

_EXEMPT = ("/healthz", "/static/", "/static-docs/")


class Admission:
    def __init__(self, app: ASGIApp, *, limit: int, wait_s: float) -> None:
        self.app = app
        self.limit = limit
        self.wait_s = wait_s
        # Created on the first request: a semaphore belongs to the running event loop.
        self._slots: anyio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(_EXEMPT):
            await self.app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = anyio.Semaphore(self.limit)
        with anyio.move_on_after(self.wait_s) as waited:
            await self._slots.acquire()
        if waited.cancelled_caught:
            log.warning(
                "%s %s: no request slot free in %.0f s", scope["method"], scope["path"], self.wait_s
            )
            await self._busy(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()

    async def _busy(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = answer(Request(scope, receive), Unavailable(BUSY))
        await response(scope, receive, send)
