"""Request-body limits (app/http_limits.py): nothing is spooled before auth and size checks.

The decisive tests run a real uvicorn server and speak raw HTTP to it: the body is
streamed from a generator and the answer must come back while most of it is unsent;
an ASGI wrapper counts the body bytes the app pulled from the server at all, and the
temporary folder where python-multipart spools form files is a small tmpfs with
spooling forced to disk, so that a body the app did spool would fail there.
"""

from __future__ import annotations

import json
import random
import select
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from starlette.formparsers import MultiPartParser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import http_limits
from app.auth.models import Role
from app.http_limits import BodyLimits, _PartMeter
from app.i18n_catalog import ZH
from app.main import create_app
from app.runtime import Runtime
from app.settings import Settings
from app.text.sizes import human_size
from tests.factories import token_for
from tests.tmpfs import needs_root, tmpfs, used_bytes
from tests.webclient import csrf, dom, login, make_user

MAX_FILE = 64 * 1024  # KB_MAX_UPLOAD_BYTES in these tests
HUGE = 300 * 1024 * 1024  # what an attacker says it will send
BOUNDARY = "----kbtestboundary"


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def small_rt(rt: Runtime) -> Runtime:
    rt.settings = Settings(**{**rt.settings.model_dump(), "max_upload_bytes": MAX_FILE})
    return rt


def multipart_head(filename: str = "big.md") -> bytes:
    return (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="files"; filename="{filename}"\r\n'
        "Content-Type: text/markdown\r\n\r\n"
    ).encode()


def multipart(*files: tuple[str, bytes]) -> bytes:
    body = b"".join(multipart_head(n) + data + b"\r\n" for n, data in files)
    return body + f"--{BOUNDARY}--\r\n".encode()


