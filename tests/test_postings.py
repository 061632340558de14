"""The lexical leg's in-memory postings (app/vectors/postings.py).

- Scores are FTS5's bm25, checked against a plain reimplementation of its formula and
  against SQLite's own ``bm25()`` on ingested fixtures (the same ranking, term for term).
- Incremental changes (inserts, deletes, re-adds, merges) give what a fresh build of the
  same chunks gives: a property test.
- In the app: built in the background from a collection's size on, kept in step by the
  index's syncs, used by search (filters included) on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from app.collections.service import bump_version
from app.db import transaction
from app.documents.models import Chunk, Document
from app.documents.service import delete_document
from app.runtime import Runtime
from app.search import service
from app.search.lexical import lexical_search, memory_search
from app.search.service import SearchFilters, allowed_chunks, facet_filter, search
from app.settings import Settings
from app.text.terms import match_terms
from app.vectors.index import CollectionIndex, IndexManager
from app.vectors.postings import IDF_FLOOR, K1, B, TermIndex
from tests.factories import settle, store_upload
from tests.samples import GUIDE_MD, LEAVE_MD
from tests.test_filters import BACKUP_MD, EXAM_MD, FAQ_MD

WORDS = ["a", "b", "c", "d", "e", "f", "中文", "文档", "中", "x1"]


def reference(rows: dict[int, list[str]], terms: list[tuple[str, bool]]) -> dict[int, float]:
    """bm25 as FTS5 computes it, written out plainly: every matching chunk's score."""
    live = {cid: ts for cid, ts in rows.items()}
    total = len(live)
    if not total:
        return {}
    avgdl = sum(len(ts) for ts in live.values()) / total
    scores: dict[int, float] = {}
    for term, prefix in terms:

        def count(ts: list[str], term: str = term, prefix: bool = prefix) -> int:
            return sum(1 for t in ts if (t.startswith(term) if prefix else t == term))

        holders = {cid: count(ts) for cid, ts in live.items() if count(ts)}
        n = len(holders)
        idf = math.log((total - n + 0.5) / (n + 0.5))
        idf = idf if idf > 0 else IDF_FLOOR
        for cid, tf in holders.items():
            dl = len(live[cid])
            part = idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * dl / avgdl))
            scores[cid] = scores.get(cid, 0.0) + part
    return scores


def scored(index: TermIndex, terms: list[tuple[str, bool]]) -> dict[int, float]:
    view = index.view()
    return dict(view.top([view.postings(t, p) for t, p in terms], 10_000))


def test_scores_are_fts5_bm25() -> None:
    rows = {
        1: ["a", "b", "a"],
        2: ["b", "c"],
        3: ["中文", "文档", "档"],
        4: ["a", "c", "d", "e", "f", "b"],
        5: ["中", "x1"],
    }
    index = TermIndex.build([(cid, " ".join(ts)) for cid, ts in rows.items()])
    for terms in ([("a", False)], [("b", False), ("c", False)], [("中", True)], [("zz", False)]):
        assert scored(index, terms) == pytest.approx(reference(rows, terms), rel=1e-5)
    # A term in most rows gets FTS5's idf floor, not a negative weight.
    assert 0 < scored(index, [("b", False)])[2] < 1e-5


ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(1, 12), st.lists(st.sampled_from(WORDS), max_size=8)),
        st.tuples(st.just("drop"), st.integers(1, 12), st.just([])),
        st.tuples(st.just("merge"), st.just(0), st.just([])),
    ),
    min_size=1,
    max_size=25,
)
queries = st.lists(
    st.tuples(st.sampled_from(WORDS), st.booleans()).map(
        lambda tp: (tp[0], tp[1] and len(tp[0]) == 1 and not tp[0].isascii())
    ),
    min_size=1,
    max_size=4,
    unique=True,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.dictionaries(st.integers(1, 12), st.lists(st.sampled_from(WORDS), max_size=8)),
    steps=ops,
    terms=queries,
)
def test_incremental_changes_equal_a_fresh_build(
    start: dict[int, list[str]],
    steps: list[tuple[str, int, list[str]]],
    terms: list[tuple[str, bool]],
) -> None:
    """Inserts, deletes, re-adds (a chunk put again replaces itself) and merges, applied
    as the index's sync applies them, score exactly what a fresh build scores."""
    rows = dict(start)
    index = TermIndex.build([(cid, " ".join(ts)) for cid, ts in sorted(rows.items())])
    for op, cid, words in steps:
        if op == "put":
            rows[cid] = words
            index.apply([cid], [(cid, " ".join(words))])
        elif op == "drop":
            rows.pop(cid, None)
            index.apply([cid], [])
        else:
            index.compact(whole=cid % 2 == 0)  # every segment, or the added ones when due
    fresh = TermIndex.build([(cid, " ".join(ts)) for cid, ts in sorted(rows.items())])
    assert index.chunk_ids() == set(rows) == fresh.chunk_ids()
    assert index.live == len(rows)
    want = reference(rows, terms)
    assert scored(index, terms) == pytest.approx(want, rel=1e-5)
    assert scored(fresh, terms) == pytest.approx(want, rel=1e-5)


