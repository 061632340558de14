"""Login rate limits: per (address, username), per address, and per username.

- One address at one username: 5 failures in 5 minutes lock that pair until the oldest
  failure is 5 minutes old (the right password waits too).
- One address across usernames: 20 failures in 5 minutes lock the address the same way.
- One username from any address: after 10 failures in 15 minutes each further attempt
  must wait 1, 2, 4 … seconds (at most 60) after the last failure: a backoff, never a
  lockout, so guessing slows to one try a minute while the real user can still get in.
  A browser that has logged in as that user before (a signed "known device" cookie,
  OWASP's device cookies) skips this backoff until it fails 5 times itself, so a flood
  against ``admin`` does not keep the real admin out of their usual browser at all.

The address is the peer's, or the forwarded one only from KB_TRUSTED_PROXIES (uvicorn
applies that before the app sees the request). In memory, per process: behind several
web processes each keeps its own counts.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

PAIR_MAX = 5
ADDRESS_MAX = 20
WINDOW_S = 300.0
USER_FREE = 10
USER_WINDOW_S = 900.0
USER_BACKOFF_MAX_S = 60.0
DEVICE_MAX = 5
MAX_KEYS = 10_000  # per table: forget the oldest keys rather than grow for ever


class _Failures:
    """Failure times per key within a sliding window."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._times: dict[str, deque[float]] = {}

    def recent(self, key: str, now: float) -> deque[float]:
        q = self._times.get(key)
        if q is None:
            return deque()
        while q and now - q[0] > self.window_s:
            q.popleft()
        if not q:
            del self._times[key]
        return q

    def add(self, key: str, now: float) -> None:
        self.recent(key, now)
        self._times.setdefault(key, deque()).append(now)
        if len(self._times) > MAX_KEYS:
            for stale in list(self._times)[: MAX_KEYS // 10]:
                del self._times[stale]

    def clear(self, key: str) -> None:
        self._times.pop(key, None)


class LoginLimiter:
    def __init__(
        self,
        *,
        pair_max: int = PAIR_MAX,
        address_max: int = ADDRESS_MAX,
        window_s: float = WINDOW_S,
        user_free: int = USER_FREE,
        user_window_s: float = USER_WINDOW_S,
        user_backoff_max_s: float = USER_BACKOFF_MAX_S,
        device_max: int = DEVICE_MAX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pair_max = pair_max
        self.address_max = address_max
        self.user_free = user_free
        self.user_backoff_max_s = user_backoff_max_s
        self.device_max = device_max
        self._clock = clock
        self._pairs = _Failures(window_s)
        self._addresses = _Failures(window_s)
        self._users = _Failures(user_window_s)
        self._devices = _Failures(window_s)
        self._lock = threading.Lock()

    @staticmethod
    def _user(username: str) -> str:
        return username.strip().casefold()

    def _locked(self, table: _Failures, key: str, limit: int, now: float) -> float:
        q = table.recent(key, now)
        return table.window_s - (now - q[0]) if len(q) >= limit else 0.0

    def retry_after(self, address: str, username: str, *, device: str | None = None) -> int:
        """Seconds until another attempt is allowed; 0 when it is allowed now.

        ``device``: the id of a valid known-device cookie for this username, if any."""
        user, now = self._user(username), self._clock()
        with self._lock:
            waits = [
                self._locked(self._pairs, f"{address}\0{user}", self.pair_max, now),
                self._locked(self._addresses, address, self.address_max, now),
            ]
            trusted = device is not None and not self._locked(
                self._devices, device, self.device_max, now
            )
            if not trusted:
                q = self._users.recent(user, now)
                if len(q) >= self.user_free:
                    delay = min(self.user_backoff_max_s, 2.0 ** (len(q) - self.user_free))
                    waits.append(delay - (now - q[-1]))
        wait = max(waits)
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, address: str, username: str, *, device: str | None = None) -> None:
        user, now = self._user(username), self._clock()
        with self._lock:
            self._pairs.add(f"{address}\0{user}", now)
            self._addresses.add(address, now)
            self._users.add(user, now)
            if device is not None:
                self._devices.add(device, now)

    def succeeded(self, address: str, username: str, *, device: str | None = None) -> None:
        """Forget this pair's (and device's) failures; the address and username counts
        stay, so a login to one's own account does not reset a spray or a flood."""
        with self._lock:
            self._pairs.clear(f"{address}\0{self._user(username)}")
            if device is not None:
                self._devices.clear(device)
