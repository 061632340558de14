"""A bounded HTTP load generator for a server on this machine (tests and bench/load.py).

``run_load`` opens ``clients`` concurrent keep-alive connections to ``base_url`` (a
loopback address), each sending requests back to back for ``seconds``, while a prober
asks ``/healthz`` every 0.2 s. Every request has a timeout, the run has a deadline, and
the generator stops by itself: it is a load test, never a flood.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

LOOPBACK = ("127.", "localhost", "[::1]")


@dataclass(frozen=True)
class Target:
    """One kind of request: a path with query parameters."""

    path: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class LoadResult:
    clients: int
    seconds: float
    statuses: Counter[int] = field(default_factory=Counter)
    # Requests with no HTTP answer at all: timeouts, refused or dropped connections.
    unanswered: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    health_ms: list[float] = field(default_factory=list)
    health_failures: int = 0

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    def summary(self) -> dict[str, object]:
        return {
            "clients": self.clients,
            "requests": self.answered + sum(self.unanswered.values()),
            "req_per_s": round(self.answered / self.seconds, 1),
            "p50_ms": percentile(self.latencies_ms, 0.50),
            "p95_ms": percentile(self.latencies_ms, 0.95),
            "p99_ms": percentile(self.latencies_ms, 0.99),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "unanswered": dict(self.unanswered),
            "healthz_max_ms": round(max(self.health_ms, default=0.0), 1),
            "healthz_failures": self.health_failures,
        }


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) one process has used, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started (from /proc; Linux)."""
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (nearest rank), rounded to 0.1; 0 when there are no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


async def _client(
    http: httpx.AsyncClient,
    targets: itertools.cycle[Target],
    deadline: float,
    result: LoadResult,
) -> None:
    while time.monotonic() < deadline:
        target = next(targets)
        t0 = time.perf_counter()
        try:
            r = await http.get(target.path, params=target.params, headers=target.headers)
        except httpx.HTTPError as exc:
            result.unanswered[type(exc).__name__] += 1
            continue
        result.latencies_ms.append((time.perf_counter() - t0) * 1000)
        result.statuses[r.status_code] += 1


async def _prober(http: httpx.AsyncClient, deadline: float, result: LoadResult) -> None:
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            r = await http.get("/healthz")
            if r.status_code != 200:
                result.health_failures += 1
        except httpx.HTTPError:
            result.health_failures += 1
        result.health_ms.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(0.2)


async def _run(
    base_url: str,
    targets: Sequence[Target],
    *,
    clients: int,
    seconds: float,
    headers: dict[str, str],
    cookies: dict[str, str],
    timeout_s: float,
) -> LoadResult:
    result = LoadResult(clients=clients, seconds=seconds)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    deadline = time.monotonic() + seconds
    cycle = itertools.cycle(targets)
    async with (
        httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            cookies=cookies,
            limits=limits,
            timeout=timeout_s,
        ) as http,
        httpx.AsyncClient(base_url=base_url, timeout=timeout_s) as probe,
    ):
        await asyncio.gather(
            _prober(probe, deadline, result),
            *(_client(http, cycle, deadline, result) for _ in range(clients)),
        )
    return result


def run_load(
    base_url: str,
    targets: Sequence[Target],
    *,
    clients: int,
    seconds: float,
    headers: dict[str, str] | None = None,
    cookies: dict[str, str] | None = None,
    timeout_s: float = 30.0,
) -> LoadResult:
    """Send ``clients`` concurrent request loops for ``seconds``; the result counts every
    answer by status and every request that got none."""
    host = urlsplit(base_url).netloc
    if not host.startswith(LOOPBACK):
        raise ValueError(f"load is sent only to this machine, not to {base_url}")
    if not targets:
        raise ValueError("no targets")
    return asyncio.run(
        _run(
            base_url,
            targets,
            clients=clients,
            seconds=seconds,
            headers=headers or {},
            cookies=cookies or {},
            timeout_s=timeout_s,
        )
    )
