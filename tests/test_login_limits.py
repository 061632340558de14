"""Login rate limits per username across addresses and per address across usernames; a
flood against one username slows guessing without locking the real user out; proxy
headers are believed only from KB_TRUSTED_PROXIES."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from app import cli
from app.auth.models import Role
from app.auth.ratelimit import LoginLimiter
from app.main import create_app
from app.runtime import Runtime
from app.settings import Settings
from tests.e2e.browser import free_port
from tests.webclient import PASSWORD, make_user


@pytest.fixture
def backend() -> str:
    return "sqlite"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def app(rt: Runtime) -> Any:
    return create_app(runtime=rt)


@pytest.fixture
def clock(app: Any) -> Clock:
    """The app's login limiter, on a clock the test moves."""
    fake = Clock()
    with TestClient(app) as c:  # creates the app's guard
        c.post("/login", data={"username": "nobody-at-all", "password": "x"})
    app.state.login_guard.limiter = LoginLimiter(clock=fake)
    return fake


def from_address(app: Any, address: str) -> TestClient:
    return TestClient(app, client=(address, 40000))


def attempt(c: TestClient, username: str, password: str = "wrong-password") -> int:
    r = c.post("/login", data={"username": username, "password": password}, follow_redirects=False)
    return r.status_code


def test_guesses_at_one_user_from_many_addresses_are_limited(
    rt: Runtime, app: Any, clock: Clock
) -> None:
    make_user(rt, "gail", Role.READER)
    clients = [from_address(app, f"127.0.0.{i}") for i in range(2, 8)]
    codes = [attempt(clients[i % 6], "gail") for i in range(30)]
    assert codes[:10] == [401] * 10  # no address reached its own limit of 5
    assert codes[10] == 429
    assert codes.count(401) <= 11  # the rest wait out the backoff


def test_failures_across_usernames_from_one_address_are_limited(
    rt: Runtime, app: Any, clock: Clock
) -> None:
    make_user(rt, "hal", Role.READER)
    c = from_address(app, "10.0.0.9")
    codes = [attempt(c, f"user{i}") for i in range(22)]
    assert codes[:20] == [401] * 20 and codes[20:] == [429, 429]
    assert attempt(c, "hal", PASSWORD) == 429  # a spray locks the address, not just names
    assert attempt(from_address(app, "10.0.0.10"), "hal", PASSWORD) == 303
    clock.now += 301
    assert attempt(c, "hal", PASSWORD) == 303


def test_a_flood_against_admin_does_not_lock_the_real_admin_out(
    rt: Runtime, app: Any, clock: Clock
) -> None:
    make_user(rt, "boss", Role.ADMIN)
    usual = from_address(app, "192.168.1.5")  # the admin's usual browser
    assert attempt(usual, "boss", PASSWORD) == 303
    assert "kb_device" in usual.cookies

    for i in range(200):  # a flood from many addresses, each under its own limit
        attempt(from_address(app, f"10.9.{i // 250}.{i % 250}"), "boss")
        clock.now += 0.5

    # The usual browser (a known device for boss) gets in at once, even from a new address.
    usual_elsewhere = from_address(app, "172.16.0.1")
    usual_elsewhere.cookies.set("kb_device", usual.cookies["kb_device"], path="/login")
    assert attempt(usual_elsewhere, "boss", PASSWORD) == 303

    # A fresh browser waits at most a minute after the flood's last try: a backoff, not a lock.
    fresh = from_address(app, "172.16.0.2")
    r = fresh.post("/login", data={"username": "boss", "password": PASSWORD})
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 61
    clock.now += int(r.headers["retry-after"])
    assert attempt(fresh, "boss", PASSWORD) == 303


