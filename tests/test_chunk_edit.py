"""Editing chunks by hand: a new text is embedded again and searchable at once, a disabled
chunk is in no search until enabled, the history keeps every change, and only admins and
the document's editor may do it.

Real SQLite and PostgreSQL (the change log is written by triggers), the real CPU
embedder, real FAISS, the real app over HTTP.
"""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.auth import service as auth
from app.auth.models import Role
from app.collections import access
from app.db import transaction
from app.documents import chunks as chunk_edits
from app.documents.models import Chunk, ChunkEdit, ChunkSentences, Document
from app.embedding.base import EmbedderError
from app.main import create_app
from app.runtime import Runtime
from app.search.service import SearchFilters, search
from app.vectors.index import bytes_to_vectors
from tests.factories import settle, store_upload, token_for
from tests.webclient import dom, login, make_user

DOC = (
    b"# Handbook\n\n## Parking\n\nVisitors park in the zebra lot behind building seven.\n\n"
    b"## Lunch\n\nThe canteen serves noodles at noon on every weekday.\n"
)
NEW = "Visitors park in the quokka garage under the glass tower."


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def world(rt: Runtime) -> dict[str, object]:
    """A ready document uploaded by the editor ``owner``; tokens for every role."""
    tokens = {
        "admin": token_for(rt, "boss", Role.ADMIN),
        "owner": token_for(rt, "owner", Role.EDITOR),
        "other": token_for(rt, "other", Role.EDITOR),
        "reader": token_for(rt, "reader", Role.READER),
    }
    doc_id = store_upload(rt, "handbook.md", DOC)
    assert {o.status for o in settle(rt)} == {"ready"}
    with transaction(rt.sessions) as s:
        owner = s.get_one(Document, doc_id)
        user = auth.by_username(s, "owner")
        assert user is not None
        owner.uploaded_by_id = user.id
        parking = s.scalars(
            select(Chunk).where(Chunk.document_id == doc_id, Chunk.text.contains("zebra"))
        ).one()
        lunch = s.scalars(
            select(Chunk).where(Chunk.document_id == doc_id, Chunk.text.contains("noodles"))
        ).one()
        ids = {"doc": doc_id, "parking": parking.id, "lunch": lunch.id}
    return {"tokens": tokens, "ids": ids}


def _ids(rt: Runtime, query: str, mode: str, **filters: object) -> list[int]:
    f = SearchFilters(**filters) if filters else None  # type: ignore[arg-type]
    return [h.chunk_id for h in search(rt, query=query, mode=mode, filters=f, k=10).hits]


def _index_ids(rt: Runtime) -> set[int]:
    with rt.sessions() as s:
        col = rt.collection(s)
        return rt.indexes.get(s, col).ids()


def test_an_edited_chunk_is_found_by_its_new_text_at_once(
    rt: Runtime, world: dict[str, object]
) -> None:
    ids = world["ids"]
    assert isinstance(ids, dict)
    assert ids["parking"] in _ids(rt, "zebra", "lexical")
    _index_ids(rt)  # the index is loaded and synced before the edit
    with TestClient(create_app(runtime=rt)) as c:
        tokens = world["tokens"]
        assert isinstance(tokens, dict)
        r = c.patch(
            f"/api/v1/chunks/{ids['parking']}", json={"text": NEW}, headers=_bearer(tokens["owner"])
        )
        assert r.status_code == 200, r.text
        assert r.json()["text"] == NEW and r.json()["disabled"] is False
    # Lexical: the new words, not the old.
    assert _ids(rt, "quokka garage", "lexical")[:1] == [ids["parking"]]
    assert ids["parking"] not in _ids(rt, "zebra", "lexical")
    # Dense and hybrid: the new text's meaning, with the vector in the index the new one.
    assert _ids(rt, "quokka garage under the glass tower", "dense")[0] == ids["parking"]
    assert _ids(rt, "quokka garage", "hybrid")[0] == ids["parking"]
    with rt.sessions() as s:
        chunk = s.get_one(Chunk, ids["parking"])
        assert chunk.text == NEW and "quokka" in (chunk.search_terms or "")
        col = rt.collection(s)
        idx = rt.indexes.get(s, col)
        stored = bytes_to_vectors([chunk.vector], col.dim)[0]
        in_index = idx.reconstruct(int(chunk.id))
        assert np.allclose(stored, in_index, atol=1e-3)
        expected = rt.embedders.get(col.embedder).embed_documents([f"Handbook > Parking\n\n{NEW}"])[
            0
        ]
        assert float(np.dot(stored, expected)) > 0.99
        history = chunk_edits.history(s, chunk.id)
        assert [(e.action, e.user, e.old_text, e.new_text) for e in history] == [
            ("edit", "owner", "Visitors park in the zebra lot behind building seven.", NEW)
        ]
        # Sentence vectors are the new text's (or none, for a model that keeps none).
        rows = s.scalars(select(ChunkSentences).where(ChunkSentences.chunk_id == chunk.id)).all()
        assert all(r.model == col.model for r in rows)


