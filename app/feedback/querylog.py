"""Every question asked, logged off the request path.

A search is a read: it must never wait for a write, nor fail because one failed (a busy
SQLite, a full disk). A request only notes the question in memory; a background thread
writes the notes in one short transaction every few seconds, and a failed write is
retried with the next batch (as app/auth/usage.py does for API tokens' last use).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import FastAPI, Request
from sqlalchemy.orm import Session, sessionmaker

from app.auth.models import User
from app.db import transaction
from app.feedback.models import Source
from app.feedback.service import QueryEntry, log_queries
from app.runtime import Runtime

log = logging.getLogger(__name__)

# Past this many unwritten questions (the database away for long) the oldest are dropped.
MAX_PENDING = 10_000


class QueryLogWriter:
    def __init__(self, sessions: sessionmaker[Session], *, interval_s: float = 2.0) -> None:
        self._sessions = sessions
        self._interval_s = interval_s
        self._pending: list[QueryEntry] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def note(self, entry: QueryEntry) -> None:
        """Remember a question; it is written within ``interval_s``."""
        with self._lock:
            self._pending.append(entry)
            if len(self._pending) > MAX_PENDING:
                del self._pending[: len(self._pending) - MAX_PENDING]
            start = self._thread is None and not self._stop.is_set()
            if start:
                self._thread = threading.Thread(target=self._run, daemon=True, name="query-log")
        if start and self._thread is not None:
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.flush()

    def flush(self) -> None:
        """Write what was noted; on failure keep it for the next try."""
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                with transaction(self._sessions) as session:
                    log_queries(session, batch)
            except Exception as exc:  # the database may be away or full; a later flush retries
                log.warning("could not write %d questions to the query log (%s)", len(batch), exc)
                with self._lock:
                    self._pending[:0] = batch[-MAX_PENDING:]

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()


def writer(request: Request) -> QueryLogWriter | None:
    """This app's writer (made at start-up by :func:`lifespan`)."""
    found = getattr(request.app.state, "query_log", None)
    return found if isinstance(found, QueryLogWriter) else None


class Asked(Protocol):
    """What a search result tells the log (app.search.service.SearchResult)."""

    @property
    def query(self) -> str: ...
    @property
    def collection(self) -> str: ...
    @property
    def weak_match(self) -> bool: ...
    @property
    def hits(self) -> Sequence[object]: ...


def note_query(request: Request, user: User | None, source: Source, result: Asked) -> None:
    """Log a question and how it went; never raises (a read must not fail because its
    log did)."""
    try:
        entry = QueryEntry(
            query=result.query,
            collection=result.collection,
            weak_match=result.weak_match,
            hits=len(result.hits),
            source=source,
            user_id=user.id if user is not None else None,
        )
        found = writer(request)
        if found is not None:
            found.note(entry)
    except Exception as exc:  # logging a question is best effort
        log.warning("could not note a question for the query log (%s)", exc)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the app's query-log writer after the runtime opens; write what is left on
    the way down (before the runtime closes: this context is nested inside the app's)."""
    rt = getattr(app.state, "runtime", None)
    log_writer = QueryLogWriter(rt.sessions) if isinstance(rt, Runtime) else None
    app.state.query_log = log_writer
    try:
        yield
    finally:
        if log_writer is not None:
            log_writer.close()