def test_filters_and_ties() -> None:
    index = TermIndex.build([(cid, "a b") for cid in range(10, 20)])
    view = index.view()
    match = [view.postings("a")]
    # Equal scores: ordered by chunk id, as the database's query orders them.
    assert [cid for cid, _ in view.top(match, 3)] == [10, 11, 12]
    allowed = np.array([19, 13, 999, -1], dtype=np.int64)
    assert [cid for cid, _ in view.top(match, 5, allowed)] == [13, 19]
    assert view.top(match, 5, np.zeros(0, np.int64)) == []


def test_merges_keep_later_segments() -> None:
    index = TermIndex.build([(1, "a"), (2, "b")])
    for cid in range(3, 40):
        index.apply([], [(cid, "a c")])
    assert index.wants_compaction()
    index.apply([2], [])
    index.compact()
    assert len(index.view().segments) == 1
    assert not index.wants_compaction()
    index.apply([], [(50, "c")])
    assert set(scored(index, [("c", False)])) == set(range(3, 40)) | {50}
    assert 2 not in scored(index, [("b", False)])


def test_small_added_segments_are_merged_into_one() -> None:
    rows = {cid: f"w{cid % 7} common" for cid in range(1, 200)}
    index = TermIndex.build(sorted(rows.items()))
    for cid in range(300, 304):
        assert not index.wants_compaction()
        rows[cid] = "common rare"
        index.apply([], [(cid, rows[cid])])
    index.apply([5], [])
    del rows[5]
    assert len(index.view().segments) == 5 and index.wants_compaction()
    index.compact()
    first = index.view().segments[0]
    assert len(index.view().segments) == 2 and not index.wants_compaction()
    fresh = TermIndex.build(sorted(rows.items()))
    terms = [("common", False), ("rare", False), ("w5", False)]
    assert scored(index, terms) == pytest.approx(scored(fresh, terms), rel=1e-6)
    index.compact(whole=True)
    assert len(index.view().segments) == 1 and index.view().segments[0] is not first


# -- against the database, through the app -------------------------------------------------

SAMPLES = {
    "guide.md": GUIDE_MD,
    "backup.md": BACKUP_MD,
    "faq.md": FAQ_MD,
    "exam.md": EXAM_MD,
    "leave.md": LEAVE_MD,
}
QUERIES = [
    "How do I restore a backup?",
    "backup retention thirty days",
    "备份文件保留多少天",
    "停止服务",
    "备",  # a lone character: matched as a prefix
    "Orbit Notes offline network",
    "第3章 备份",
    "export Markdown PDF",
    "nothing-like-this-anywhere",
]


@pytest.fixture
def memory_rt(settings: Settings, rt: Runtime) -> Iterator[Runtime]:
    """The runtime with postings for every collection (threshold 0) and the samples."""
    rt.indexes.terms_min_chunks = 0
    for name, text in SAMPLES.items():
        store_upload(rt, name, text.encode())
    assert {o.status for o in settle(rt)} == {"ready"}
    yield rt


def _index(rt: Runtime) -> CollectionIndex:
    with rt.sessions() as s:
        return rt.indexes.get(s, rt.collection(s))


