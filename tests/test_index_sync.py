"""Incremental index sync from the chunk change log, and snapshots off the request path.

Real SQLite and PostgreSQL (the change log is written by database triggers), real FAISS.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.collections import model_switch
from app.collections.models import Collection
from app.collections.service import bump_version
from app.db import make_engine, make_sessionmaker, transaction, upgrade
from app.documents.models import Chunk, ChunkChange, Document
from app.documents.service import delete_document
from app.embedding.registry import EmbedderSpec
from app.settings import Settings
from app.vectors.index import (
    CollectionIndex,
    IndexManager,
    IndexMeta,
    read_snapshot,
    vector_to_bytes,
    write_snapshot,
)

DIM = 8
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.sqlalchemy_url)
    upgrade(engine)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


def _vec(rng: np.random.Generator) -> bytes:
    v = rng.standard_normal(DIM).astype(np.float32)
    return vector_to_bytes(v / np.linalg.norm(v))


def _collection(sessions: sessionmaker[Session], *, model: str = "m1") -> int:
    with transaction(sessions) as s:
        col = Collection(
            name=f"c-{uuid.uuid4().hex[:8]}", embedder="test", model=model, dim=DIM, version=0
        )
        s.add(col)
        s.flush()
        return col.id


def _add_doc(sessions: sessionmaker[Session], cid: int, n: int, rng: np.random.Generator) -> int:
    with transaction(sessions) as s:
        key = uuid.uuid4().hex
        doc = Document(
            collection_id=cid,
            filename=f"{key}.md",
            content_hash=key,
            size_bytes=1,
            doc_type="markdown",
            storage_key=key,
            status="ready",
            chunk_count=n,
        )
        s.add(doc)
        s.flush()
        _insert_chunks(s, doc, n, rng)
        bump_version(s, cid)
        return doc.id


def _insert_chunks(s: Session, doc: Document, n: int, rng: np.random.Generator) -> None:
    s.add_all(
        Chunk(
            document_id=doc.id,
            collection_id=doc.collection_id,
            ordinal=i,
            heading_path=[],
            text=f"chunk {i}",
            token_count=2,
            content_hash=str(i),
            vector=_vec(rng),
        )
        for i in range(n)
    )
    s.flush()


def _reingest(
    sessions: sessionmaker[Session], doc_id: int, n: int, rng: np.random.Generator
) -> None:
    """As ingest's store stage does: the document's chunks replaced in one transaction."""
    with transaction(sessions) as s:
        doc = s.get_one(Document, doc_id)
        s.execute(delete(Chunk).where(Chunk.document_id == doc_id))
        _insert_chunks(s, doc, n, rng)
        bump_version(s, doc.collection_id)


def _delete(sessions: sessionmaker[Session], doc_id: int) -> None:
    with transaction(sessions) as s:
        delete_document(s, s.get_one(Document, doc_id))


def _revector(sessions: sessionmaker[Session], doc_id: int, rng: np.random.Generator) -> None:
    """A chunk's vector changed in place (the update trigger logs it)."""
    with transaction(sessions) as s:
        first = s.scalars(select(Chunk).where(Chunk.document_id == doc_id).limit(1)).first()
        if first is None:
            return
        s.execute(update(Chunk).where(Chunk.id == first.id).values(vector=_vec(rng)))
        bump_version(s, first.collection_id)


def _sql_state(sessions: sessionmaker[Session], cid: int) -> dict[int, np.ndarray]:
    with sessions() as s:
        rows = s.execute(select(Chunk.id, Chunk.vector).where(Chunk.collection_id == cid)).all()
    return {i: np.frombuffer(v, dtype="<f2").astype(np.float32) for i, v in rows}


def _index_state(idx: CollectionIndex) -> dict[int, np.ndarray]:
    return {i: idx.reconstruct(i) for i in idx.ids()}


def _sync(manager: IndexManager, sessions: sessionmaker[Session], cid: int) -> CollectionIndex:
    with sessions() as s:
        return manager.get(s, s.get_one(Collection, cid))