class Counted:
    """A body generator that counts what was taken from it."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total, self.chunk, self.taken = total, chunk, 0

    def __iter__(self) -> Iterator[bytes]:
        yield multipart_head()
        self.taken += 1
        while self.taken * self.chunk < self.total:
            self.taken += 1
            yield b"x" * self.chunk


# --- the parts meter and sizes ------------------------------------------------------


def test_human_size() -> None:
    assert [human_size(n) for n in (0, 1000, 1024, 1536, 64 * 1024, 100 * 1024 * 1024)] == [
        "0 B",
        "1000 B",
        "1 KiB",
        "1.5 KiB",
        "64 KiB",
        "100 MiB",
    ]
    assert human_size(3 * 1024**3 // 2) == "1.5 GiB"


@pytest.mark.parametrize("seed", range(20))
def test_part_meter_finds_the_largest_part_across_any_chunking(seed: int) -> None:
    rng = random.Random(seed)
    sizes = [rng.choice([0, 1, 50, 999, 1000, 1001, 3000]) for _ in range(rng.randint(1, 4))]
    files = [
        (f"f{i}.md", bytes(rng.choice(b"-\r\nab") for _ in range(n))) for i, n in enumerate(sizes)
    ]
    body = multipart(*files)
    # A part runs from the end of one delimiter ("\r\n--" + boundary) to the next.
    limit = len(multipart_head("f0.md")) - len(f"--{BOUNDARY}") + 1000
    meter = _PartMeter(BOUNDARY.encode(), limit)
    ok, at = True, 0
    while at < len(body) and ok:
        step = rng.choice([1, 2, 7, 40, 3000])
        ok = meter.feed(body[at : at + step])
        at += step
    assert ok == (max(sizes) <= 1000), sizes


# --- TestClient: answers, formats, translations ------------------------------------


@pytest.fixture
def api(small_rt: Runtime) -> Iterator[TestClient]:
    token = token_for(small_rt, "editor1", Role.EDITOR)
    with TestClient(
        create_app(runtime=small_rt), headers={"Authorization": f"Bearer {token}"}
    ) as c:
        yield c


def test_anonymous_upload_is_refused_before_its_body_is_read(small_rt: Runtime) -> None:
    with TestClient(create_app(runtime=small_rt)) as c:
        body = Counted(HUGE)
        r = c.post(
            "/api/v1/documents",
            content=iter(body),
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        assert r.status_code == 401 and "log in" in r.json()["detail"]
        assert body.taken == 0
        page = Counted(HUGE)
        r = c.post(
            "/upload",
            content=iter(page),
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/upload"
        assert page.taken == 0


def test_one_file_over_the_limit_is_cut_off_with_413(api: TestClient) -> None:
    big = b"x" * (MAX_FILE + http_limits.PART_OVERHEAD + 1)
    r = api.post("/api/v1/documents", files=[("files", ("big.md", big))])
    assert r.status_code == 413
    assert r.json()["detail"] == "A file is larger than the limit of 64 KiB per file."
    # Just over the limit, the service's own check answers per file, in KiB.
    r = api.post("/api/v1/documents", files=[("files", ("big.md", b"x" * (MAX_FILE + 1)))])
    assert r.status_code == 413
    assert r.json()["detail"][0]["reason"] == "file is larger than the limit of 64 KiB"
    r = api.post("/api/v1/documents", files=[("files", ("ok.md", b"# OK\n\nfine.\n"))])
    assert r.status_code == 201


def test_chunked_body_past_the_default_limit_is_cut_off(small_rt: Runtime) -> None:
    with TestClient(create_app(runtime=small_rt)) as c:
        r = c.post(
            "/login",
            content=(b"x" * 65536 for _ in range(40)),  # 2.5 MiB, no Content-Length
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept-Language": "zh"},
        )
    assert r.status_code == 413
    assert "请求超过了 1 MiB 的大小上限。" in dom(r.text).select_one(".error").get_text()


def test_htmx_upload_over_the_limit_shows_the_reason_in_the_results(small_rt: Runtime) -> None:
    make_user(small_rt, "ed", Role.EDITOR)
    with TestClient(create_app(runtime=small_rt)) as c:
        login(c, "ed")
        page = dom(c.get("/upload").text)
        assert "64 KiB" in page.select_one(".dropzone").get_text()
        r = c.post(
            "/upload",
            data={"csrf_token": csrf(c, "/upload")},
            files=[("files", ("big.md", b"x" * (MAX_FILE * 3)))],
            headers={"HX-Request": "true"},
        )
    assert r.status_code == 413
    section = dom(r.text).select_one("section#upload-results")
    assert section is not None and "<html" not in r.text
    assert "A file is larger than the limit of 64 KiB per file." in section.get_text()


def test_messages_are_translated() -> None:
    from app.documents import service

    for msgid in (
        http_limits.REQUEST_TOO_LARGE,
        http_limits.UPLOAD_TOO_LARGE,
        http_limits.FILE_TOO_LARGE,
        service.STORAGE_FULL,
        service.STORAGE_UNWRITABLE,
        "file is larger than the limit of {size}",
        "the file is empty (0 bytes)",
        "unsupported file type {ext}: supported types are {kinds}",
    ):
        assert msgid in ZH, msgid


# --- a real server, raw HTTP ----------------------------------------------------------


class CountingApp:
    """Counts the request-body bytes the app (middleware included) took from the server."""

    def __init__(self, app: ASGIApp) -> None:
        self.app, self.received = app, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counting() -> Message:
            msg = await receive()
            self.received += len(msg.get("body", b""))
            return msg

        await self.app(scope, counting if scope["type"] == "http" else receive, send)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client managed to send before the answer came

    def json(self) -> dict:
        return dict(json.loads(self.body))


@dataclass
class Server:
    port: int
    app: CountingApp
    spool: Path


def raw_post(port: int, path: str, headers: dict[str, str], body: Iterator[bytes]) -> Answer:
    """Send headers, then stream ``body`` until the server answers; read the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        sock.sendall((head + "\r\n").encode())
        chunked = headers.get("Transfer-Encoding") == "chunked"
        sent = 0
        for chunk in body:
            if select.select([sock], [], [], 0)[0]:
                break  # the answer is there: stop sending
            data = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk
            try:
                sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        raw = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            raw += data
            if b"\r\n\r\n" in raw:
                head_part, rest = raw.split(b"\r\n\r\n", 1)
                length = [
                    int(line.split(b":", 1)[1])
                    for line in head_part.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ]
                if length and len(rest) >= length[0]:
                    break
    finally:
        sock.close()
    head_part, _, rest = raw.partition(b"\r\n\r\n")
    lines = head_part.decode("latin-1").split("\r\n")
    parsed = dict(line.split(": ", 1) for line in lines[1:])
    return Answer(int(lines[0].split()[1]), {k.lower(): v for k, v in parsed.items()}, rest, sent)


