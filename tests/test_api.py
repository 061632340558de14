"""The JSON API and the search page, on a real app with a real database and worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.auth.models import Role
from app.main import create_app
from app.runtime import Runtime
from app.settings import Settings
from ingest.worker import Worker
from tests.factories import token_for
from tests.samples import GUIDE_MD, LEAVE_MD


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the data layer runs on both backends in test_pipeline/test_jobs


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    """An API client holding an editor's Bearer token."""
    token = token_for(rt, "editor1", Role.EDITOR)
    with TestClient(create_app(runtime=rt), headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def post_api_upload(client: TestClient, *files: tuple[str, bytes]) -> dict:
    r = client.post("/api/v1/documents", files=[("files", (n, d)) for n, d in files])
    return {"status": r.status_code, "json": r.json()}


def test_upload_ingest_get_search_delete(client: TestClient, rt: Runtime) -> None:
    r = post_api_upload(client, ("guide.md", GUIDE_MD.encode()), ("leave.md", LEAVE_MD.encode()))
    assert r["status"] == 201
    items = r["json"]["items"]
    assert [i["result"] for i in items] == ["accepted", "accepted"]
    leave_id = items[1]["document_id"]

    queued = client.get(f"/api/v1/documents/{leave_id}").json()
    assert queued["status"] == "queued" and queued["job"]["status"] == "queued"
    Worker(rt).run_until_idle()
    ready = client.get(f"/api/v1/documents/{leave_id}").json()
    assert ready["status"] == "ready" and ready["job"]["progress"] == 1.0
    assert ready["chunk_count"] >= 2 and ready["language"] == "zh"

    listed = client.get("/api/v1/documents").json()
    assert {d["filename"] for d in listed} == {"guide.md", "leave.md"}

    res = client.get(
        "/api/v1/search", params={"q": "sick leave medical certificate", "k": 3}
    ).json()
    top = res["results"][0]
    assert top["file"] == "leave.md" and "医院出具的证明" in top["text"]
    assert top["heading_path"] == ["员工休假制度", "病假"]
    assert set(res["timings"]) >= {"embed_ms", "vector_ms", "fetch_ms", "total_ms"}

    assert client.delete(f"/api/v1/documents/{leave_id}").status_code == 204
    assert client.get(f"/api/v1/documents/{leave_id}").status_code == 404
    res = client.get("/api/v1/search", params={"q": "sick leave medical certificate"}).json()
    assert all(h["file"] != "leave.md" for h in res["results"])


def test_duplicate_upload_is_reported(client: TestClient) -> None:
    first = post_api_upload(client, ("guide.md", GUIDE_MD.encode()))
    again = post_api_upload(client, ("guide-copy.md", GUIDE_MD.encode()))
    assert again["status"] == 200
    item = again["json"]["items"][0]
    assert item["result"] == "duplicate"
    assert item["document_id"] == first["json"]["items"][0]["document_id"]


@pytest.mark.parametrize(
    ("name", "data", "status", "reason"),
    [
        ("empty.md", b"", 400, "empty"),
        ("setup.exe", b"MZ not really", 400, "unsupported file type '.exe'"),
        ("noext", b"hello", 400, "unsupported file type"),
    ],
)
def test_bad_uploads_get_a_clear_4xx(
    client: TestClient, name: str, data: bytes, status: int, reason: str
) -> None:
    r = client.post("/api/v1/documents", files=[("files", (name, data))])
    assert r.status_code == status
    assert reason in r.json()["detail"][0]["reason"]


def test_oversized_upload_is_413(rt: Runtime) -> None:
    rt.settings = Settings(**{**rt.settings.model_dump(), "max_upload_bytes": 1000})
    token = token_for(rt, "editor2", Role.EDITOR)
    with TestClient(create_app(runtime=rt), headers={"Authorization": f"Bearer {token}"}) as c:
        r = c.post("/api/v1/documents", files=[("files", ("big.md", b"x" * 5000))])
    assert r.status_code == 413
    assert "larger than the limit" in r.json()["detail"][0]["reason"]
    assert not [p for p in rt.settings.files_dir.iterdir() if p.is_file()]


def test_path_in_filename_is_not_followed(client: TestClient, rt: Runtime) -> None:
    r = post_api_upload(client, ("../../etc/evil.md", b"# Title\n\nBody text here.\n"))
    item = r["json"]["items"][0]
    assert item["filename"] == "evil.md"
    stored = [p.name for p in rt.settings.files_dir.iterdir()]
    assert stored and all(name != "evil.md" for name in stored)


def test_search_validation(client: TestClient) -> None:
    assert client.get("/api/v1/search", params={"q": ""}).status_code == 422
    assert client.get("/api/v1/search", params={"q": "x", "k": 0}).status_code == 422
    assert client.get("/api/v1/search", params={"q": "x", "collection": "nope"}).status_code == 404


def test_openapi_docs_are_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/api/v1/search", "/api/v1/documents", "/api/v1/documents/{document_id}"} <= set(
        spec["paths"]
    )
    assert client.get("/docs").status_code == 200


def test_errors_under_v1_are_in_openai_shape(client: TestClient, rt: Runtime) -> None:
    """OpenAI clients parse {"error": {"message", ...}}; /api/ keeps {"detail"}."""
    token = token_for(rt, "reader1", Role.READER)
    auth = {"Authorization": f"Bearer {token}"}
    missing = client.get("/v1/no-such-thing", headers=auth)
    assert missing.status_code == 404 and missing.json()["error"]["message"]
    anonymous = client.get("/v1/models", headers={"Authorization": "Bearer not-a-token"})
    assert anonymous.status_code == 401 and "message" in anonymous.json()["error"]
    huge = client.post(
        "/v1/chat/completions",
        headers={**auth, "Content-Type": "application/json"},
        content=b'{"model": "kb:default", "messages": [' + b" " * (2 * 2**20) + b"]}",
    )
    assert huge.status_code == 413 and huge.json()["error"]["message"]
    assert client.get("/api/v1/no-such-thing", headers=auth).json()["detail"]