def test_a_known_device_cookie_is_only_good_for_its_own_users(
    rt: Runtime, app: Any, clock: Clock
) -> None:
    make_user(rt, "ivy", Role.READER)
    make_user(rt, "jon", Role.READER)
    mine = from_address(app, "10.1.1.1")
    assert attempt(mine, "ivy", PASSWORD) == 303
    for i in range(12):
        attempt(from_address(app, f"10.2.0.{i}"), "jon")
    assert attempt(mine, "jon", PASSWORD) == 429  # ivy's browser is not jon's
    forged = from_address(app, "10.1.1.2")
    forged.cookies.set("kb_device", "eyJpZCI6IngiLCJ1c2VycyI6WyJqb24iXX0.forged", path="/login")
    assert attempt(forged, "jon", PASSWORD) == 429
    # A known device that keeps failing loses its pass.
    for _ in range(5):
        assert attempt(mine, "ivy") == 401
    for i in range(10):
        attempt(from_address(app, f"10.3.0.{i}"), "ivy")
    assert attempt(from_address(app, "10.1.1.3"), "ivy", PASSWORD) == 429


def test_limiter_backoff_grows_and_is_capped() -> None:
    clock = Clock()
    lim = LoginLimiter(clock=clock)
    for i in range(10):
        assert lim.retry_after(f"a{i}", "kim") == 0
        lim.failed(f"a{i}", "kim")
    assert lim.retry_after("fresh", "kim") == 2  # 1 s, rounded up
    waits = []
    for i in range(20):
        clock.now += 61
        lim.failed(f"b{i}", "kim")
        waits.append(lim.retry_after("fresh", "kim"))
    assert waits[:3] == [3, 5, 9] and max(waits) == 61


# --- proxy headers: believed only from KB_TRUSTED_PROXIES ------------------------------


def serve_options(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What ``kb serve`` passes to uvicorn (uvicorn.run captured, not run)."""
    captured: dict[str, Any] = {}
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: captured.update(kw))
    cli.serve(host="127.0.0.1", port=1, worker=False)
    return {k: v for k, v in captured.items() if k in ("proxy_headers", "forwarded_allow_ips")}


@pytest.fixture
def live(rt: Runtime) -> Iterator[Any]:
    """Start uvicorn (real sockets) on the app with given options; yields its base URL."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(**options: Any) -> str:
        port = free_port()
        config = uvicorn.Config(
            create_app(runtime=rt), host="127.0.0.1", port=port, log_level="warning", **options
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


def posed(base: str, forwarded_for: str, password: str = "wrong-password") -> int:
    r = httpx.post(
        base + "/login",
        data={"username": "kay", "password": password},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return r.status_code


def test_a_local_client_cannot_pose_as_many_addresses(
    rt: Runtime, settings: Settings, live: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = serve_options(settings, monkeypatch)
    assert options == {"proxy_headers": False, "forwarded_allow_ips": []}
    make_user(rt, "kay", Role.READER)
    base = live(**options)
    assert [posed(base, f"203.0.113.{i}") for i in range(5)] == [401] * 5
    # One address (127.0.0.1) at one username, whatever it claims: locked.
    assert posed(base, "198.51.100.7", PASSWORD) == 429


def test_a_trusted_proxy_forwards_the_client_address(
    rt: Runtime, settings: Settings, live: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    trusted = settings.model_copy(update={"trusted_proxies": "127.0.0.1,10.0.0.0/8"})
    options = serve_options(trusted, monkeypatch)
    assert options == {"proxy_headers": True, "forwarded_allow_ips": ["127.0.0.1", "10.0.0.0/8"]}
    make_user(rt, "kay", Role.READER)
    base = live(**options)
    assert [posed(base, "203.0.113.1") for _ in range(5)] == [401] * 5
    assert posed(base, "203.0.113.1", PASSWORD) == 429
    assert posed(base, "198.51.100.7", PASSWORD) == 303  # another client behind the proxy


def test_trusted_proxies_setting_is_checked() -> None:
    assert Settings(trusted_proxies=" 10.0.0.1 , fd00::/8 ").trusted_proxy_list == [
        "10.0.0.1",
        "fd00::/8",
    ]
    assert Settings().trusted_proxy_list == []
    with pytest.raises(ValueError):
        Settings(trusted_proxies="proxy.example")
