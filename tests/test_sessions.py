"""Server-side sessions: logout, disable, a new password and "log out everywhere" end them
at once (a copied cookie stops working), checking one never writes, and re-enabling a user
restores neither their sessions nor their API tokens."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from sqlalchemy import event, select, text, update

from app.auth import service as auth
from app.auth.keys import secret_key
from app.auth.models import ApiToken, Role, User, UserSession
from app.db import make_engine, transaction, upgrade, utcnow
from app.documents.models import Document
from app.main import create_app
from app.runtime import Runtime
from app.settings import Settings
from tests.webclient import csrf, dom, login, make_user

SQLITE = pytest.mark.parametrize("backend", ["sqlite"])
COOKIE = "kb_session"


@pytest.fixture
def app(rt: Runtime) -> Any:
    return create_app(runtime=rt)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def browser(app: Any) -> TestClient:
    """A second browser on the same app (its own cookies)."""
    return TestClient(app)


def user_id(rt: Runtime, username: str) -> int:
    with rt.sessions() as s:
        user = auth.by_username(s, username)
        assert user is not None
        return user.id


def logged_in(c: TestClient) -> bool:
    return c.get("/", follow_redirects=False).status_code == 200


def replay(c: TestClient, cookie: str) -> None:
    c.cookies.clear()
    c.cookies.set(COOKIE, cookie)


@SQLITE
def test_logout_ends_the_session_even_for_a_copied_cookie(rt: Runtime, client: TestClient) -> None:
    make_user(rt, "ed", Role.EDITOR)
    login(client, "ed")
    token = csrf(client, "/upload")
    stolen = client.cookies[COOKIE]
    r = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"

    replay(client, stolen)  # the cookie as it was before the logout, CSRF token and all
    r = client.post(
        "/upload",
        data={"csrf_token": token},
        files=[("files", ("replayed.md", b"# Replayed\n\ntext\n"))],
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert not logged_in(client)
    with rt.sessions() as s:
        assert s.scalars(select(Document)).first() is None
        assert s.scalars(select(UserSession)).first() is None


def test_disabling_ends_sessions_and_revokes_tokens_and_enabling_restores_neither(
    rt: Runtime, client: TestClient
) -> None:
    make_user(rt, "root", Role.ADMIN)
    make_user(rt, "rd", Role.READER)
    with transaction(rt.sessions) as s:
        _, plain = auth.create_token(s, s.get_one(User, user_id(rt, "rd")), "laptop")
    bearer = {"Authorization": f"Bearer {plain}"}
    reader = browser(client.app)
    login(reader, "rd")
    taken = reader.cookies[COOKIE]
    assert client.get("/api/v1/documents", headers=bearer).status_code == 200

    login(client, "root")
    rid = user_id(rt, "rd")
    for value in ("true", "false"):  # disable, then enable again
        r = client.post(
            f"/admin/users/{rid}",
            data={"disabled": value, "csrf_token": csrf(client, "/admin/users")},
            follow_redirects=False,
        )
        assert r.status_code == 303

    with rt.sessions() as s:
        assert not s.get_one(User, rid).disabled
        assert s.scalars(select(ApiToken)).one().revoked_at is not None
    replay(reader, taken)
    assert not logged_in(reader)  # the cookie from before the disable stays dead
    assert client.get("/api/v1/documents", headers=bearer).status_code == 401
    login(reader, "rd")  # a fresh login works
    assert logged_in(reader)
    page = dom(client.get("/admin/users").text)
    assert "restores neither" in page.select_one("#users-help").get_text()


@SQLITE
def test_new_password_ends_sessions_but_keeps_api_tokens(rt: Runtime, client: TestClient) -> None:
    make_user(rt, "root", Role.ADMIN)
    make_user(rt, "ann", Role.READER)
    with transaction(rt.sessions) as s:
        _, plain = auth.create_token(s, s.get_one(User, user_id(rt, "ann")), "script")
    ann = browser(client.app)
    login(ann, "ann")
    login(client, "root")
    r = client.post(
        f"/admin/users/{user_id(rt, 'ann')}",
        data={"password": "a-brand-new-pass-9", "csrf_token": csrf(client, "/admin/users")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert not logged_in(ann)
    # Decision: API tokens are separate credentials, listed and revoked on their own page.
    h = {"Authorization": f"Bearer {plain}"}
    assert client.get("/api/v1/documents", headers=h).status_code == 200
    login(ann, "ann", "a-brand-new-pass-9")

    # An admin who sets their own password stays logged in here, and only here.
    other = browser(client.app)
    login(other, "root")
    r = client.post(
        f"/admin/users/{user_id(rt, 'root')}",
        data={"password": "root-new-pass-77", "csrf_token": csrf(client, "/admin/users")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert logged_in(client) and not logged_in(other)


@SQLITE
def test_log_out_everywhere_ends_every_session_but_keeps_tokens(
    rt: Runtime, client: TestClient
) -> None:
    make_user(rt, "bo", Role.READER)
    with transaction(rt.sessions) as s:
        _, plain = auth.create_token(s, s.get_one(User, user_id(rt, "bo")), "cli")
    phone = browser(client.app)
    login(phone, "bo")
    login(client, "bo")
    page = dom(client.get("/tokens").text)
    assert len(page.select("table.sessions tbody tr")) == 2
    assert page.select_one("table.sessions tr.current") is not None
    r = client.post(
        "/sessions/end-all",
        data={"csrf_token": csrf(client, "/tokens")},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert not logged_in(client) and not logged_in(phone)
    h = {"Authorization": f"Bearer {plain}"}
    assert client.get("/api/v1/documents", headers=h).status_code == 200


@SQLITE
def test_one_session_can_be_ended_from_another(rt: Runtime, client: TestClient) -> None:
    make_user(rt, "cy", Role.READER)
    make_user(rt, "dee", Role.READER)
    laptop = browser(client.app)
    login(laptop, "cy")
    login(client, "cy")
    with rt.sessions() as s:
        mine = s.scalars(select(UserSession).order_by(UserSession.id)).all()
    first = mine[0].id  # the laptop's
    r = client.post(
        f"/sessions/{first}/end",
        data={"csrf_token": csrf(client, "/tokens")},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/tokens"
    assert not logged_in(laptop) and logged_in(client)

    # Nobody ends another user's session (an admin may).
    dee = browser(client.app)
    login(dee, "dee")
    with rt.sessions() as s:
        dees = s.scalars(select(UserSession).where(UserSession.user_id == user_id(rt, "dee")))
        dee_id = dees.one().id
    client.post(f"/sessions/{dee_id}/end", data={"csrf_token": csrf(client, "/tokens")})
    assert logged_in(dee)


@SQLITE
def test_admin_logs_a_user_out_everywhere(rt: Runtime, client: TestClient) -> None:
    make_user(rt, "root", Role.ADMIN)
    make_user(rt, "eve", Role.READER)
    eve = browser(client.app)
    login(eve, "eve")
    login(client, "root")
    form = dom(client.get("/admin/users").text).select_one(
        f"form[action='/admin/users/{user_id(rt, 'eve')}/logout']"
    )
    assert form is not None
    r = client.post(
        form["action"],
        data={"csrf_token": csrf(client, "/admin/users")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert not logged_in(eve) and logged_in(client)


def test_an_expired_session_is_refused(rt: Runtime, client: TestClient) -> None:
    make_user(rt, "old", Role.READER)
    login(client, "old")
    assert logged_in(client)
    with transaction(rt.sessions) as s:
        s.execute(update(UserSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert not logged_in(client)
    login(client, "old")  # the next login also sweeps the expired row
    with rt.sessions() as s:
        assert len(s.scalars(select(UserSession)).all()) == 1


def test_checking_a_session_or_token_never_writes(rt: Runtime, client: TestClient) -> None:
    make_user(rt, "ro", Role.READER)
    with transaction(rt.sessions) as s:
        _, plain = auth.create_token(s, s.get_one(User, user_id(rt, "ro")), "t")
    login(client, "ro")
    writes: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            writes.append(statement)

    event.listen(rt.engine, "before_cursor_execute", note)
    try:
        for path in ("/", "/documents", "/tokens", "/api/v1/documents"):
            assert client.get(path, follow_redirects=False).status_code == 200, path
        assert (
            client.get("/api/v1/documents", headers={"Authorization": f"Bearer {plain}"})
        ).status_code == 200
        # Only the forged cookie (a jar may keep the real one beside it, per domain).
        client.cookies.clear()
        client.cookies.set(COOKIE, "forged")
        assert client.get("/", follow_redirects=False).status_code == 303
    finally:
        event.remove(rt.engine, "before_cursor_execute", note)
    assert writes == []


@SQLITE
def test_a_cookie_from_before_server_side_sessions_is_refused(
    rt: Runtime, client: TestClient
) -> None:
    """The old cookie format (uid and a password fingerprint, signed with the real key)."""
    make_user(rt, "legacy", Role.ADMIN)
    data = base64.b64encode(json.dumps({"uid": user_id(rt, "legacy"), "pwv": "x"}).encode())
    client.cookies.set(COOKIE, TimestampSigner(secret_key(rt.settings)).sign(data).decode())
    assert not logged_in(client)


def test_upgrade_to_sessions_keeps_users_and_revokes_tokens_of_disabled_users(
    settings: Settings,
) -> None:
    engine = make_engine(settings.sqlalchemy_url)
    upgrade(engine, "0005")
    with engine.begin() as conn:
        for uid, name, disabled in ((1, "on", False), (2, "off", True)):
            conn.execute(
                text(
                    "INSERT INTO users (id, username, password_hash, role, disabled, created_at)"
                    " VALUES (:id, :n, 'h', 'reader', :d, CURRENT_TIMESTAMP)"
                ),
                {"id": uid, "n": name, "d": disabled},
            )
            conn.execute(
                text(
                    "INSERT INTO api_tokens (id, user_id, name, token_hash, prefix, created_at)"
                    " VALUES (:id, :id, 't', :h, 'kb_', CURRENT_TIMESTAMP)"
                ),
                {"id": uid, "h": f"{uid:064d}"},
            )
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT user_id, revoked_at FROM api_tokens ORDER BY id")).all()
        assert rows[0].revoked_at is None and rows[1].revoked_at is not None
        assert conn.execute(text("SELECT count(*) FROM user_sessions")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM users")).scalar() == 2
    engine.dispose()
    runtime = Runtime.create(settings)
    try:
        with transaction(runtime.sessions) as s:
            user = s.get_one(User, 1)
            _row, secret = auth.start_session(s, user, lifetime_s=60)
        with runtime.sessions() as s:
            found = auth.session_for(s, secret)
            assert found is not None and found.user.username == "on"
    finally:
        runtime.close()