def _wait_for_terms(idx: CollectionIndex, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while idx.terms is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert idx.terms is not None, "the background thread did not build the postings"


def test_same_ranking_as_sqlite_bm25(memory_rt: Runtime, backend: str) -> None:
    """On SQLite the in-memory leg returns FTS5's hits in FTS5's order, with its scores."""
    if backend != "sqlite":
        pytest.skip("FTS5's bm25 is SQLite's")
    idx = _index(memory_rt)
    assert memory_rt.indexes.build_terms(idx)
    assert idx.terms is not None
    view = idx.terms.view()
    matched = 0
    with memory_rt.sessions() as s:
        cid = memory_rt.collection(s).id
        for q in QUERIES:
            want = lexical_search(s, cid, q, 50, prune=False)
            got = memory_search([(view, None)], q, 50, prune=False)
            assert [c for c, _ in got] == [c for c, _ in want], q
            assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-4), q
            matched += bool(got)
    assert matched == len(QUERIES) - 1  # all but the nonsense one
    # Filtered: the facet arrays' ids against the SQL filter the database's leg takes.
    filtered_hits = 0
    for filters in (
        SearchFilters(kind="question"),
        SearchFilters(tags=("orbit",)),
        SearchFilters(language="zh"),
        SearchFilters(doc_type="markdown", kind="faq"),
    ):
        with memory_rt.sessions() as s:
            allowed = idx.allowed_ids(s, facet_filter(filters))
            for q in ("backup password", "备份 服务", "offline network export"):
                want = lexical_search(
                    s, cid, q, 50, allowed_ids=allowed_chunks(cid, filters), prune=False
                )
                got = memory_search([(view, allowed)], q, 50, prune=False)
                assert [c for c, _ in got] == [c for c, _ in want], (q, filters)
                filtered_hits += len(got)
    assert filtered_hits  # the filters let something through
    assert any(match_terms(q)[0][1] for q in QUERIES)  # a prefix query was among them


