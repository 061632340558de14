"""The approximate (IVF) index a large collection switches to: trained from SQL in the
background, as exact as the recall bound says, kept in step and snapshotted like the exact one.

Real SQLite and PostgreSQL, real FAISS; the threshold is lowered so a small fixture
crosses it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.collections.models import Collection
from app.collections.service import bump_version
from app.db import make_engine, make_sessionmaker, transaction, upgrade
from app.documents.models import Chunk, Document
from app.documents.service import delete_document
from app.settings import Settings
from app.vectors.index import EXACT, AnnPolicy, IndexManager, bytes_to_vectors, vector_to_bytes

DIM = 32
CENTRES = 40
POLICY = AnnPolicy(min_vectors=1500, train_per_list=40)
# The bound the policy's nprobe is chosen for (bench/scale.py measures it on real vectors).
MIN_RECALL = 0.95


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.sqlalchemy_url)
    upgrade(engine)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


def _clustered(rng: np.random.Generator, centres: npt.NDArray[np.float32], n: int) -> list[bytes]:
    """Vectors around a few centres, as real passages cluster by topic."""
    picks = centres[rng.integers(0, len(centres), n)]
    v = picks + 0.35 * rng.standard_normal((n, DIM)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return [vector_to_bytes(row) for row in v]


def _collection(sessions: sessionmaker[Session]) -> tuple[int, Collection]:
    with transaction(sessions) as s:
        col = Collection(name=f"c-{uuid.uuid4().hex[:8]}", embedder="t", model="m", dim=DIM)
        s.add(col)
        s.flush()
        s.expunge(col)
        return col.id, col


def _add_doc(sessions: sessionmaker[Session], cid: int, vectors: list[bytes]) -> int:
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
            chunk_count=len(vectors),
        )
        s.add(doc)
        s.flush()
        s.add_all(
            Chunk(
                document_id=doc.id,
                collection_id=cid,
                ordinal=i,
                heading_path=[],
                text=f"chunk {i}",
                token_count=2,
                content_hash=str(i),
                vector=v,
            )
            for i, v in enumerate(vectors)
        )
        bump_version(s, cid)
        return doc.id


def _sql_state(
    sessions: sessionmaker[Session], cid: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    with sessions() as s:
        rows = s.execute(
            select(Chunk.id, Chunk.vector).where(Chunk.collection_id == cid).order_by(Chunk.id)
        ).all()
    return np.array([r[0] for r in rows], np.int64), bytes_to_vectors((r[1] for r in rows), DIM)


def _exact_top(
    ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32], q: npt.NDArray[np.float32]
) -> list[int]:
    return [int(i) for i in ids[np.argsort(-(vectors @ q), kind="stable")[:10]]]


def _recall(
    manager: IndexManager,
    sessions: sessionmaker[Session],
    cid: int,
    col: Collection,
    queries: npt.NDArray[np.float32],
) -> float:
    ids, vectors = _sql_state(sessions, cid)
    with sessions() as s:
        idx = manager.get(s, col)
    found = 0
    for q in queries:
        got = {i for i, _ in idx.search(q, 10)}
        found += len(got & set(_exact_top(ids, vectors, q)))
    return found / (10 * len(queries))


def test_policy_switches_by_size_and_regrowth() -> None:
    assert not AnnPolicy(min_vectors=0).wants_ivf(10**7, 0)  # 0: always exact
    policy = AnnPolicy(min_vectors=1000)
    assert not policy.wants_ivf(999, 0)
    assert policy.wants_ivf(1000, 0)
    assert not policy.wants_ivf(1900, 1000)  # trained recently enough
    assert policy.wants_ivf(2000, 1000)  # doubled since: train again
    assert policy.nlist(1_000_000) == 1000
    assert policy.probes(1000) == 125
    assert AnnPolicy(nprobe=7).probes(1000) == 7


def test_large_collection_gets_an_ivf_index_within_the_recall_bound(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((CENTRES, DIM)).astype(np.float32)
    cid, col = _collection(sessions)
    for _ in range(4):
        _add_doc(sessions, cid, _clustered(rng, centres, 500))
    manager = IndexManager(settings.index_dir, sessions=sessions, ann=POLICY, snapshot_every_s=0)
    with sessions() as s:
        idx = manager.get(s, col)
    assert not idx.is_ivf  # synced exact first; the background trains
    assert manager._train_if_due(idx)
    assert idx.is_ivf and idx.trained_on == 2000
    queries = bytes_to_vectors(_clustered(rng, centres, 60), DIM)
    assert _recall(manager, sessions, cid, col, queries) >= MIN_RECALL

    # Kept in step incrementally: a new document, a deleted one.
    added = _add_doc(sessions, cid, _clustered(rng, centres, 300))
    with sessions() as s, s.begin():
        first = s.scalars(select(Document).where(Document.collection_id == cid)).first()
        assert first is not None and first.id != added
        delete_document(s, first)
    with sessions() as s:
        idx = manager.get(s, col)
    assert idx.is_ivf
    ids, _ = _sql_state(sessions, cid)
    assert sorted(idx.ids()) == ids.tolist()
    with sessions() as s:
        assert manager.check(s, cid) == 0  # the full diff agrees
    assert _recall(manager, sessions, cid, col, queries) >= MIN_RECALL

    # The snapshot of an IVF index loads mapped, searches the same, and takes changes.
    manager.flush()
    fresh = IndexManager(settings.index_dir, sessions=sessions, ann=POLICY)
    with sessions() as s:
        loaded = fresh.get(s, col)
    assert loaded.is_ivf and loaded.mapped and loaded.nprobe == idx.nprobe
    assert [i for i, _ in loaded.search(queries[0], 10)] == [
        i for i, _ in idx.search(queries[0], 10)
    ]
    _add_doc(sessions, cid, _clustered(rng, centres, 20))
    with sessions() as s:
        loaded = fresh.get(s, col)
    assert loaded.mapped and loaded.delta is not None and loaded.delta.ntotal == 20
    assert sorted(loaded.ids()) == _sql_state(sessions, cid)[0].tolist()


def test_an_exact_snapshot_the_collection_has_outgrown_is_trained_after_loading(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    """A snapshot saved while the collection was below the threshold (or before the
    threshold was lowered) is trained in the background soon after a process loads it,
    not only after the collection next changes."""
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((CENTRES, DIM)).astype(np.float32)
    cid, col = _collection(sessions)
    for _ in range(4):
        _add_doc(sessions, cid, _clustered(rng, centres, 500))
    exact = IndexManager(settings.index_dir, sessions=sessions, ann=AnnPolicy(min_vectors=0))
    with sessions() as s:
        exact.get(s, col)
    exact.close()

    manager = IndexManager(settings.index_dir, sessions=sessions, ann=POLICY, snapshot_every_s=30)
    try:
        with sessions() as s:
            idx = manager.get(s, col)
        assert idx.mapped and not idx.is_ivf  # the exact snapshot serves at once
        deadline = time.monotonic() + 60
        while not idx.is_ivf and time.monotonic() < deadline:
            time.sleep(0.05)
        assert idx.is_ivf and idx.trained_on == 2000
        assert sorted(idx.ids()) == _sql_state(sessions, cid)[0].tolist()
    finally:
        manager.close()
    with sessions() as s:  # and its snapshot is the IVF one now
        reloaded = IndexManager(settings.index_dir, sessions=sessions, ann=POLICY).get(s, col)
    assert reloaded.is_ivf


def test_filtered_search_on_ivf_returns_only_allowed_ids(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    rng = np.random.default_rng(11)
    centres = rng.standard_normal((CENTRES, DIM)).astype(np.float32)
    cid, col = _collection(sessions)
    docs = [_add_doc(sessions, cid, _clustered(rng, centres, 400)) for _ in range(4)]
    manager = IndexManager(settings.index_dir, sessions=sessions, ann=POLICY, snapshot_every_s=0)
    with sessions() as s:
        idx = manager.get(s, col)
        assert manager._train_if_due(idx)
        allowed = np.fromiter(
            s.scalars(select(Chunk.id).where(Chunk.document_id == docs[2])), np.int64
        )
    q = bytes_to_vectors(_clustered(rng, centres, 1), DIM)[0]
    hits = idx.search(q, 10, allowed=allowed)
    assert len(hits) == 10
    assert {i for i, _ in hits} <= set(allowed.tolist())


def test_small_collections_stay_exact(sessions: sessionmaker[Session], settings: Settings) -> None:
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((CENTRES, DIM)).astype(np.float32)
    cid, col = _collection(sessions)
    _add_doc(sessions, cid, _clustered(rng, centres, 200))
    manager = IndexManager(settings.index_dir, sessions=sessions, ann=POLICY)
    with sessions() as s:
        idx = manager.get(s, col)
    assert not manager._train_if_due(idx)
    assert not idx.is_ivf


@pytest.mark.parametrize("policy", [EXACT, POLICY], ids=["exact", "ivf"])
def test_a_mapped_index_takes_changes_without_a_copy_and_maps_its_next_snapshot(
    sessions: sessionmaker[Session], settings: Settings, policy: AnnPolicy
) -> None:
    """A change to an index mapped from its snapshot lands in an owned delta (added
    vectors) and an exclusion list (removed ids): the mapping stays, searches see the
    change at once. The next save maps the file it wrote in their place; a second process
    at the same version maps that same file instead of writing its own."""
    rng = np.random.default_rng(17)
    centres = rng.standard_normal((CENTRES, DIM)).astype(np.float32)
    cid, col = _collection(sessions)
    docs = [_add_doc(sessions, cid, _clustered(rng, centres, 500)) for _ in range(4)]
    first = IndexManager(settings.index_dir, sessions=sessions, ann=policy)
    with sessions() as s:
        first._train_if_due(first.get(s, col))  # the snapshot is of the policy's type
    first.close()

    # Saves only when asked (flush), so the test decides when each process writes.
    a = IndexManager(settings.index_dir, sessions=sessions, ann=policy, snapshot_every_s=3600)
    b = IndexManager(settings.index_dir, sessions=sessions, ann=policy, snapshot_every_s=3600)
    try:
        with sessions() as s:
            idx = a.get(s, col)
            other = b.get(s, col)
        assert idx.mapped and other.mapped and idx.source == other.source
        added = _add_doc(sessions, cid, _clustered(rng, centres, 20))
        with transaction(sessions) as s:
            gone = s.get_one(Document, docs[1])
            removed = sorted(s.scalars(select(Chunk.id).where(Chunk.document_id == docs[1])))
            delete_document(s, gone)
        with sessions() as s:
            assert a.get(s, col) is idx and b.get(s, col) is other
            new_ids = list(s.scalars(select(Chunk.id).where(Chunk.document_id == added)))
            new_vec = bytes_to_vectors([s.get_one(Chunk, new_ids[0]).vector], DIM)[0]
        want = _sql_state(sessions, cid)[0].tolist()
        for i in (idx, other):
            assert i.mapped and i.delta is not None and i.delta.ntotal == 20
            assert len(i.removed) == 500 and sorted(i.ids()) == want
        assert idx.search(new_vec, 1)[0][0] == new_ids[0]
        for q in bytes_to_vectors(_clustered(rng, centres, 20), DIM):
            assert not {h for h, _ in idx.search(q, 50)} & set(removed)
        with sessions() as s:
            assert a.check(s, cid) == 0  # the full diff agrees

        a.flush()  # writes the new version and maps it
        assert idx.mapped and idx.delta is None and len(idx.removed) == 0
        assert idx.source is not None and a.stats.remaps == 1
        assert sorted(idx.ids()) == want and idx.search(new_vec, 1)[0][0] == new_ids[0]
        pattern = f"collection-{cid}-v*.kbidx"
        written = sorted(p.name for p in settings.index_dir.glob(pattern))
        b.flush()  # the same version is on disk: mapped, not written again
        assert other.source == idx.source and other.delta is None and b.stats.remaps == 1
        assert sorted(p.name for p in settings.index_dir.glob(pattern)) == written
        assert sorted(other.ids()) == want and other.is_ivf == (policy is POLICY)
    finally:
        a.close()
        b.close()