def test_a_disabled_chunk_is_in_no_search_until_enabled(
    rt: Runtime, world: dict[str, object]
) -> None:
    ids, tokens = world["ids"], world["tokens"]
    assert isinstance(ids, dict) and isinstance(tokens, dict)
    queries = [
        ("zebra lot", "lexical", {}),
        ("where do visitors park", "dense", {}),
        ("where do visitors park zebra", "hybrid", {}),
        ("zebra lot", "hybrid", {"document_id": ids["doc"]}),
        ("zebra lot", "lexical", {"doc_type": "markdown"}),
        ("where do visitors park", "dense", {"language": "en"}),
    ]
    for q, mode, f in queries:
        assert ids["parking"] in _ids(rt, q, mode, **f), (q, mode, f)
    assert ids["parking"] in _index_ids(rt)
    with TestClient(create_app(runtime=rt)) as c:
        r = c.patch(
            f"/api/v1/chunks/{ids['parking']}",
            json={"disabled": True},
            headers=_bearer(tokens["admin"]),
        )
        assert r.status_code == 200 and r.json()["disabled"] is True, r.text
        for q, mode, f in queries:
            assert ids["parking"] not in _ids(rt, q, mode, **f), (q, mode, f)
        assert ids["parking"] not in _index_ids(rt)
        assert ids["lunch"] in _index_ids(rt)
        r = c.get("/api/v1/search", params={"q": "zebra lot"}, headers=_bearer(tokens["reader"]))
        assert r.status_code == 200
        assert ids["parking"] not in [h["chunk_id"] for h in r.json()["results"]]
        assert "behind building seven" not in r.text
        # A full id diff agrees with the change log's sync.
        with rt.sessions() as s:
            assert rt.indexes.check(s, rt.collection(s).id) == 0
        r = c.patch(
            f"/api/v1/chunks/{ids['parking']}",
            json={"disabled": False},
            headers=_bearer(tokens["owner"]),
        )
        assert r.status_code == 200 and r.json()["disabled"] is False
        for q, mode, f in queries:
            assert ids["parking"] in _ids(rt, q, mode, **f), (q, mode, f)
        assert ids["parking"] in _index_ids(rt)
        history = c.get(
            f"/api/v1/chunks/{ids['parking']}/history", headers=_bearer(tokens["owner"])
        ).json()
        assert [(e["action"], e["user"]) for e in history] == [
            ("enable", "owner"),
            ("disable", "boss"),
        ]


def test_who_may_change_a_chunk(rt: Runtime, world: dict[str, object]) -> None:
    ids, tokens = world["ids"], world["tokens"]
    assert isinstance(ids, dict) and isinstance(tokens, dict)
    url = f"/api/v1/chunks/{ids['lunch']}"
    with TestClient(create_app(runtime=rt)) as c:
        for who in ("reader", "other"):
            for body in ({"text": "changed"}, {"disabled": True}):
                assert c.patch(url, json=body, headers=_bearer(tokens[who])).status_code == 403
            assert c.get(url + "/history", headers=_bearer(tokens[who])).status_code == 403
        assert c.patch(url, json={"text": "x"}).status_code == 401
        for who in ("owner", "admin"):
            r = c.patch(url, json={"disabled": True}, headers=_bearer(tokens[who]))
            assert r.status_code == 200, (who, r.text)
            c.patch(url, json={"disabled": False}, headers=_bearer(tokens[who]))
    with rt.sessions() as s:
        assert s.get_one(Chunk, ids["lunch"]).text.startswith("The canteen")
        actions = s.scalars(
            select(ChunkEdit.action)
            .where(ChunkEdit.chunk_id == ids["lunch"])
            .order_by(ChunkEdit.id)
        ).all()
        assert actions == ["disable", "enable", "disable", "enable"]


