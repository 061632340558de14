"""When API tokens were last used, recorded off the request path.

A read-only API call must never need a write: a write per call serialises busy clients
on SQLite, waits behind any lock on ``api_tokens``, and fails when the disk is full. So a
request only notes the use in memory; a background thread writes the notes in one short
transaction at most once a minute, and a failed write is retried with the next batch.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from app.auth.service import record_token_use
from app.db import transaction, utcnow

log = logging.getLogger(__name__)

# A minute's precision is enough to tell used tokens from forgotten ones.
PRECISION = timedelta(minutes=1)


class TokenUsage:
    def __init__(self, sessions: sessionmaker[Session], *, interval_s: float = 60.0) -> None:
        self._sessions = sessions
        self._interval_s = interval_s
        self._pending: dict[int, datetime] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def note(self, token_id: int, last_recorded: datetime | None) -> None:
        """Remember that the token was used now (only when the stored time is stale)."""
        now = utcnow()
        if last_recorded is not None and now - last_recorded < PRECISION:
            return
        with self._lock:
            self._pending[token_id] = now
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, daemon=True, name="token-usage")
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.flush()

    def flush(self) -> None:
        """Write what was noted; on failure keep it for the next try."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return
        try:
            with transaction(self._sessions) as session:
                record_token_use(session, batch)
        except Exception as exc:  # the database may be away or full; a later flush retries
            log.warning("could not record API token use (%s); will retry", exc)
            with self._lock:
                for token_id, when in batch.items():
                    self._pending.setdefault(token_id, when)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()
