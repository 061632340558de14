"""At most ``KB_WEB_THREADS`` requests inside the app at once, and of them at most
``KB_SEARCH_CONCURRENCY`` searches; the rest wait their turn.

FastAPI runs each sync dependency and the route in the threadpool one after another,
giving the thread back in between. Without a bound on requests, 128 clients each get as
far as authentication (checking out a database connection) and then queue for a thread
to run their route, holding the connection: the pool runs dry while the threads that
could finish wait for connections. Admitting only as many requests as there are threads
(and pool connections for them) means every admitted request can finish; the others
wait here, cheaply, and are answered 503 with ``Retry-After`` if their turn does not
come within ``KB_REQUEST_QUEUE_SECONDS``. ``/healthz`` and static files skip the queue.

A search is CPU work under Python's lock: 32 computing at once in one process spend their
time handing the lock to each other (29 against 23 ms of CPU a search with 4 at once,
and a worse tail). So the search API and the Search page also take one of
``KB_SEARCH_CONCURRENCY`` slots (:func:`search_slot`) before they touch a thread; the
other requests, a streamed answer waiting on its model above all, keep the many threads
they may need.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import anyio
from fastapi import Depends
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import Unavailable
from app.handlers import BUSY, answer

log = logging.getLogger(__name__)

_EXEMPT = ("/healthz", "/static/", "/static-docs/")


class Slots:
    """At most ``limit`` holders at once, first come first served; waiting costs no
    thread. :meth:`hold` raises :class:`Unavailable` (503, ``Retry-After``) past
    ``wait_s`` of waiting."""

    def __init__(self, limit: int, wait_s: float, *, name: str) -> None:
        self.limit = limit
        self.wait_s = wait_s
        self.name = name
        # Created on first use: a semaphore belongs to the running event loop.
        self._free: anyio.Semaphore | None = None

    async def take(self) -> bool:
        """One slot, or False when none came free within ``wait_s``."""
        if self._free is None:
            self._free = anyio.Semaphore(self.limit)
        with anyio.move_on_after(self.wait_s) as waited:
            await self._free.acquire()
        if waited.cancelled_caught:
            log.warning("no %s slot free in %.0f s", self.name, self.wait_s)
            return False
        return True

    def give(self) -> None:
        assert self._free is not None
        self._free.release()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        if not await self.take():
            raise Unavailable(BUSY)
        try:
            yield
        finally:
            self.give()


class Admission:
    def __init__(self, app: ASGIApp, *, limit: int, wait_s: float) -> None:
        self.app = app
        self.slots = Slots(limit, wait_s, name="request")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(_EXEMPT):
            await self.app(scope, receive, send)
            return
        # Out here an exception would not reach the app's handlers: answer it directly.
        if not await self.slots.take():
            log.warning("%s %s: answered busy", scope["method"], scope["path"])
            await self._busy(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.slots.give()

    async def _busy(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = answer(Request(scope, receive), Unavailable(BUSY))
        await response(scope, receive, send)


async def search_slot(request: Request) -> AsyncIterator[None]:
    """A dependency the search routes declare first: one of the process's search slots,
    held while the route runs. A request without a question searches nothing (the Search
    page's empty form; the API answers 422) and skips it."""
    if not request.query_params.get("q"):
        yield
        return
    slots: Slots = request.app.state.search_slots
    async with slots.hold():
        yield


# Ends with the route's function (before the response is sent).
SearchSlot = Annotated[None, Depends(search_slot, scope="function")]
