"""A login rate limit: too many failures for one (address, username) locks it briefly.

In memory, per process: enough to stop password guessing against one server; behind
several web processes each process keeps its own count (the limit is then per process).
"""

from __future__ import annotations

import threading
import time
from collections import deque


class LoginLimiter:
    def __init__(self, *, max_failures: int = 5, window_s: float = 300.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and now - q[0] > self.window_s:
            q.popleft()
        return q

    def retry_after(self, address: str, username: str) -> int:
        """Seconds until another attempt is allowed; 0 when it is allowed now."""
        key, now = (address, username.strip().casefold()), time.monotonic()
        with self._lock:
            q = self._recent(key, now)
            if len(q) < self.max_failures:
                return 0
            return max(1, int(self.window_s - (now - q[0])) + 1)

    def failed(self, address: str, username: str) -> None:
        key, now = (address, username.strip().casefold()), time.monotonic()
        with self._lock:
            self._recent(key, now).append(now)
            if len(self._failures) > 10000:  # forget the oldest keys rather than grow forever
                for stale in list(self._failures)[:1000]:
                    del self._failures[stale]

    def succeeded(self, address: str, username: str) -> None:
        with self._lock:
            self._failures.pop((address, username.strip().casefold()), None)