def _assert_same(a: dict[int, np.ndarray], b: dict[int, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for i in a:
        np.testing.assert_array_equal(a[i], b[i])


OPS = st.lists(
    st.tuples(
        st.sampled_from(["add", "reingest", "delete", "revector", "sync"]),
        st.integers(0, 50),
        st.integers(0, 6),
    ),
    max_size=14,
)


@PROPERTY
@given(ops=OPS, seed=st.integers(0, 2**32 - 1))
def test_incremental_sync_equals_a_full_rebuild(
    sessions: sessionmaker[Session], tmp_path: Path, ops: list[tuple[str, int, int]], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    cid = _collection(sessions)
    docs = [_add_doc(sessions, cid, 3, rng)]
    manager = IndexManager(tmp_path / uuid.uuid4().hex, snapshot_every_s=3600)
    _sync(manager, sessions, cid)  # the first sync is a full one
    for op, pick, n in ops:
        doc = docs[pick % len(docs)] if docs else None
        if op == "add" or doc is None:
            docs.append(_add_doc(sessions, cid, n, rng))
        elif op == "reingest":
            _reingest(sessions, doc, n, rng)
        elif op == "delete":
            _delete(sessions, doc)
            docs.remove(doc)
        elif op == "revector":
            _revector(sessions, doc, rng)
        else:
            _sync(manager, sessions, cid)
    idx = _sync(manager, sessions, cid)
    assert manager.stats.full == 1  # everything after the first sync was incremental
    rebuilt = IndexManager(tmp_path / uuid.uuid4().hex)
    with sessions() as s:
        full = rebuilt.rebuild(s, s.get_one(Collection, cid))
    truth = _sql_state(sessions, cid)
    _assert_same(_index_state(idx), truth)
    _assert_same(_index_state(full), truth)
    assert idx.count() == len(truth)  # no id twice


def test_changes_are_logged_in_the_same_transaction_and_stamped(
    sessions: sessionmaker[Session],
) -> None:
    rng = np.random.default_rng(1)
    cid = _collection(sessions)
    doc = _add_doc(sessions, cid, 3, rng)
    _delete(sessions, doc)  # the chunks go by the foreign key's cascade
    with sessions() as s:
        rows = s.execute(
            select(ChunkChange.op, ChunkChange.version)
            .where(ChunkChange.collection_id == cid)
            .order_by(ChunkChange.seq)
        ).all()
    assert [r.op for r in rows] == ["add"] * 3 + ["remove"] * 3
    assert [r.version for r in rows] == [1] * 3 + [2] * 3
    # A transaction that rolls back leaves nothing in the log.
    with pytest.raises(RuntimeError), transaction(sessions) as s:
        d = s.get(Document, _add_doc(sessions, cid, 0, rng))
        assert d is not None
        _insert_chunks(s, d, 2, rng)
        raise RuntimeError("abort")
    with sessions() as s:
        n = s.scalar(select(func.count()).where(ChunkChange.collection_id == cid))
    assert n == 6


def test_snapshot_older_than_the_pruned_log_falls_back_to_a_full_diff(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    rng = np.random.default_rng(2)
    cid = _collection(sessions)
    docs = [_add_doc(sessions, cid, 4, rng) for _ in range(3)]
    first = IndexManager(tmp_path, sessions=sessions)
    with sessions() as s:
        first.rebuild(s, s.get_one(Collection, cid))  # snapshot at version 3
    _delete(sessions, docs[0])
    docs.append(_add_doc(sessions, cid, 2, rng))

    # Not pruned yet: a new process loads the snapshot and applies the log.
    second = IndexManager(tmp_path, snapshot_every_s=3600)  # leaves the snapshot as it is
    _assert_same(_index_state(_sync(second, sessions, cid)), _sql_state(sessions, cid))
    assert (second.stats.incremental, second.stats.full) == (1, 0)

    # Pruned past the snapshot (keep no versions, no floor): the log cannot bring it up.
    pruner = IndexManager(tmp_path / "other", sessions=sessions, keep_versions=0)
    assert pruner.prune() > 0
    third = IndexManager(tmp_path)
    _assert_same(_index_state(_sync(third, sessions, cid)), _sql_state(sessions, cid))
    assert (third.stats.incremental, third.stats.full) == (0, 1)

    # After the marker, the log works again.
    _reingest(sessions, docs[1], 3, rng)
    _assert_same(_index_state(_sync(third, sessions, cid)), _sql_state(sessions, cid))
    assert third.stats.incremental == 1


def test_prune_keeps_what_the_own_snapshot_needs(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    cid = _collection(sessions)
    _add_doc(sessions, cid, 2, rng)
    manager = IndexManager(tmp_path, sessions=sessions, keep_versions=0)
    with sessions() as s:
        manager.rebuild(s, s.get_one(Collection, cid))  # snapshot at version 1
    _add_doc(sessions, cid, 2, rng)
    manager.prune()  # floor: version 1, so version 2's rows stay
    fresh = IndexManager(tmp_path)
    _assert_same(_index_state(_sync(fresh, sessions, cid)), _sql_state(sessions, cid))
    assert (fresh.stats.incremental, fresh.stats.full) == (1, 0)


def test_model_switch_rebuilds_the_index_in_full(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    rng = np.random.default_rng(4)
    cid = _collection(sessions)
    _add_doc(sessions, cid, 5, rng)
    manager = IndexManager(tmp_path)
    _sync(manager, sessions, cid)
    new_dim = DIM * 2
    with transaction(sessions) as s:
        col = s.get_one(Collection, cid)
        model_switch.start_reembed(s, col, spec=EmbedderSpec("test", "m2", new_dim))
        ids = list(s.scalars(select(Chunk.id).where(Chunk.collection_id == cid)))
        v = rng.standard_normal((len(ids), new_dim)).astype(np.float32)
        blobs = [vector_to_bytes(x / np.linalg.norm(x)) for x in v]
        model_switch.store_next_vectors(s, list(zip(ids, blobs, strict=True)))
        assert model_switch.switch(s, cid, query_instruction=lambda _name: None)
    full_before = manager.stats.full
    idx = _sync(manager, sessions, cid)
    assert manager.stats.full == full_before + 1
    assert (idx.meta.model, idx.meta.dim, idx.index.d) == ("m2", new_dim, new_dim)
    _assert_same(_index_state(idx), _sql_state(sessions, cid))


def test_consistency_check_repairs_a_drifted_index(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    cid = _collection(sessions)
    _add_doc(sessions, cid, 4, rng)
    manager = IndexManager(tmp_path, sessions=sessions)
    idx = _sync(manager, sessions, cid)
    idx.remove([next(iter(idx.ids()))])  # drift the log cannot see
    with sessions() as s:
        assert manager.check(s, cid) == 1
        assert manager.check(s, cid) == 0
    _assert_same(_index_state(idx), _sql_state(sessions, cid))


def _flat(n: int, rng: np.random.Generator) -> tuple[faiss.Index, np.ndarray]:
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    index.add_with_ids(x, np.arange(n, dtype=np.int64))
    return index, x


def test_snapshot_is_never_read_half_written(tmp_path: Path) -> None:
    """A reader loading in a loop while a writer saves over and over only ever sees a
    whole snapshot, the one its sidecar describes."""
    rng = np.random.default_rng(6)
    path = tmp_path / "collection-1.kbidx.json"
    meta = IndexMeta(1, "test", "m", DIM, 0)
    _, x = _flat(50 * 41, rng)
    first = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    first.add_with_ids(x[:50], np.arange(50, dtype=np.int64))
    write_snapshot(path, first, meta)
    stop = threading.Event()
    errors: list[BaseException] = []
    loads = 0

    def reader() -> None:
        nonlocal loads
        while not stop.is_set():
            try:
                idx = read_snapshot(path)
                # version v holds the first 50 + 50 * v vectors, exactly.
                n = 50 + 50 * idx.version
                assert idx.count() == n
                np.testing.assert_array_equal(idx.index.reconstruct(n - 1), x[n - 1])
                loads += 1
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for v in range(1, 41):
        part = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
        n = 50 + 50 * v
        part.add_with_ids(x[:n], np.arange(n, dtype=np.int64))
        write_snapshot(path, part, IndexMeta(1, "test", "m", DIM, v))
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert loads > 0
    assert read_snapshot(path).version == 40


def test_a_crash_mid_write_leaves_the_previous_snapshot(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    path = tmp_path / "collection-1.kbidx.json"
    index, _ = _flat(30, rng)
    data = write_snapshot(path, index, IndexMeta(1, "test", "m", DIM, 3))
    # A writer killed after part of a new data file: only a temporary file is left.
    (tmp_path / f".collection-1-v4-dead.kbidx.{12345}.tmp").write_bytes(data.read_bytes()[:100])
    assert read_snapshot(path).version == 3
    # A data file truncated behind the sidecar's back is refused, not half read.
    data.write_bytes(data.read_bytes()[:-10])
    with pytest.raises(ValueError):
        read_snapshot(path)
    # ... and the manager falls back to an empty index (rebuilt from SQL).
    manager = IndexManager(tmp_path)
    col = Collection(id=1, name="x", embedder="test", model="m", dim=DIM, version=5)
    assert manager._open(col).version == -1


def test_snapshots_are_saved_in_the_background_while_searches_run(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    rng = np.random.default_rng(8)
    cid = _collection(sessions)
    _add_doc(sessions, cid, 5, rng)
    manager = IndexManager(tmp_path, snapshot_every_s=0)
    idx = _sync(manager, sessions, cid)
    stop = threading.Event()
    errors: list[BaseException] = []
    q = np.ones(DIM, np.float32) / np.sqrt(DIM)

    def searcher() -> None:
        while not stop.is_set():
            try:
                idx.search(q, 5)
            except BaseException as exc:
                errors.append(exc)
                return

    def loader() -> None:
        while not stop.is_set():
            try:
                if manager.snapshot_path(cid).exists():
                    snap = CollectionIndex.load(manager.snapshot_path(cid))
                    with sessions() as s:
                        want = s.scalar(
                            select(func.count()).where(
                                ChunkChange.collection_id == cid,
                                ChunkChange.version <= snap.version,
                                ChunkChange.op == "add",
                            )
                        )
                    assert snap.count() == want  # inserts only: adds up to its version
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=searcher), threading.Thread(target=loader)]
    for t in threads:
        t.start()
    for _ in range(15):
        _add_doc(sessions, cid, 3, rng)
        _sync(manager, sessions, cid)
    stop.set()
    for t in threads:
        t.join()
    manager.close()
    assert not errors, errors[0]
    assert manager.stats.saves >= 1
    assert CollectionIndex.load(manager.snapshot_path(cid)).count() == 5 + 15 * 3
