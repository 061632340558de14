"""Every route, walked with hostile path, query and form values, answers below 500.

The walk reads the routes from the app itself, so a new route is covered without
touching this file: ids past 2^63, negative and zero ids, text where a number goes,
NUL and path-traversal escapes, non-ASCII and very long values, for every path, query
and form parameter, as an admin (with a token, so every handler is reached) and with a
session cookie whose CSRF field is hostile.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel

from app.auth import service as auth
from app.auth.models import Role
from app.db import transaction
from app.main import create_app
from app.runtime import Runtime
from tests import pdfgen
from tests.factories import store_upload
from tests.routes import api_routes
from tests.samples import GUIDE_MD

HOSTILE = [
    "0",
    "-1",
    str(2**63),
    str(2**64),
    "9" * 40,
    "1e309",
    "nan",
    "abc",
    "%00",
    "\x00",
    "../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "é中文🙂",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "x" * 5000,
    "",
]
PASSWORD = "hostile-Pa55word"


def params_of(route: APIRoute) -> tuple[set[str], set[str], set[str]]:
    """Names of the route's query, form/body and path parameters, dependencies included."""
    query: set[str] = set()
    body: set[str] = set()
    path: set[str] = set()
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        for p in dep.query_params:  # a query model (``Annotated[Model, Query()]``): its fields
            model = p.field_info.annotation
            if isinstance(model, type) and issubclass(model, BaseModel):
                query |= {f.alias or name for name, f in model.model_fields.items()}
            else:
                query.add(p.alias)
        body |= {p.alias for p in dep.body_params}
        path |= {p.alias for p in dep.path_params}
        stack.extend(dep.dependencies)
    return query, body, path


def fill(path: str, value: str) -> str:
    safe = quote(value, safe="") if value else "%20"
    return re.sub(r"\{[^}]+\}", lambda _: safe, path)


def requests_for(route: APIRoute) -> Iterator[tuple[str, str, dict[str, Any]]]:
    query, body, _path = params_of(route)
    for method in sorted(route.methods - {"HEAD"}):
        for value in HOSTILE:
            kwargs: dict[str, Any] = {"params": dict.fromkeys(query, value)}
            if body and method != "GET":
                kwargs["data"] = dict.fromkeys(body - {"files", "body"}, value)
                if "files" in body:
                    kwargs["files"] = [("files", (value or "x", b"hostile", "text/plain"))]
            yield method, fill(route.path, value), kwargs


@pytest.fixture
def app(rt: Runtime) -> FastAPI:
    store_upload(rt, "guide.md", GUIDE_MD.encode())
    return create_app(runtime=rt)


def admin_token(rt: Runtime) -> str:
    with transaction(rt.sessions) as s:
        user = auth.create_user(s, username="walker", password=PASSWORD, role=Role.ADMIN)
        return auth.create_token(s, user, "walk")[1]


def test_every_route_answers_hostile_values_below_500(rt: Runtime, app: FastAPI) -> None:
    token = admin_token(rt)
    failures: list[str] = []
    seen = 0
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        for route in api_routes(app.routes):
            for method, url, kwargs in requests_for(route):
                seen += 1
                r = client.request(method, url, **kwargs)
                if r.status_code >= 500:
                    failures.append(f"{method} {url[:80]} {kwargs.get('params')!r:.80} -> "
                                    f"{r.status_code} {r.text[:200]}")  # fmt: skip
    assert seen > 500
    assert failures == []


def test_hostile_csrf_tokens_are_a_403(rt: Runtime, app: FastAPI) -> None:
    admin_token(rt)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post(
            "/login",
            data={"username": "walker", "password": PASSWORD},
            headers={"Origin": "http://testserver"},
            follow_redirects=False,
        )
        assert r.status_code == 303
        for value in ["é中文", "\x00", "x" * 5000, ""]:
            r = client.post("/tokens", data={"name": "t", "csrf_token": value})
            assert r.status_code == 403, (value, r.status_code)


