"""Ingest through the OpenAI-compatible embedder, on SQLite and PostgreSQL, against a real
HTTP server on loopback that misbehaves in every way the client must survive."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.db import transaction
from app.documents import service as documents
from app.documents.models import Chunk, Document, DocumentStatus
from app.embedding.registry import EmbedderMismatch
from app.jobs.models import Job, JobStatus
from app.runtime import Runtime
from app.search.service import search
from app.settings import QWEN3_QUERY_TASK, Settings
from ingest.worker import Worker
from tests import pdfgen
from tests.embedserver import EmbedServer, Fault
from tests.factories import openai_settings, settle, store_upload
from tests.samples import EXPENSES_MD, RELEASE_MD


def assert_stored_once(rt: Runtime, doc_ids: list[int]) -> None:
    """Every document ready; its chunks are ordinals 0..n-1, each once; n = chunk_count."""
    with rt.sessions() as s:
        for doc_id in doc_ids:
            d = s.get_one(Document, doc_id)
            assert d.status == DocumentStatus.READY and d.error is None, (d.filename, d.error)
            ordinals = list(
                s.scalars(
                    select(Chunk.ordinal).where(Chunk.document_id == doc_id).order_by(Chunk.ordinal)
                )
            )
            assert ordinals == list(range(d.chunk_count)) and d.chunk_count > 0
            sizes = set(
                s.scalars(select(func.length(Chunk.vector)).where(Chunk.document_id == doc_id))
            )
            assert sizes == {512 * 2}  # float16 vectors of the server's 512 dimensions
        total = s.scalar(select(func.count(Chunk.id)))
        assert total == sum(s.get_one(Document, i).chunk_count for i in doc_ids)


@pytest.fixture
def ort(settings: Settings, embed_server: EmbedServer) -> Iterator[Runtime]:
    """A runtime whose default collection embeds through the fake vLLM server."""
    rt = Runtime.create(openai_settings(settings, embed_server))
    try:
        yield rt
    finally:
        rt.close()


def test_ingest_survives_every_fault_and_stores_each_chunk_once(
    ort: Runtime, embed_server: EmbedServer, tmp_path: Path
) -> None:
    ids = [
        store_upload(ort, "release.md", RELEASE_MD.encode()),
        store_upload(ort, "expenses.md", EXPENSES_MD.encode()),
        store_upload(ort, "lumen.pdf", pdfgen.english_outline_pdf(tmp_path).read_bytes()),
        store_upload(ort, "leave-faq.pdf", pdfgen.chinese_outline_pdf(tmp_path).read_bytes()),
    ]
    with ort.sessions() as s:
        col = ort.collection(s)
        assert (col.embedder, col.model, col.dim) == ("openai", embed_server.model, 512)
    checked = len(embed_server.embedding_requests())
    embed_server.inject(
        Fault.unavailable(503),
        Fault.too_many(retry_after="0"),
        Fault.slow(1.0),  # past the 0.5 s timeout
        Fault.drop(),
        Fault.refuse_base64(),
        Fault.wrong_dim(384),  # not retried by the client: the job is retried
        Fault.unavailable(502),
        Fault.ok(),
        Fault.too_many(retry_after="5"),  # longer than the 2 s it may retry: it gives up
    )

    outcomes = settle(ort)

    assert embed_server.pending_faults() == 0
    assert [o.status for o in outcomes].count("retrying") >= 2  # wrong size, gave up
    assert sum(o.status == "ready" for o in outcomes) == 4
    assert_stored_once(ort, ids)
    with ort.sessions() as s:
        errors = [o.error or "" for o in outcomes if o.status == "retrying"]
        assert any("384-dimensional" in e and "expected 512" in e for e in errors)
        assert any("giving up: 429" in e for e in errors)
        jobs = list(s.scalars(select(Job)))
        assert all(j.status == JobStatus.DONE for j in jobs)
    sent = embed_server.embedding_requests()[checked:]
    assert {r.fault for r in sent} >= {"status", "slow", "drop", "refuse_base64", "wrong_dim"}
    assert all(task is None for r in sent for task in r.instructions)  # documents: no Instruct
    assert not any(r.base64 for r in sent[-3:])  # base64 was refused once: floats since

    # Cross-lingual search through the same server: English finds Chinese and back.
    hits = search(ort, query="How much can I spend on a hotel room per night?", k=3).hits
    assert hits[0].file == "expenses.md" and "六百元" in hits[0].text
    assert hits[0].heading_path == ["差旅报销制度", "住宿标准"]
    hits = search(ort, query="代码冻结从什么时候开始？", k=3).hits
    assert hits[0].file == "release.md" and "second Thursday" in hits[0].text
    last = embed_server.embedding_requests()[-1]
    assert last.instructions == [QWEN3_QUERY_TASK] and last.texts[0].endswith("开始？")


def test_server_down_mid_ingest_requeues_then_completes_without_duplicates(
    ort: Runtime, embed_server: EmbedServer
) -> None:
    sections = "\n\n".join(
        f"## Section {i}\n\nStep {i} of the Harbor runbook: check gauge {i} and log it."
        for i in range(30)
    )
    doc_id = store_upload(ort, "runbook.md", f"# Runbook\n\n{sections}\n".encode())
    # Let the first requests through, then hang one and take the server down under it.
    embed_server.inject(*[Fault.ok()] * 4, Fault.slow(30))
    stopper = threading.Thread(
        target=lambda: embed_server.slow_started.wait(20) and embed_server.stop()
    )
    stopper.start()
    (first,) = Worker(ort).run_until_idle()
    stopper.join()

    assert first.status == "retrying", first
    assert "giving up" in (first.error or "") and embed_server.url in (first.error or "")
    with ort.sessions() as s:
        d = s.get_one(Document, doc_id)
        assert d.status == DocumentStatus.QUEUED and (d.error or "").startswith("retrying: ")
        assert s.scalar(select(func.count(Chunk.id))) == 0  # nothing half-stored
        job = s.scalars(select(Job).where(Job.document_id == doc_id)).one()
        assert job.status == JobStatus.QUEUED and job.attempts == 1

    embed_server.start()  # the same port
    outcomes = settle(ort)
    assert [o.status for o in outcomes] == ["ready"]
    assert_stored_once(ort, [doc_id])
    with ort.sessions() as s:
        assert s.get_one(Document, doc_id).chunk_count >= 30
    hits = search(ort, query="gauge 17", k=5).hits
    assert hits and all(h.file == "runbook.md" for h in hits)


def test_a_passage_too_long_for_the_model_fails_the_document(
    settings: Settings, embed_server: EmbedServer
) -> None:
    rt = Runtime.create(openai_settings(settings, embed_server, embedding_max_input_tokens=40))
    try:
        long_md = "# Notes\n\n" + " ".join(f"word{i}" for i in range(120)) + "\n"
        doc_id = store_upload(rt, "long.md", long_md.encode())
        (outcome,) = Worker(rt).run_until_idle()
        assert outcome.status == "failed"
        with rt.sessions() as s:
            d = s.get_one(Document, doc_id)
            assert d.status == DocumentStatus.FAILED
            assert "cannot be embedded" in (d.error or "") and "40 tokens" in (d.error or "")
            job = s.scalars(select(Job).where(Job.document_id == doc_id)).one()
            assert job.status == JobStatus.FAILED and job.attempts == 1  # not retried
        assert len(embed_server.embedding_requests()) == 1  # the start-up probe only
    finally:
        rt.close()


def test_a_collection_never_mixes_vector_sizes(
    ort: Runtime, settings: Settings, embed_server: EmbedServer
) -> None:
    doc_id = store_upload(ort, "release.md", RELEASE_MD.encode())
    settle(ort)
    assert_stored_once(ort, [doc_id])

    # The same database, now configured for 256-dimensional vectors.
    embed_server.matryoshka = True
    other = Runtime.create(openai_settings(settings, embed_server, embedding_dimensions=256))
    try:
        with other.sessions() as s, pytest.raises(EmbedderMismatch, match=r"512-dimensional.*256"):
            other.collection(s)
        with pytest.raises(EmbedderMismatch):
            search(other, query="code freeze", k=3)
        # A queued job does not store 256-d vectors into the 512-d collection either.
        with transaction(other.sessions) as s:
            documents.reingest(s, s.get_one(Document, doc_id))
        (outcome,) = Worker(other).run_until_idle()
        assert outcome.status == "retrying" and "512-dimensional" in (outcome.error or "")
    finally:
        other.close()
    assert [o.status for o in settle(ort)] == ["ready"]  # back with the right settings
    assert_stored_once(ort, [doc_id])


def test_search_while_the_embedding_server_is_down_says_so(
    ort: Runtime, embed_server: EmbedServer
) -> None:
    from fastapi.testclient import TestClient

    from app.auth.models import Role
    from app.main import create_app
    from tests.factories import token_for

    store_upload(ort, "release.md", RELEASE_MD.encode())
    settle(ort)
    assert search(ort, query="when is the code freeze?", k=1).hits[0].file == "release.md"
    token = token_for(ort, "reader-x", Role.READER)
    with TestClient(create_app(runtime=ort), headers={"Authorization": f"Bearer {token}"}) as c:
        embed_server.stop()
        r = c.get("/api/v1/search", params={"q": "when is the code freeze?"})
        assert r.status_code == 503
        assert "embedding server does not answer" in r.json()["detail"]
        embed_server.start()
        r = c.get("/api/v1/search", params={"q": "when is the code freeze?"})
        assert r.status_code == 200 and r.json()["results"][0]["file"] == "release.md"


def test_the_collection_records_and_uses_its_query_instruction(
    ort: Runtime, embed_server: EmbedServer
) -> None:
    with transaction(ort.sessions) as s:
        col = ort.collection(s)
        assert col.query_instruction == QWEN3_QUERY_TASK
        col.query_instruction = "Given a question about release policy, find the rule"
    store_upload(ort, "release.md", RELEASE_MD.encode())
    settle(ort)
    search(ort, query="when does the freeze start?", k=1)
    queries = [
        r
        for r in embed_server.embedding_requests()
        if "when does the freeze start?" in "".join(r.texts)
    ]
    assert queries and queries[-1].instructions == [
        "Given a question about release policy, find the rule"
    ]
    documents_sent = [
        t for r in embed_server.embedding_requests() for t in r.texts if "Code freeze" in t
    ]
    assert documents_sent and not any(t.startswith("Instruct:") for t in documents_sent)
