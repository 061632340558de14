"""FastAPI dependencies: the runtime and a per-request session (the request owns it)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Path, Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.runtime import Runtime

log = logging.getLogger(__name__)


def runtime_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def get_runtime(request: Request) -> Runtime:
    # async: as a plain def each request would pay a trip through the threadpool for it.
    return runtime_of(request)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(rt: RuntimeDep) -> AsyncIterator[Session]:
    """A session for one request; handlers that write call ``commit()`` themselves, so the
    commit happens before the response is sent (and an uncommitted one rolls back).

    Async: a new session holds no connection until its first query (in the threadpool),
    so it is made here on the event loop, not in a trip through the threadpool; only the
    close, which returns the connection, runs in a thread."""
    session = rt.sessions()
    try:
        yield session
    finally:
        await _close_in_thread(session)


SessionDep = Annotated[Session, Depends(get_session)]


async def get_read_session(rt: RuntimeDep) -> AsyncIterator[Session]:
    """:func:`get_session` for a request that only reads (``Runtime.read_sessions``: on
    PostgreSQL no BEGIN and ROLLBACK round trips)."""
    session = rt.read_sessions()
    try:
        yield session
    finally:
        await _close_in_thread(session)


ReadSessionDep = Annotated[Session, Depends(get_read_session)]


async def _close_in_thread(session: Session) -> None:
    # As FastAPI closes a sync dependency: shielded from the request's cancellation,
    # and with a limiter of its own, so a request giving back its connection never
    # waits for a free thread (while the threads wait for connections).
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(_close, session, limiter=anyio.CapacityLimiter(1))


def _close(session: Session) -> None:
    try:
        session.close()
    except SQLAlchemyError as exc:
        # The response may be on its way already: a connection that died under the
        # request (a database restart) is discarded by the pool, and the close must
        # not turn a sent answer into a dropped connection.
        log.warning("closing a request's database session failed: %s", exc)


# Ids are 64-bit signed integers in both databases: a larger one is a 422, not an
# OverflowError from the driver.
MAX_ID = 2**63 - 1
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
