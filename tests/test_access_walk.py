"""The access-control walk: every route, as every role that may not use it, is refused
and shows nothing of any document.

The table below says who may use each route; a route missing from it fails the first
test, so a new route cannot ship without saying who may call it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth import service as auth
from app.auth.models import Role
from app.db import transaction
from app.documents.models import Document
from app.jobs.models import Job
from app.main import create_app
from app.runtime import Runtime
from tests.factories import store_upload
from tests.routes import api_routes

SECRET = "zebra-quartz-unguessable-7431"
DOC = f"# Payroll\n\n## Bonus\n\nThe bonus code is {SECRET}.\n".encode()

PUBLIC = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/lang/{code}"),
    ("GET", "/healthz"),
    ("GET", "/docs"),
}
R, E, A = Role.READER, Role.EDITOR, Role.ADMIN
NEEDS: dict[tuple[str, str], Role] = {
    ("GET", "/api/v1/search"): R,
    ("GET", "/api/v1/ask"): R,
    ("POST", "/api/v1/answer"): R,
    ("POST", "/api/v1/documents"): E,
    ("GET", "/api/v1/documents"): R,
    ("GET", "/api/v1/documents/{document_id}"): R,
    ("DELETE", "/api/v1/documents/{document_id}"): E,
    ("POST", "/api/v1/documents/{document_id}/reingest"): E,
    ("POST", "/api/v1/documents/bulk"): E,
    ("GET", "/api/v1/collections"): R,
    ("POST", "/api/v1/collections"): A,
    ("PUT", "/api/v1/collections/{name}/access"): A,
    ("GET", "/api/v1/collections/{name}/grants"): A,
    ("POST", "/api/v1/collections/{name}/grants"): A,
    ("DELETE", "/api/v1/collections/{name}/grants"): A,
    ("GET", "/api/v1/groups"): A,
    ("POST", "/api/v1/groups"): A,
    ("DELETE", "/api/v1/groups/{name}"): A,
    ("POST", "/api/v1/groups/{name}/members"): A,
    ("DELETE", "/api/v1/groups/{name}/members/{user}"): A,
    ("POST", "/api/v1/collections/{name}/embedder"): A,
    ("POST", "/logout"): R,
    ("POST", "/sessions/end-all"): R,
    ("POST", "/sessions/{session_id}/end"): R,
    ("GET", "/admin/users"): A,
    ("POST", "/admin/users"): A,
    ("POST", "/admin/users/{user_id}"): A,
    ("POST", "/admin/users/{user_id}/logout"): A,
    ("GET", "/tokens"): R,
    ("POST", "/tokens"): R,
    ("POST", "/tokens/{token_id}/revoke"): R,
    ("GET", "/"): R,
    ("GET", "/ask"): R,
    ("GET", "/passages/{chunk_id}"): R,
    ("GET", "/search/tags"): R,  # the tag filter of another collection (search.html)
    ("GET", "/documents"): R,
    ("POST", "/documents/{document_id}/delete"): E,
    ("POST", "/documents/{document_id}/reingest"): E,
    ("POST", "/documents/bulk"): E,
    ("GET", "/documents/{document_id}"): R,
    ("GET", "/documents/{document_id}/original"): R,
    ("GET", "/documents/{document_id}/pages/{page}.png"): R,
    ("GET", "/documents/{document_id}/preview"): R,
    ("POST", "/documents/{document_id}/chunks/{chunk_id}"): E,  # admins, and its uploader
    ("POST", "/documents/{document_id}/chunks/{chunk_id}/disable"): E,
    ("POST", "/documents/{document_id}/chunks/{chunk_id}/enable"): E,
    ("GET", "/documents/{document_id}/chunks/{chunk_id}/history"): E,
    ("GET", "/documents/{document_id}/chunks/{chunk_id}"): E,
    ("GET", "/documents/{document_id}/chunks/{chunk_id}/edit"): E,
    ("PATCH", "/api/v1/chunks/{chunk_id}"): E,
    ("GET", "/api/v1/chunks/{chunk_id}/history"): E,
    ("GET", "/upload"): E,
    ("POST", "/upload"): E,
    ("GET", "/admin/collections"): A,
    ("POST", "/admin/collections"): A,
    ("POST", "/admin/collections/{collection_id}/embedder"): A,
    ("POST", "/admin/collections/{collection_id}"): A,
    ("POST", "/admin/collections/{collection_id}/access"): A,
    ("POST", "/admin/collections/{collection_id}/grants"): A,
    ("POST", "/admin/collections/{collection_id}/grants/revoke"): A,
    ("GET", "/admin/groups"): A,
    ("POST", "/admin/groups"): A,
    ("POST", "/admin/groups/{group_id}/members"): A,
    ("POST", "/admin/groups/{group_id}/members/remove"): A,
    ("POST", "/admin/groups/{group_id}/delete"): A,
    ("GET", "/admin/jobs"): A,
    ("POST", "/admin/jobs/{job_id}/retry"): A,
    ("POST", "/feedback"): R,
    ("POST", "/api/v1/feedback"): R,
    ("GET", "/admin/insights"): A,
    ("GET", "/admin/insights/export.jsonl"): A,
    ("GET", "/v1/models"): R,  # the OpenAI-compatible facade: bearer API tokens only
    ("POST", "/v1/chat/completions"): R,
}


@pytest.fixture
def backend() -> str:
    return "sqlite"


@dataclass
class World:
    app: FastAPI
    ids: dict[str, str]
    tokens: dict[Role, str]


@pytest.fixture
def world(rt: Runtime) -> Iterator[World]:
    doc_id = store_upload(rt, "payroll.md", DOC)
    tokens: dict[Role, str] = {}
    with transaction(rt.sessions) as s:
        for role in Role:
            user = auth.create_user(s, username=f"u-{role}", password="walk-Pa55word", role=role)
            tokens[role] = auth.create_token(s, user, "walk")[1]
        admin = auth.by_username(s, f"u-{A}")
        assert admin is not None
        job = s.query(Job).filter(Job.document_id == doc_id).one()
        ids = {
            "document_id": str(doc_id),
            "user_id": str(admin.id),
            "token_id": "1",
            "session_id": "1",
            "collection_id": "1",
            "job_id": str(job.id),
            "chunk_id": "1",
            "group_id": "1",
            "user": "x",
            "name": rt.settings.default_collection,
            "code": "zh",
            "page": "1",
        }
    yield World(create_app(runtime=rt), ids, tokens)


def routes(app: FastAPI) -> set[tuple[str, str]]:
    return {(m, r.path) for r in api_routes(app.routes) for m in r.methods - {"HEAD"}}


def request(
    client: TestClient, method: str, path: str, ids: dict[str, str], **kw: Any
) -> httpx.Response:
    url = path.format(**{k: v for k, v in ids.items() if "{" + k + "}" in path})
    data = {"name": "x", "username": "x", "password": "x", "role": "admin", "disabled": "true"}
    files = (
        [("files", ("evil.md", b"# Evil\n\ntext\n"))]
        if path.endswith(("/documents", "/upload"))
        else None
    )
    if method == "GET":
        return client.get(url, params={"q": "bonus code"}, follow_redirects=False, **kw)
    return client.request(method, url, data=data, files=files, follow_redirects=False, **kw)


def test_every_route_says_who_may_use_it(world: World) -> None:
    assert routes(world.app) == set(NEEDS) | PUBLIC


def test_anonymous_requests_are_sent_to_log_in_and_see_nothing(world: World) -> None:
    with TestClient(world.app) as client:
        for method, path in sorted(NEEDS):
            r = request(client, method, path, world.ids)
            where = f"{method} {path}"
            if path.startswith("/api/"):
                assert r.status_code == 401, where
            else:
                assert r.status_code in (303, 401), where
                if r.status_code == 303:
                    assert r.headers["location"].startswith("/login"), where
            assert SECRET not in r.text, where


def test_each_role_is_refused_what_it_may_not_do(rt: Runtime, world: World) -> None:
    with TestClient(world.app) as client:
        for (method, path), needed in sorted(NEEDS.items()):
            for role in Role:
                if role.allows(needed):
                    continue
                headers = {"Authorization": f"Bearer {world.tokens[role]}"}
                r = request(client, method, path, world.ids, headers=headers)
                where = f"{role} {method} {path}"
                assert r.status_code == 403, (where, r.status_code, r.text[:200])
                assert SECRET not in r.text, where
    with rt.sessions() as s:  # nothing a refused request asked for happened
        doc = s.get(Document, int(world.ids["document_id"]))
        assert doc is not None
        admin = auth.by_username(s, f"u-{A}")
        assert admin is not None and not admin.disabled and admin.role == A
        assert auth.by_username(s, "x") is None


# -- private collections: a user outside one sees nothing of it, on any route ----------

VAULT_SECRET = "okapi-vellum-unlisted-5309"
VAULT_FILE = "vault-ledger-q3.md"
VAULT_DOC = f"# Ledger\n\n## Bonus\n\nThe bonus code is {VAULT_SECRET}.\n".encode()


@dataclass
class Vault:
    app: FastAPI
    ids: dict[str, str]
    outsider: dict[Role, str]
    insider: str


@pytest.fixture
def vault(rt: Runtime) -> Iterator[Vault]:
    from app.collections import access
    from app.documents.models import Chunk
    from ingest.worker import Worker

    with transaction(rt.sessions) as s:
        col = rt.collection(s, "vault", create=True)
        access.set_private(s, col, True)
        col_id = col.id
    public_id = store_upload(rt, "payroll.md", DOC)
    doc_id = store_upload(rt, VAULT_FILE, VAULT_DOC, collection="vault")
    assert {o.status for o in Worker(rt).run_until_idle()} == {"ready"}
    outsider: dict[Role, str] = {}
    with transaction(rt.sessions) as s:
        for role in (Role.READER, Role.EDITOR):
            user = auth.create_user(s, username=f"out-{role}", password="walk-Pa55word", role=role)
            outsider[role] = auth.create_token(s, user, "walk")[1]
        inside = auth.create_user(s, username="in-reader", password="walk-Pa55word", role=R)
        group = access.create_group(s, "auditors")
        access.add_member(s, group, inside)
        access.grant(s, s.get_one(type(col), col_id), level=access.Level.READ, group=group)
        insider = auth.create_token(s, inside, "walk")[1]
        chunk = s.query(Chunk).filter(Chunk.document_id == doc_id).first()
        assert chunk is not None
        job = s.query(Job).filter(Job.document_id == doc_id).one()
        ids = {
            "document_id": str(doc_id),
            "chunk_id": str(chunk.id),
            "collection_id": str(col_id),
            "name": "vault",
            "job_id": str(job.id),
            "user_id": "1",
            "token_id": "999",  # not the walkers' own: revoking those ends the walk
            "session_id": "999",
            "group_id": "1",
            "user": "x",
            "code": "zh",
            "page": "1",
            "public_id": str(public_id),
        }
    yield Vault(create_app(runtime=rt), ids, outsider, insider)


def _leaks(r: httpx.Response) -> bool:
    return VAULT_SECRET in r.text or VAULT_FILE in r.text or "vault-ledger" in r.text


def test_a_private_collection_is_invisible_outside_it_on_every_route(
    rt: Runtime, vault: Vault
) -> None:
    """Every route a reader or an editor may use, with the private document's, chunk's and
    collection's ids and name, and searches for its text (in every collection and in it by
    name): not one response shows its text, its file name or that it exists."""
    with TestClient(vault.app) as client:
        for role, token in vault.outsider.items():
            headers = {"Authorization": f"Bearer {token}"}
            for (method, path), needed in sorted(NEEDS.items()):
                if not role.allows(needed):
                    continue
                r = request(client, method, path, vault.ids, headers=headers)
                where = f"{role} {method} {path}"
                assert not _leaks(r), (where, r.status_code, r.text[:300])
                if "{document_id}" in path or "{chunk_id}" in path:
                    assert r.status_code == 404, (where, r.status_code, r.text[:200])
            for url in ("/api/v1/search", "/api/v1/ask", "/", "/ask", "/search/tags"):
                for params in (
                    {"q": "bonus code okapi vellum"},
                    {"q": "bonus", "collection": "vault"},
                ):
                    r = client.get(url, params=params, headers=headers)
                    assert not _leaks(r), (role, url, params, r.text[:300])
                    if url.startswith("/api/") and "collection" in params:
                        assert r.status_code == 404, (role, url, r.status_code)
            r = client.post(
                "/v1/chat/completions",
                json={"model": "kb:vault", "messages": [{"role": "user", "content": "bonus"}]},
                headers=headers,
            )
            assert r.status_code == 404 and not _leaks(r), r.text[:200]
            listed = client.get("/api/v1/collections", headers=headers).json()
            assert "vault" not in {c["name"] for c in listed}
            models = client.get("/v1/models", headers=headers).json()["data"]
            assert "kb:vault" not in {m["id"] for m in models}
        # The editor outside may not add to it either.
        r = client.post(
            "/api/v1/documents",
            data={"collection": "vault"},
            files=[("files", ("x.md", b"# X\n\nadded\n"))],
            headers={"Authorization": f"Bearer {vault.outsider[Role.EDITOR]}"},
        )
        assert r.status_code == 404, r.text[:200]

        # The walk is not vacuous: a member of the granted group finds it everywhere.
        headers = {"Authorization": f"Bearer {vault.insider}"}
        found = client.get(
            "/api/v1/search", params={"q": "bonus code okapi vellum"}, headers=headers
        )
        assert VAULT_SECRET in found.text
        assert "vault" in found.json()["collections"]
        assert (
            client.get(f"/api/v1/documents/{vault.ids['document_id']}", headers=headers).status_code
            == 200
        )
        page = client.get(f"/documents/{vault.ids['document_id']}", headers=headers)
        assert page.status_code == 200 and VAULT_SECRET in page.text
        # An admin sees it too; the document stayed untouched by the outsiders.
        with rt.sessions() as s:
            assert s.get(Document, int(vault.ids["document_id"])) is not None