def _no_database_leg(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> list[tuple[int, float]]:
        raise AssertionError("the database's full-text index was asked")

    monkeypatch.setattr(service, "lexical_search", refuse)


def test_search_uses_postings_once_built(
    memory_rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first search is answered by the database and asks for a build; once built,
    searches (all modes, filtered too) read the postings, which follow ingests and
    deletes through the index's sync."""
    first = search(memory_rt, query="restore a backup", mode="lexical", k=5)
    assert first.hits
    idx = _index(memory_rt)
    _wait_for_terms(idx)
    _no_database_leg(monkeypatch)
    for mode in ("lexical", "hybrid"):
        again = search(memory_rt, query="restore a backup", mode=mode, k=5)
        assert again.hits[0].heading_path[-1] == "Restoring a backup", mode
    # Filters: only what they allow.
    exams = search(
        memory_rt, query="备份", mode="lexical", k=10, filters=SearchFilters(kind="question")
    )
    assert exams.hits and {h.kind for h in exams.hits} == {"question"}
    tagged = search(
        memory_rt, query="password", mode="lexical", k=10, filters=SearchFilters(tags=("orbit",))
    )
    assert tagged.hits and {h.file for h in tagged.hits} == {"faq.md"}

    new_id = store_upload(memory_rt, "zebra.md", b"# Zebras\n\nThe quagga zebra grazes at dawn.\n")
    settle(memory_rt)
    hits = search(memory_rt, query="quagga", mode="lexical", k=5).hits
    assert [h.document_id for h in hits] == [new_id]
    with transaction(memory_rt.sessions) as s:
        delete_document(s, s.get_one(Document, new_id))
    assert search(memory_rt, query="quagga", mode="lexical", k=5).hits == []
    assert idx.terms is not None and idx.terms.live == idx.count()


def test_disabled_chunks_leave_the_postings(memory_rt: Runtime) -> None:
    idx = _index(memory_rt)
    assert memory_rt.indexes.build_terms(idx)
    with transaction(memory_rt.sessions) as s:
        target = s.scalars(select(Chunk.id).where(Chunk.text.contains("thirty days"))).first()
        assert target is not None
        s.execute(update(Chunk).where(Chunk.id == target).values(disabled=True))
        bump_version(s, memory_rt.collection(s).id)
    found = search(memory_rt, query="thirty days retention", mode="lexical", k=20)
    assert target not in {h.chunk_id for h in found.hits}
    assert idx.terms is not None and target not in idx.terms.chunk_ids()


def test_small_collections_stay_in_the_database(rt: Runtime) -> None:
    """Below the threshold (default 20k chunks) nothing is built."""
    store_upload(rt, "faq.md", FAQ_MD.encode())
    settle(rt)
    search(rt, query="password", mode="lexical", k=3)
    idx = _index(rt)
    time.sleep(0.2)
    assert idx.terms is None


def test_large_collections_recount_languages_off_the_request_path(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an ingest the previous language counts serve while a background thread
    recounts (from STALE_COUNTS_MIN_CHUNKS chunks on, at most every
    RECOUNT_MIN_INTERVAL_S); smaller ones count at once."""
    store_upload(rt, "faq.md", FAQ_MD.encode())
    settle(rt)
    with rt.sessions() as s:
        before = service.language_counts(rt, s, rt.collection(s))
    assert before.get("en") and not before.get("zh")
    monkeypatch.setattr(service, "STALE_COUNTS_MIN_CHUNKS", 1)
    monkeypatch.setattr(service, "RECOUNT_MIN_INTERVAL_S", 0.0)
    store_upload(rt, "exam.md", EXAM_MD.encode())
    settle(rt)
    with rt.sessions() as s:
        assert service.language_counts(rt, s, rt.collection(s)) == before
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with rt.sessions() as s:
            now = service.language_counts(rt, s, rt.collection(s))
        if now.get("zh"):
            break
        time.sleep(0.02)
    assert now.get("zh") and now.get("en") == before["en"]


def test_snapshot_is_loaded_and_caught_up(memory_rt: Runtime) -> None:
    """A process starting later maps the postings snapshot (no build from SQL), replays
    the changes made since it was written, and ranks as the live copy does; a corrupt
    snapshot is refused and the postings are built from SQL instead."""
    idx = _index(memory_rt)
    assert memory_rt.indexes.build_terms(idx)
    memory_rt.indexes.flush()
    path = memory_rt.indexes.terms_path(idx.meta.collection_id)
    assert path.exists()
    store_upload(memory_rt, "zebra.md", b"# Zebras\n\nThe quagga zebra grazes at dawn.\n")
    settle(memory_rt)
    idx = _index(memory_rt)  # synced: the live postings have the zebra

    def later_process() -> tuple[IndexManager, CollectionIndex]:
        manager = IndexManager(
            memory_rt.settings.index_dir, sessions=memory_rt.sessions, terms_min_chunks=0
        )
        with memory_rt.sessions() as s:
            return manager, manager.get(s, memory_rt.collection(s))

    manager, fresh = later_process()
    try:
        # The first search that wants them maps the snapshot itself: a view at once.
        assert manager.term_view(fresh) is not None
        assert manager.stats.term_loads == 1 and manager.stats.term_builds == 0
        fresh.terms = None
        assert manager.load_terms(fresh) and manager.stats.term_loads == 2
        assert fresh.terms is not None and idx.terms is not None
        assert fresh.terms.chunk_ids() == idx.terms.chunk_ids()
        for q in [*QUERIES, "quagga zebra"]:
            got = memory_search([(fresh.terms.view(), None)], q, 20)
            want = memory_search([(idx.terms.view(), None)], q, 20)
            assert [c for c, _ in got] == [c for c, _ in want], q
            assert [v for _, v in got] == pytest.approx([v for _, v in want]), q
    finally:
        manager.close()

    data = path.parent / json.loads(path.read_text())["file"]
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    data.write_bytes(bytes(blob))
    manager, fresh = later_process()
    try:
        assert not manager.load_terms(fresh)
        # Refused: the database answers meanwhile, and the background thread builds them.
        assert manager.term_view(fresh) is None
        deadline = time.monotonic() + 30
        while fresh.terms is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fresh.terms is not None and manager.stats.term_builds == 1
        assert manager.stats.term_loads == 0
    finally:
        manager.close()


def test_the_threshold_can_say_never() -> None:
    for never in ("", "never", "off"):
        assert Settings(lexical_memory_min_chunks=never).lexical_memory_min_chunks is None
    assert Settings(lexical_memory_min_chunks="0").lexical_memory_min_chunks == 0
    assert Settings().lexical_memory_min_chunks == 20_000