@pytest.fixture
def server(small_rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """uvicorn on a free port; form files spool straight to a 1 MiB tmpfs."""
    with tmpfs(tmp_path / "spool", 1024 * 1024) as spool:
        monkeypatch.setattr(tempfile, "tempdir", str(spool))
        monkeypatch.setattr(MultiPartParser, "spool_max_size", 0)
        app = CountingApp(create_app(runtime=small_rt))
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        srv = uvicorn.Server(config)
        thread = threading.Thread(target=srv.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not srv.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        port = srv.servers[0].sockets[0].getsockname()[1]
        try:
            yield Server(port, app, spool)
        finally:
            srv.should_exit = True
            thread.join(timeout=30)


def form_headers(**extra: str) -> dict[str, str]:
    return {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **extra}


@needs_root
def test_real_server_refuses_before_reading(server: Server, small_rt: Runtime) -> None:
    token = token_for(small_rt, "editor2", Role.EDITOR)
    started = time.monotonic()

    # Anonymous 300 MB uploads, API and page: refused with nothing read.
    for path, status in (("/api/v1/documents", 401), ("/upload", 303)):
        ans = raw_post(
            server.port, path, form_headers(**{"Content-Length": str(HUGE)}), iter(Counted(HUGE))
        )
        assert ans.status == status, ans
        assert ans.sent < 32 * 1024 * 1024  # the client stopped: the answer came first
    assert server.app.received == 0

    # /login and every other route: 1 MiB.
    ans = raw_post(
        server.port,
        "/login",
        {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(HUGE)},
        iter(Counted(HUGE)),
    )
    assert ans.status == 413 and b"1 MiB" in ans.body
    assert server.app.received == 0

    # An editor announcing 300 MB: over 20 files' worth, refused by its Content-Length.
    auth = {"Authorization": f"Bearer {token}"}
    ans = raw_post(
        server.port,
        "/api/v1/documents",
        form_headers(**auth, **{"Content-Length": str(HUGE)}),
        iter(Counted(HUGE)),
    )
    assert ans.status == 413, ans
    assert "per request" in ans.json()["detail"]
    assert server.app.received == 0

    # Chunked, no Content-Length: one file grows past its limit; reading stops there.
    ans = raw_post(
        server.port,
        "/api/v1/documents",
        form_headers(**auth, **{"Transfer-Encoding": "chunked"}),
        iter(Counted(HUGE, chunk=16 * 1024)),
    )
    assert ans.status == 413, ans
    assert ans.json()["detail"] == "A file is larger than the limit of 64 KiB per file."
    # uvicorn hands over what it buffered (up to a few hundred KiB a message); the middleware
    # passes on at most the part limit of it, and then reads no more.
    assert server.app.received < 1024 * 1024
    assert ans.sent < 32 * 1024 * 1024
    assert used_bytes(server.spool) == 0
    assert time.monotonic() - started < 30

    # The server still serves a normal upload.
    ok = multipart(("ok.md", b"# OK\n\nfine.\n"))
    ans = raw_post(
        server.port,
        "/api/v1/documents",
        form_headers(**auth, **{"Content-Length": str(len(ok))}),
        iter([ok]),
    )
    assert ans.status == 201, ans


def test_limits_follow_the_settings() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("not reached")

    limits = BodyLimits(app, max_upload_bytes=MAX_FILE)
    assert (
        limits.upload_limit == MAX_FILE * http_limits.FILES_PER_REQUEST + http_limits.FORM_OVERHEAD
    )
    assert limits.part_limit == MAX_FILE + http_limits.PART_OVERHEAD
