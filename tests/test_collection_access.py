"""Access per collection: private collections, grants to users and groups, managed from
the CLI, the API and the admin pages; search across the collections a user may read.

The route-by-route walk (nothing of a private collection reaches an outsider) is in
tests/test_access_walk.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.auth import service as auth
from app.auth.models import Role, User
from app.collections import access
from app.collections.models import Access as Level
from app.db import transaction
from app.main import create_app
from app.runtime import Runtime
from app.search.service import search
from ingest.worker import Worker
from tests.factories import store_upload
from tests.samples import GUIDE_MD, LEAVE_MD


def _user(rt: Runtime, name: str, role: Role) -> int:
    with transaction(rt.sessions) as s:
        return auth.create_user(s, username=name, password="access-Pa55word", role=role).id


def _access(rt: Runtime, user_id: int) -> access.Access:
    with rt.sessions() as s:
        return access.access_for(s, s.get_one(User, user_id))


def test_roles_and_grants_decide_who_reads_and_writes(rt: Runtime) -> None:
    reader, editor, admin = (
        _user(rt, "r", Role.READER),
        _user(rt, "e", Role.EDITOR),
        _user(rt, "a", Role.ADMIN),
    )
    with transaction(rt.sessions) as s:
        public = rt.collection(s).id
        hr = rt.collection(s, "hr", create=True)
        hr_id = hr.id
    # No private collection: no restriction (no SQL condition on any query).
    assert _access(rt, reader).readable is None
    assert _access(rt, reader).writable == frozenset()  # readers never write
    assert _access(rt, editor).writable is None

    with transaction(rt.sessions) as s:
        access.set_private(s, s.get_one(type(hr), hr_id), True)
    r, e = _access(rt, reader), _access(rt, editor)
    assert r.can_read(public) and not r.can_read(hr_id)
    assert e.can_write(public) and not e.can_read(hr_id) and not e.can_write(hr_id)
    assert _access(rt, admin).can_write(hr_id)

    with transaction(rt.sessions) as s:
        col = s.get_one(type(hr), hr_id)
        team = access.create_group(s, "people")
        access.add_member(s, team, s.get_one(User, reader))
        access.add_member(s, team, s.get_one(User, editor))
        access.grant(s, col, level=Level.READ, group=team)
    r, e = _access(rt, reader), _access(rt, editor)
    assert r.can_read(hr_id) and e.can_read(hr_id) and not e.can_write(hr_id)

    with transaction(rt.sessions) as s:  # a user's own grant adds write for the editor
        access.grant(s, s.get_one(type(hr), hr_id), level=Level.WRITE, user=s.get_one(User, editor))
        access.grant(s, s.get_one(type(hr), hr_id), level=Level.WRITE, user=s.get_one(User, reader))
    assert _access(rt, editor).can_write(hr_id)
    assert not _access(rt, reader).can_write(hr_id)  # the role still decides

    with transaction(rt.sessions) as s:
        col = s.get_one(type(hr), hr_id)
        access.remove_member(s, access.group_by_name(s, "people"), s.get_one(User, reader))
        access.revoke(s, col, user=s.get_one(User, reader))
    assert not _access(rt, reader).can_read(hr_id)
    assert _access(rt, editor).can_read(hr_id)  # through the group still


def test_search_covers_the_readable_collections_of_one_model(rt: Runtime) -> None:
    with transaction(rt.sessions) as s:
        hr = rt.collection(s, "hr", create=True)
        access.set_private(s, hr, True)
        hr_id = hr.id
    store_upload(rt, "guide.md", GUIDE_MD.encode())
    store_upload(rt, "leave.md", LEAVE_MD.encode(), collection="hr")
    assert {o.status for o in Worker(rt).run_until_idle()} == {"ready"}
    outsider = _access(rt, _user(rt, "out", Role.READER))
    mine = search(rt, query="annual leave", k=10, access=outsider)
    assert {h.file for h in mine.hits} == {"guide.md"}
    assert mine.collections == (rt.settings.default_collection,)
    everything = search(rt, query="annual leave", k=10)
    assert {h.file for h in everything.hits} == {"guide.md", "leave.md"}
    assert hr_id and "hr" in everything.collections


def test_collections_of_another_model_are_named_as_skipped(rt: Runtime) -> None:
    with transaction(rt.sessions) as s:
        rt.collection(s)
        rt.collection(s, "other", create=True).model = "some-other-model"
    result = search(rt, query="anything", k=3)
    assert result.skipped == ("other",)
    assert "other" not in result.collections


def test_admin_manages_access_through_the_api(rt: Runtime) -> None:
    with transaction(rt.sessions) as s:
        admin = auth.create_user(s, username="boss", password="access-Pa55word", role=Role.ADMIN)
        token = auth.create_token(s, admin, "t")[1]
        auth.create_user(s, username="amy", password="access-Pa55word", role=Role.READER)
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(runtime=rt)) as client:
        r = client.post(
            "/api/v1/collections", json={"name": "exams", "private": True}, headers=headers
        )
        assert r.status_code == 201 and r.json()["private"] is True
        assert (
            client.post("/api/v1/groups", json={"name": "teachers"}, headers=headers).status_code
            == 201
        )
        r = client.post("/api/v1/groups/teachers/members", json={"user": "amy"}, headers=headers)
        assert r.json()["members"] == ["amy"]
        r = client.post(
            "/api/v1/collections/exams/grants",
            json={"group": "teachers", "access": "write"},
            headers=headers,
        )
        assert r.json() == [{"grantee": "teachers", "kind": "group", "access": "write"}]
        bad = client.post(
            "/api/v1/collections/exams/grants", json={"user": "nobody"}, headers=headers
        )
        assert bad.status_code == 404
        both = client.post(
            "/api/v1/collections/exams/grants",
            json={"user": "amy", "group": "teachers"},
            headers=headers,
        )
        assert both.status_code == 409
        r = client.delete("/api/v1/collections/exams/grants?group=teachers", headers=headers)
        assert r.json() == []
        r = client.put("/api/v1/collections/exams/access", json={"private": False}, headers=headers)
        assert r.json()["private"] is False


def test_admin_pages_share_a_private_collection(rt: Runtime) -> None:
    from tests.webclient import csrf

    with transaction(rt.sessions) as s:
        auth.create_user(s, username="boss", password="access-Pa55word", role=Role.ADMIN)
        auth.create_user(s, username="amy", password="access-Pa55word", role=Role.READER)
        col_id = rt.collection(s, "exams", create=True).id
    with TestClient(create_app(runtime=rt)) as client:
        client.post("/login", data={"username": "boss", "password": "access-Pa55word"})
        token = csrf(client, "/admin/collections")
        r = client.post(
            f"/admin/collections/{col_id}/access", data={"private": "1", "csrf_token": token}
        )
        assert r.status_code == 200  # redirected back to the collections page
        r = client.post(
            f"/admin/collections/{col_id}/grants",
            data={"user": "amy", "level": "read", "csrf_token": token},
        )
        assert "amy" in r.text and "Private" in r.text
        r = client.post("/admin/groups", data={"name": "teachers", "csrf_token": token})
        assert "teachers" in r.text
    with rt.sessions() as s:
        grants = access.grants(s, s.get_one(access.Collection, col_id))
    assert [(g.grantee, g.access) for g in grants] == [("amy", "read")]


@pytest.mark.slow
def test_cli_creates_shares_and_revokes(tmp_path: Path) -> None:
    env = {"KB_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}

    def kb(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    kb("user", "create", "amy", "--password", "cli-Pa55word-long")
    assert "private" in kb("collection", "create", "hr", "--private")
    kb("group", "create", "people")
    kb("group", "add", "people", "amy")
    kb("collection", "grant", "hr", "--group", "people", "--access", "read")
    listed = kb("collection", "list")
    assert "hr" in listed and "group people (read)" in listed
    assert "revoked" in kb("collection", "revoke", "hr", "--group", "people")
    assert "amy" in kb("group", "list")