def test_documents_list_rejects_out_of_range_paging(rt: Runtime, app: FastAPI) -> None:
    token = admin_token(rt)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        for params in ({"limit": "-1"}, {"limit": "0"}, {"limit": "1001"}, {"offset": "-1"}):
            assert client.get("/api/v1/documents", params=params).status_code == 422
        assert client.get("/api/v1/documents", params={"collection": "nope"}).status_code == 404
        assert len(client.get("/api/v1/documents", params={"limit": "1"}).json()) == 1


def test_page_preview_routes_answer_hostile_values_below_500(
    rt: Runtime, app: FastAPI, tmp_path: Path
) -> None:
    """The walk above fills every path parameter with the same value, so the document id
    is never a real one there: here a real PDF's pages and preview get the hostile values."""
    pdf = pdfgen.english_outline_pdf(tmp_path)
    doc_id = store_upload(rt, pdf.name, pdf.read_bytes())
    token = admin_token(rt)
    failures: list[str] = []
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        for value in HOSTILE:
            safe = quote(value, safe="") if value else "%20"
            for url, params in [
                (f"/documents/{doc_id}/pages/{safe}.png", {}),
                (f"/documents/{doc_id}/pages/1.png", {"x": value}),
                (f"/documents/{doc_id}/preview", {"chunk": value}),
                (f"/documents/{doc_id}/preview", {"chunk": "1", "page": value}),
            ]:
                r = client.get(url, params=params)
                if r.status_code >= 500:
                    failures.append(f"{url[:80]} {params!r:.80} -> {r.status_code}")
        assert client.get(f"/documents/{doc_id}/pages/1.png").status_code == 200
    assert failures == []


def test_chunk_routes_answer_hostile_values_below_500(rt: Runtime, app: FastAPI) -> None:
    """The chunk editing routes with a real document and chunk: hostile chunk ids, texts
    and flags are refused (4xx), never a 500, and the chunk is left as it was."""
    from sqlalchemy import select

    from app.documents.models import Chunk
    from tests.factories import settle

    doc_id = store_upload(rt, "guide.md", GUIDE_MD.encode())
    settle(rt)
    with rt.sessions() as s:
        chunk = s.scalars(select(Chunk).where(Chunk.document_id == doc_id)).first()
        assert chunk is not None
        chunk_id, before = chunk.id, chunk.text
    token = admin_token(rt)
    failures: list[str] = []
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        for value in HOSTILE:
            safe = quote(value, safe="") if value else "%20"
            calls: list[tuple[str, str, dict[str, Any]]] = [
                ("POST", f"/documents/{doc_id}/chunks/{safe}", {"data": {"text": "x"}}),
                ("POST", f"/documents/{doc_id}/chunks/{safe}/disable", {}),
                ("GET", f"/documents/{doc_id}/chunks/{safe}/history", {}),
                ("PATCH", f"/api/v1/chunks/{safe}", {"json": {"text": "x"}}),
                ("PATCH", f"/api/v1/chunks/{chunk_id}", {"json": {"disabled": value}}),
                ("PATCH", f"/api/v1/chunks/{chunk_id}", {"content": value.encode()}),
            ]
            if value.strip(" \x00") == "":
                calls.append(("PATCH", f"/api/v1/chunks/{chunk_id}", {"json": {"text": value}}))
            for method, url, kw in calls:
                r = client.request(method, url, **kw)
                if r.status_code >= 500:
                    failures.append(f"{method} {url[:80]} -> {r.status_code}")
        too_long = {"json": {"text": "x" * 20_001}}
        assert client.patch(f"/api/v1/chunks/{chunk_id}", **too_long).status_code == 422
    assert failures == []
    with rt.sessions() as s:
        row = s.get_one(Chunk, chunk_id)
        assert row.text == before and not row.disabled
