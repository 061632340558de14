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
    ("GET", "/api/v1/collections"): R,
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
    ("GET", "/documents"): R,
    ("POST", "/documents/{document_id}/delete"): E,
    ("POST", "/documents/{document_id}/reingest"): E,
    ("GET", "/documents/{document_id}"): R,
    ("GET", "/documents/{document_id}/original"): R,
    ("GET", "/upload"): E,
    ("POST", "/upload"): E,
    ("GET", "/admin/collections"): A,
    ("POST", "/admin/collections"): A,
    ("POST", "/admin/collections/{collection_id}/embedder"): A,
    ("POST", "/admin/collections/{collection_id}"): A,
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
            "name": rt.settings.default_collection,
            "code": "zh",
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
