"""Accounts and security: roles on every route, CSRF, tokens, rate limit, sessions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.auth import service as auth
from app.auth.models import ApiToken, Role, User
from app.auth.passwords import hash_password, verify_password
from app.db import transaction
from app.main import create_app
from app.runtime import Runtime
from tests.factories import token_for
from tests.webclient import PASSWORD, csrf, dom, login, make_user


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def app_client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime=rt)) as c:
        yield c


def test_passwords_are_argon2_hashed() -> None:
    h = hash_password("s3cret-pass")
    assert h.startswith("$argon2id$") and "s3cret-pass" not in h
    assert verify_password(h, "s3cret-pass") and not verify_password(h, "wrong-pass")
    assert not verify_password(None, "anything")


def test_unauthenticated_api_calls_get_401(app_client: TestClient) -> None:
    for method, path in [
        ("get", "/api/v1/search?q=x"),
        ("get", "/api/v1/documents"),
        ("get", "/api/v1/documents/1"),
        ("delete", "/api/v1/documents/1"),
        ("get", "/api/v1/collections"),
    ]:
        r = getattr(app_client, method)(path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"
    r = app_client.post("/api/v1/documents", files=[("files", ("a.md", b"# A\n\ntext\n"))])
    assert r.status_code == 401
    bad = {"Authorization": "Bearer kb_not-a-real-token"}
    assert app_client.get("/api/v1/documents", headers=bad).status_code == 401


def test_pages_redirect_to_login(app_client: TestClient) -> None:
    r = app_client.get("/documents?x=1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/documents%3Fx%3D1"


def test_reader_token_can_search_but_not_upload_or_delete(
    rt: Runtime, app_client: TestClient
) -> None:
    editor = {"Authorization": f"Bearer {token_for(rt, 'ed', Role.EDITOR)}"}
    reader = {"Authorization": f"Bearer {token_for(rt, 'rd', Role.READER)}"}
    r = app_client.post(
        "/api/v1/documents", headers=editor, files=[("files", ("a.md", b"# A\n\nSome text.\n"))]
    )
    doc_id = r.json()["items"][0]["document_id"]
    assert app_client.get("/api/v1/documents", headers=reader).status_code == 200
    assert app_client.get("/api/v1/search?q=text", headers=reader).status_code == 200
    r = app_client.post(
        "/api/v1/documents", headers=reader, files=[("files", ("b.md", b"# B\n\nx\n"))]
    )
    assert r.status_code == 403
    assert app_client.delete(f"/api/v1/documents/{doc_id}", headers=reader).status_code == 403
    assert app_client.get(f"/api/v1/documents/{doc_id}", headers=reader).status_code == 200


def test_editor_deletes_only_own_documents(rt: Runtime, app_client: TestClient) -> None:
    one = {"Authorization": f"Bearer {token_for(rt, 'ed1', Role.EDITOR)}"}
    two = {"Authorization": f"Bearer {token_for(rt, 'ed2', Role.EDITOR)}"}
    admin = {"Authorization": f"Bearer {token_for(rt, 'boss', Role.ADMIN)}"}
    r = app_client.post(
        "/api/v1/documents", headers=one, files=[("files", ("a.md", b"# A\n\nText.\n"))]
    )
    doc_id = r.json()["items"][0]["document_id"]
    assert app_client.delete(f"/api/v1/documents/{doc_id}", headers=two).status_code == 403
    assert app_client.delete(f"/api/v1/documents/{doc_id}", headers=admin).status_code == 204


def test_revoked_token_and_disabled_user_are_refused(rt: Runtime, app_client: TestClient) -> None:
    with transaction(rt.sessions) as s:
        user = auth.create_user(s, username="temp", password=PASSWORD, role=Role.READER)
        token, plain = auth.create_token(s, user, "t")
        _, other = auth.create_token(s, user, "t2")
        token_id = token.id
    h = {"Authorization": f"Bearer {plain}"}
    assert app_client.get("/api/v1/documents", headers=h).status_code == 200
    with transaction(rt.sessions) as s:
        auth.revoke_token(s, token_id, by=s.get_one(User, user.id))
    assert app_client.get("/api/v1/documents", headers=h).status_code == 401
    with transaction(rt.sessions) as s:
        s.get_one(User, user.id).disabled = True
    assert (
        app_client.get(
            "/api/v1/documents", headers={"Authorization": f"Bearer {other}"}
        ).status_code
        == 401
    )


def test_token_is_stored_hashed_and_shown_once(rt: Runtime, app_client: TestClient) -> None:
    make_user(rt, "ann", Role.READER)
    login(app_client, "ann")
    page = dom(
        app_client.post(
            "/tokens", data={"name": "laptop", "csrf_token": csrf(app_client, "/tokens")}
        ).text
    )
    plain = page.select_one("#new-token").get_text()
    assert plain.startswith("kb_")
    assert (
        app_client.get(
            "/api/v1/documents", headers={"Authorization": f"Bearer {plain}"}
        ).status_code
        == 200
    )
    again = dom(app_client.get("/tokens").text)
    assert again.select_one("#new-token") is None and plain not in again.get_text()
    with rt.sessions() as s:
        stored = s.scalars(select(ApiToken)).one()
        assert stored.token_hash != plain and plain not in stored.token_hash


def test_form_post_without_csrf_token_is_rejected(rt: Runtime, app_client: TestClient) -> None:
    make_user(rt, "root", Role.ADMIN)
    login(app_client, "root")
    r = app_client.post(
        "/admin/users", data={"username": "mallory", "password": PASSWORD, "role": "admin"}
    )
    assert r.status_code == 403
    assert dom(r.text).select_one(".error") is not None
    with rt.sessions() as s:
        assert auth.by_username(s, "mallory") is None
    r = app_client.post(
        "/admin/users",
        data={"username": "bob", "password": PASSWORD, "role": "reader", "csrf_token": "forged"},
    )
    assert r.status_code == 403
    r = app_client.post(
        "/admin/users",
        data={
            "username": "bob",
            "password": PASSWORD,
            "role": "reader",
            "csrf_token": csrf(app_client, "/admin/users"),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    with rt.sessions() as s:
        assert auth.by_username(s, "bob") is not None


def test_login_is_rate_limited(rt: Runtime, app_client: TestClient) -> None:
    make_user(rt, "carol", Role.READER)
    for _ in range(5):
        r = app_client.post("/login", data={"username": "carol", "password": "wrong-password"})
        assert r.status_code == 401
        assert (
            dom(r.text).select_one(".error").get_text(strip=True) == "Invalid username or password."
        )
    r = app_client.post("/login", data={"username": "carol", "password": PASSWORD})
    assert r.status_code == 429  # even the right password waits out the lock
    assert "Too many attempts" in dom(r.text).select_one(".error").get_text()


def test_reader_cannot_see_upload_or_admin_pages(rt: Runtime, app_client: TestClient) -> None:
    make_user(rt, "dave", Role.READER)
    login(app_client, "dave")
    home = dom(app_client.get("/").text)
    links = {a["href"] for a in home.select("header nav a")}
    assert "/upload" not in links and "/admin/collections" not in links and "/documents" in links
    for path in ["/upload", "/admin/users", "/admin/collections", "/admin/jobs"]:
        assert app_client.get(path).status_code == 403, path
    token = csrf(app_client, "/")
    r = app_client.post(
        "/upload", data={"csrf_token": token}, files=[("files", ("a.md", b"# A\n\nx\n"))]
    )
    assert r.status_code == 403


def test_disabling_or_new_password_ends_sessions(rt: Runtime, app_client: TestClient) -> None:
    make_user(rt, "erin", Role.READER)
    login(app_client, "erin")
    assert app_client.get("/", follow_redirects=False).status_code == 200
    with transaction(rt.sessions) as s:
        auth.set_password(s, auth.by_username(s, "erin"), "another-password-2")  # type: ignore[arg-type]
    assert app_client.get("/", follow_redirects=False).status_code == 303


def test_last_admin_cannot_be_demoted(rt: Runtime) -> None:
    with transaction(rt.sessions) as s:
        admin = auth.create_user(s, username="only", password=PASSWORD, role=Role.ADMIN)
        with pytest.raises(auth.UserError):
            auth.set_role(s, admin, Role.READER)
        with pytest.raises(auth.UserError):
            auth.set_disabled(s, admin, True)


def test_first_admin_is_created_once(rt: Runtime) -> None:
    with transaction(rt.sessions) as s:
        generated = auth.ensure_first_admin(s, None)
    assert generated and len(generated) >= 12
    with transaction(rt.sessions) as s:
        assert auth.ensure_first_admin(s, None) is None
        assert auth.authenticate(s, "admin", generated) is not None


def test_login_redirect_stays_on_this_site(rt: Runtime, app_client: TestClient) -> None:
    make_user(rt, "fay", Role.READER)
    r = app_client.post(
        "/login",
        data={"username": "fay", "password": PASSWORD, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/"