def test_an_outsider_of_a_private_collection_gets_404(rt: Runtime) -> None:
    with transaction(rt.sessions) as s:
        col = rt.collection(s, "vault", create=True)
        access.set_private(s, col, True)
    doc_id = store_upload(rt, "vault.md", DOC, collection="vault")
    assert {o.status for o in settle(rt)} == {"ready"}
    editor = token_for(rt, "outsider", Role.EDITOR)
    with rt.sessions() as s:
        chunk_id = s.scalars(select(Chunk.id).where(Chunk.document_id == doc_id)).first()
    make_user(rt, "outsider-web", Role.EDITOR)
    with TestClient(create_app(runtime=rt)) as c:
        for body in ({"text": "x"}, {"disabled": True}, "not json"):
            kw = {"json": body} if isinstance(body, dict) else {"content": body}
            r = c.patch(f"/api/v1/chunks/{chunk_id}", headers=_bearer(editor), **kw)  # type: ignore[arg-type]
            assert r.status_code == 404 and "zebra" not in r.text, r.text
        assert (
            c.get(f"/api/v1/chunks/{chunk_id}/history", headers=_bearer(editor)).status_code == 404
        )
        login(c, "outsider-web")
        page = c.get("/documents")
        token = dom(page.text).find("input", {"name": "csrf_token"})
        assert token is not None
        headers = {"X-CSRF-Token": token["value"]}
        for suffix in ("", "/disable", "/enable"):
            r = c.post(
                f"/documents/{doc_id}/chunks/{chunk_id}{suffix}",
                data={"text": "x"},
                headers=headers,
                follow_redirects=False,
            )
            assert r.status_code == 404, (suffix, r.status_code)
        r = c.get(f"/documents/{doc_id}/chunks/{chunk_id}/history")
        assert r.status_code == 404
    with rt.sessions() as s:
        assert (
            "zebra" in s.get_one(Chunk, chunk_id).text
            or "noodles" in s.get_one(Chunk, chunk_id).text
        )


