"""A mapped index takes changes without a copy: removed ids are excluded from its searches
and added vectors go to a small owned delta. Whatever the sequence of changes, it must
answer exactly as an owned index that took the same changes (real FAISS, no SQL)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.vectors.index import (
    CollectionIndex,
    IndexMeta,
    _new_index,
    read_snapshot,
    write_snapshot,
)

DIM = 16
BASE = 60


def _vectors(rng: np.random.Generator, n: int) -> npt.NDArray[np.float32]:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _top(idx: CollectionIndex, q: npt.NDArray[np.float32], k: int, allowed: object) -> list[int]:
    return [i for i, _ in idx.search(q, k, allowed=allowed)]  # type: ignore[arg-type]


# Each step: ("add", n new ids) | ("remove", positions among the live ids) | ("readd", n of
# the removed ids, with new vectors).
_step = st.one_of(
    st.tuples(st.just("add"), st.integers(1, 8)),
    st.tuples(st.just("remove"), st.lists(st.integers(0, 10_000), min_size=1, max_size=8)),
    st.tuples(st.just("readd"), st.integers(1, 4)),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(_step, max_size=12), seed=st.integers(0, 2**16))
def test_a_mapped_index_with_changes_answers_as_an_owned_one(
    tmp_path: Path, steps: list[tuple[str, object]], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    meta = IndexMeta(collection_id=1, embedder="t", model="m", dim=DIM, version=1)
    base_ids = np.arange(1, BASE + 1, dtype=np.int64) * 3  # sparse ids, as SQL keys are
    base_x = _vectors(rng, BASE)
    owned = CollectionIndex(meta)
    owned.add(base_ids, base_x)
    path = tmp_path / f"s{seed}-{len(steps)}.kbidx.json"
    write_snapshot(path, owned.index, meta)
    mapped = read_snapshot(path)
    assert mapped.mapped

    live = set(base_ids.tolist())
    gone: set[int] = set()
    next_id = int(base_ids.max()) + 1
    for kind, arg in steps:
        if kind == "add":
            ids = np.arange(next_id, next_id + int(arg), dtype=np.int64)  # type: ignore[call-overload]
            next_id += int(arg)  # type: ignore[call-overload]
        elif kind == "readd":
            ids = np.array(sorted(gone)[: int(arg)], dtype=np.int64)  # type: ignore[call-overload]
            if not len(ids):
                continue
        else:
            pool = sorted(live)
            chosen = {pool[p % len(pool)] for p in arg} if pool else set()  # type: ignore[attr-defined]
            for idx in (owned, mapped):
                idx.remove(idx.present(chosen))
            live -= chosen
            gone |= chosen
            continue
        x = _vectors(rng, len(ids))
        for idx in (owned, mapped):
            idx.add(ids, x)
        live |= set(ids.tolist())
        gone -= set(ids.tolist())

    assert mapped.mapped  # no change made it copy the mapped file
    assert mapped.count() == owned.count() == len(live)
    assert mapped.ids() == owned.ids() == live
    probe = sorted(live | gone)[:20]
    assert mapped.present(probe) == owned.present(probe)
    for i in sorted(live)[:10]:
        np.testing.assert_array_equal(mapped.reconstruct(i), owned.reconstruct(i))

    allowed = np.array(sorted(live | gone)[::2], dtype=np.int64)
    for q in _vectors(rng, 5):
        for k in (1, 10, 200):
            assert _top(mapped, q, k, None) == _top(owned, q, k, None)
            assert _top(mapped, q, k, allowed) == _top(owned, q, k, allowed)

    # What a snapshot of the mapped index writes is the owned index's content.
    whole = mapped.frozen().whole()
    written = CollectionIndex(meta, whole)
    assert written.ids() == live and not written.mapped
    for q in _vectors(rng, 3):
        assert _top(written, q, 10, None) == _top(owned, q, 10, None)


def test_a_search_never_returns_a_removed_id_of_the_mapped_index(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    meta = IndexMeta(collection_id=1, embedder="t", model="m", dim=DIM, version=1)
    x = _vectors(rng, 50)
    first = _new_index(DIM)
    first.add_with_ids(x, np.arange(50, dtype=np.int64))
    path = tmp_path / "c.kbidx.json"
    write_snapshot(path, first, meta)
    idx = read_snapshot(path)
    idx.remove([7])
    assert 7 not in [i for i, _ in idx.search(x[7], 50)]
    assert 7 not in [i for i, _ in idx.search(x[7], 50, allowed=np.array([6, 7, 8]))]
    idx.add(np.array([7], dtype=np.int64), -x[7:8])  # re-added with another vector
    hits = dict(idx.search(x[7], 50))
    assert hits[7] < -0.99 and list(hits).count(7) == 1
    assert idx.count() == 50 and idx.mapped


def test_searches_run_while_a_mapped_index_takes_changes_and_is_swapped(
    tmp_path: Path,
) -> None:
    """Searches in other threads while changes land and the index is swapped for a newly
    mapped snapshot (what a save does): no crash (a freed selector or bitmap would abort
    the process), no id twice, never a removed one, always k results."""
    rng = np.random.default_rng(5)
    meta = IndexMeta(collection_id=1, embedder="t", model="m", dim=DIM, version=1)
    x = _vectors(rng, 400)
    first = _new_index(DIM)
    first.add_with_ids(x, np.arange(400, dtype=np.int64))
    write_snapshot(tmp_path / "c.kbidx.json", first, meta)
    idx = read_snapshot(tmp_path / "c.kbidx.json")
    never = np.arange(0, 400, 7, dtype=np.int64)  # removed before the searches start
    idx.remove(never.tolist())
    stop = threading.Event()
    errors: list[BaseException] = []
    searches = 0

    def searcher(filtered: bool) -> None:
        nonlocal searches
        allowed = np.arange(0, 5000, 2, dtype=np.int64) if filtered else None
        qs = _vectors(np.random.default_rng(int(filtered)), 50)
        while not stop.is_set():
            try:
                for q in qs:
                    hits = [i for i, _ in idx.search(q, 10, allowed=allowed)]
                    assert len(hits) == 10 and len(set(hits)) == 10
                    assert not set(hits) & set(never.tolist())
                    searches += 1
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=searcher, args=(f,)) for f in (False, True)]
    for t in threads:
        t.start()
    try:
        next_id = 1000
        for round_ in range(6):
            for _ in range(5):
                idx.remove(rng.choice(idx.id_array(), 5, replace=False).tolist())
                idx.add(np.arange(next_id, next_id + 8, dtype=np.int64), _vectors(rng, 8))
                next_id += 8
            with idx.sync_lock:
                frozen = idx.frozen()
            side = tmp_path / f"r{round_}.kbidx.json"
            write_snapshot(side, frozen.whole(), frozen.meta)
            remapped = read_snapshot(side)
            with idx.lock:
                want = idx.ids()
                idx.adopt(remapped)
            assert idx.ids() == want and idx.delta is None
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[0]
    assert searches > 0