def test_hostile_values(rt: Runtime, world: dict[str, object]) -> None:
    ids, tokens = world["ids"], world["tokens"]
    assert isinstance(ids, dict) and isinstance(tokens, dict)
    other_doc = store_upload(rt, "other.md", b"# Other\n\n## One\n\nAn unrelated passage.\n")
    settle(rt)
    with rt.sessions() as s:
        foreign = s.scalars(select(Chunk.id).where(Chunk.document_id == other_doc)).first()
    h = _bearer(tokens["admin"])
    url = f"/api/v1/chunks/{ids['parking']}"
    with TestClient(create_app(runtime=rt)) as c:
        assert c.patch(url, json={"text": ""}, headers=h).status_code == 422
        assert c.patch(url, json={"text": " \n\t\n "}, headers=h).status_code == 422
        huge = "word " * chunk_edits.MAX_TEXT_CHARS
        assert c.patch(url, json={"text": huge}, headers=h).status_code == 422
        assert c.patch(url, json={"text": 5}, headers=h).status_code == 422
        assert c.patch(url, json={"disabled": "maybe"}, headers=h).status_code == 422
        assert c.patch("/api/v1/chunks/999999", json={"text": "x"}, headers=h).status_code == 404
        assert c.patch("/api/v1/chunks/0", json={"text": "x"}, headers=h).status_code == 422
        assert c.patch(f"{url}%00", json={"text": "x"}, headers=h).status_code in (404, 422)
        # The page route with another document's chunk id: 404, nothing changed.
        login_user = "webadmin"
        make_user(rt, login_user, Role.ADMIN)
        login(c, login_user)
        page = c.get(f"/documents/{ids['doc']}")
        csrf = dom(page.text).find("input", {"name": "csrf_token"})["value"]
        r = c.post(
            f"/documents/{ids['doc']}/chunks/{foreign}",
            data={"text": "hijacked", "csrf_token": csrf},
            follow_redirects=False,
        )
        assert r.status_code == 404
        r = c.post(
            f"/documents/{ids['doc']}/chunks/{foreign}/disable",
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert r.status_code == 404
        # Without the CSRF token: refused.
        r = c.post(
            f"/documents/{ids['doc']}/chunks/{ids['parking']}",
            data={"text": "no token"},
            follow_redirects=False,
        )
        assert r.status_code == 403
        # NUL and CRLF are cleaned; an htmx save that fails keeps the typed text.
        r = c.post(
            f"/documents/{ids['doc']}/chunks/{ids['parking']}",
            data={"text": "   ", "csrf_token": csrf},
            headers={"HX-Request": "true"},
        )
        assert r.status_code == 422 and 'role="alert"' in r.text
        assert "zebra" not in dom(r.text).find("textarea").text
    with rt.sessions() as s:
        assert "zebra" in s.get_one(Chunk, ids["parking"]).text
        assert s.get_one(Chunk, foreign).text == "An unrelated passage."
        assert not s.get_one(Chunk, foreign).disabled
    assert chunk_edits.clean_text("a\r\nb\x00c  \n") == "a\nbc"


def test_the_document_page_edits_in_place(rt: Runtime, world: dict[str, object]) -> None:
    ids = world["ids"]
    assert isinstance(ids, dict)
    with TestClient(create_app(runtime=rt)) as c:
        login(c, "owner")
        page = c.get(f"/documents/{ids['doc']}")
        soup = dom(page.text)
        # The plain view links to the edit mode only; that mode links each chunk's tools,
        # fetched when asked for (a page never carries each text twice).
        assert (
            soup.find("li", id=f"chunk-{ids['parking']}").find("a", class_="chunk-edit-link")
            is None
        )
        assert soup.find("a", class_="edit-passages")["href"] == "?part=1&edit=1"
        soup = dom(c.get(f"/documents/{ids['doc']}", params={"edit": "1"}).text)
        item = soup.find("li", id=f"chunk-{ids['parking']}")
        assert item is not None and item.find("textarea") is None
        edit = item.find("a", class_="chunk-edit-link")
        assert edit is not None
        form = c.get(edit["href"], headers={"HX-Request": "true"})
        assert form.status_code == 200
        assert "zebra" in dom(form.text).find("textarea").text
        page_form = c.get(edit["href"])  # without JavaScript: a page of its own
        assert page_form.status_code == 200 and "<html" in page_form.text.lower()
        csrf = soup.find("input", {"name": "csrf_token"})["value"]
        r = c.post(
            f"/documents/{ids['doc']}/chunks/{ids['parking']}",
            data={"text": NEW, "csrf_token": csrf},
            headers={"HX-Request": "true"},
        )
        assert r.status_code == 200
        fragment = dom(r.text)
        assert fragment.find("li", id=f"chunk-{ids['parking']}").find("pre").text == NEW
        # Without JavaScript: a redirect back to the chunk.
        r = c.post(
            f"/documents/{ids['doc']}/chunks/{ids['parking']}/disable",
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert r.headers["location"].endswith(f"#chunk-{ids['parking']}")
        page = c.get(f"/documents/{ids['doc']}")
        item = dom(page.text).find("li", id=f"chunk-{ids['parking']}")
        assert "chunk-off" in item["class"] and item.find(class_="chunk-disabled")
        history = c.get(
            f"/documents/{ids['doc']}/chunks/{ids['parking']}/history",
            headers={"HX-Request": "true"},
        )
        assert history.status_code == 200 and "zebra" in history.text
        # Chinese.
        c.cookies.set("lang", "zh")
        page = c.get(f"/documents/{ids['doc']}", headers={"Accept-Language": "zh"})
        assert "编辑段落" in page.text and "已停用" in page.text
    # A reader sees the badge, and no controls.
    make_user(rt, "webreader", Role.READER)
    with TestClient(create_app(runtime=rt)) as c:
        login(c, "webreader")
        item = dom(c.get(f"/documents/{ids['doc']}").text).find("li", id=f"chunk-{ids['parking']}")
        assert item.find(class_="chunk-tools") is None and item.find(class_="chunk-disabled")


def test_the_embedder_down_changes_nothing(
    rt: Runtime, world: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, tokens = world["ids"], world["tokens"]
    assert isinstance(ids, dict) and isinstance(tokens, dict)
    with rt.sessions() as s:
        embedder = rt.embedders.get(rt.collection(s).embedder)

    def down(texts: object) -> object:
        raise EmbedderError("connection refused")

    monkeypatch.setattr(embedder, "embed_documents", down)
    with TestClient(create_app(runtime=rt)) as c:
        r = c.patch(
            f"/api/v1/chunks/{ids['parking']}", json={"text": NEW}, headers=_bearer(tokens["admin"])
        )
        assert r.status_code == 503 and "nothing was changed" in r.text
    with rt.sessions() as s:
        assert "zebra" in s.get_one(Chunk, ids["parking"]).text
        assert chunk_edits.history(s, ids["parking"]) == []


def test_a_reingest_replaces_edits_and_keeps_the_history(
    rt: Runtime, world: dict[str, object]
) -> None:
    from app.documents import service as documents

    ids, tokens = world["ids"], world["tokens"]
    assert isinstance(ids, dict) and isinstance(tokens, dict)
    with TestClient(create_app(runtime=rt)) as c:
        c.patch(
            f"/api/v1/chunks/{ids['parking']}", json={"text": NEW}, headers=_bearer(tokens["admin"])
        )
    with transaction(rt.sessions) as s:
        documents.reingest(s, s.get_one(Document, ids["doc"]), max_attempts=3)
    settle(rt)
    with rt.sessions() as s:
        texts = s.scalars(select(Chunk.text).where(Chunk.document_id == ids["doc"])).all()
        assert any("zebra" in t for t in texts)
        edits = s.scalars(select(ChunkEdit).where(ChunkEdit.document_id == ids["doc"])).all()
        assert [(e.action, e.chunk_id, e.new_text) for e in edits] == [("edit", None, NEW)]
