"""The stored sentence vectors in a mapped file (app/vectors/sentence_file.py).

- The file answers with the very bytes SQL holds, and search ranks exactly as it does
  from SQL.
- Chunks changed since the file was written (ingests, edits, disables, deletes) are read
  from SQL until the file is written again, which copies the unchanged chunks from the
  old file: after either, the answers equal SQL's.
- A later process maps the file and catches up from the change log; a corrupt file is
  refused (its ids at once, its vectors by the background check) and written again; a
  pruned change log drops it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update

from app.collections.service import bump_version
from app.db import transaction
from app.documents import chunks as chunk_edits
from app.documents.models import Chunk, Document
from app.documents.service import delete_document
from app.runtime import Runtime
from app.search.service import search
from app.settings import Settings
from app.vectors import changes, sentence_file
from app.vectors.index import CollectionIndex, IndexManager
from app.vectors.sentence_file import read_file, stored_sentences, write_file
from tests.factories import settle, store_upload
from tests.test_postings import QUERIES, SAMPLES


@pytest.fixture
def file_rt(rt: Runtime) -> Iterator[Runtime]:
    """The runtime with a sentence file for every collection (threshold 0) and samples."""
    rt.indexes.sentences_min_chunks = 0
    for name, text in SAMPLES.items():
        store_upload(rt, name, text.encode())
    assert {o.status for o in settle(rt)} == {"ready"}
    yield rt


def _index(rt: Runtime) -> CollectionIndex:
    with rt.sessions() as s:
        return rt.indexes.get(s, rt.collection(s))


def _chunk_ids(rt: Runtime) -> list[int]:
    with rt.sessions() as s:
        return list(s.scalars(select(Chunk.id).order_by(Chunk.id)))


def _from_sql(rt: Runtime, ids: list[int]) -> dict[int, np.ndarray]:
    with rt.sessions() as s:
        col = rt.collection(s)
        return stored_sentences(s, ids, model=col.model, dim=col.dim)


def _from_manager(rt: Runtime, idx: CollectionIndex, ids: list[int]) -> dict[int, np.ndarray]:
    with rt.sessions() as s:
        col = rt.collection(s)
        return rt.indexes.stored_sentences(s, [idx], ids, model=col.model, dim=col.dim)


def _same(got: dict[int, np.ndarray], want: dict[int, np.ndarray]) -> None:
    assert set(got) == set(want)
    for cid, vectors in want.items():
        assert np.array_equal(got[cid], vectors), cid


def _no_sql(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(session: object, chunk_ids: list[int], **kw: object) -> dict[int, np.ndarray]:
        assert not chunk_ids, f"read from SQL: {chunk_ids}"
        return {}

    monkeypatch.setattr(sentence_file, "stored_sentences", refuse)


def test_write_and_read_round_trip(tmp_path: Path) -> None:
    dim = 4
    rows = [
        (3, np.arange(8, dtype=np.float16).reshape(2, dim)),
        (5, None),  # held, with no sentences
        (9, np.ones((1, dim), dtype=np.float16)),
    ]
    sidecar = tmp_path / "collection-1.sentences.json"
    written = write_file(sidecar, iter(rows), collection_id=1, version=7, model="m", dim=dim)
    again = read_file(sidecar)
    assert (again.version, again.model, again.dim, len(again)) == (7, "m", dim, 3)
    assert sentence_file.file_is_intact(again)
    cache = sentence_file.SentenceCache(written, {9})
    got, rest = cache.answer([9, 5, 3, 4], model="m", dim=dim)
    assert set(got) == {3} and np.array_equal(got[3], rows[0][1].astype(np.float32))
    assert rest == [9, 4]  # stale, and not held; 5 is answered: it has none
    assert cache.answer([3], model="other", dim=dim) == ({}, [3])
    with pytest.raises(ValueError, match="ascending"):
        write_file(sidecar, iter(rows[::-1]), collection_id=1, version=8, model="m", dim=dim)
    assert read_file(sidecar).version == 7  # the failed write published nothing
    data = again.path
    blob = bytearray(data.read_bytes())
    blob[-3] ^= 0xFF  # an offset
    data.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="checksum"):
        read_file(sidecar)
    data.write_bytes(bytes(blob[:-8]))
    with pytest.raises(ValueError, match="truncated"):
        read_file(sidecar)


def test_file_answers_as_sql_and_search_ranks_the_same(
    file_rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    idx = _index(file_rt)
    ids = _chunk_ids(file_rt)
    want = _from_sql(file_rt, ids)
    assert want  # the samples have sentence vectors
    before = {
        (q, mode): [
            (h.chunk_id, round(h.score, 6)) for h in search(file_rt, query=q, mode=mode).hits
        ]
        for q in QUERIES
        for mode in ("hybrid", "dense")
    }
    assert file_rt.indexes.build_sentences(idx)
    assert idx.sentences is not None and not idx.sentences.stale
    _no_sql(monkeypatch)
    _same(_from_manager(file_rt, idx, ids), want)
    for (q, mode), hits in before.items():
        got = search(file_rt, query=q, mode=mode).hits
        assert [(h.chunk_id, round(h.score, 6)) for h in got] == hits, (q, mode)


def test_changes_are_read_from_sql_until_the_file_is_written_again(file_rt: Runtime) -> None:
    idx = _index(file_rt)
    assert file_rt.indexes.build_sentences(idx)
    first = idx.sentences
    assert first is not None
    # An ingest, an edit, a disable and a delete.
    store_upload(file_rt, "zebra.md", b"# Zebras\n\nThe quagga zebra grazes at dawn. It sleeps.\n")
    settle(file_rt)
    with transaction(file_rt.sessions) as s:
        edited = s.scalars(select(Chunk).where(Chunk.text.contains("thirty days"))).first()
        assert edited is not None
        assert chunk_edits.edit_chunk(
            file_rt, s, edited, edited.text + " Older copies are removed.", None
        )
        bump_version(s, edited.collection_id)
        edited_id = edited.id
        off = s.scalars(select(Chunk.id).where(Chunk.id != edited_id).order_by(Chunk.id)).first()
        s.execute(update(Chunk).where(Chunk.id == off).values(disabled=True))
        bump_version(s, edited.collection_id)
        doomed = s.scalars(select(Document).where(Document.filename == "leave.md")).one()
        doomed_chunks = set(s.scalars(select(Chunk.id).where(Chunk.document_id == doomed.id)))
        delete_document(s, doomed)
    idx = _index(file_rt)  # synced
    assert idx.sentences is first  # the same file, with what changed marked
    assert edited_id in first.stale and off in first.stale and doomed_chunks <= first.stale
    ids = _chunk_ids(file_rt)
    want = _from_sql(file_rt, ids)
    got = _from_manager(file_rt, idx, ids)
    _same(got, want)
    # Written again: the unchanged chunks are copied from the first file.
    assert file_rt.indexes.build_sentences(idx)
    second = idx.sentences
    assert second is not None and second is not first and not second.stale
    assert off not in second.file.ids and not doomed_chunks & set(second.file.ids.tolist())
    assert np.array_equal(
        second.answer([edited_id], model=first.file.model, dim=first.file.dim)[0][edited_id],
        want[edited_id],
    )
    _same(_from_manager(file_rt, idx, ids), want)
    assert file_rt.indexes.stats.sentence_builds == 2


def test_many_changes_ask_for_a_new_file(file_rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.vectors import index as index_module

    idx = _index(file_rt)
    assert file_rt.indexes.build_sentences(idx)
    monkeypatch.setattr(index_module, "_SENTENCES_STALE_MIN", 0)
    monkeypatch.setattr(index_module, "_SENTENCES_STALE_SHARE", 10**6)
    store_upload(file_rt, "zebra.md", b"# Zebras\n\nThe quagga zebra grazes at dawn.\n")
    settle(file_rt)
    _index(file_rt)  # the sync marks the new chunk, and asks for a new file
    deadline = time.monotonic() + 30
    while file_rt.indexes.stats.sentence_builds < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert file_rt.indexes.stats.sentence_builds == 2
    assert idx.sentences is not None and len(idx.sentences.file) == len(_chunk_ids(file_rt))


def test_a_later_process_maps_the_file_and_catches_up(file_rt: Runtime) -> None:
    idx = _index(file_rt)
    assert file_rt.indexes.build_sentences(idx)
    path = file_rt.indexes.sentences_path(idx.meta.collection_id)
    new_id = store_upload(file_rt, "zebra.md", b"# Zebras\n\nThe quagga zebra grazes at dawn.\n")
    settle(file_rt)
    with file_rt.sessions() as s:
        added = set(s.scalars(select(Chunk.id).where(Chunk.document_id == new_id)))
    ids = _chunk_ids(file_rt)
    want = _from_sql(file_rt, ids)

    def later_process() -> tuple[IndexManager, CollectionIndex]:
        manager = IndexManager(
            file_rt.settings.index_dir, sessions=file_rt.sessions, sentences_min_chunks=0
        )
        with file_rt.sessions() as s:
            return manager, manager.get(s, file_rt.collection(s))

    manager, fresh = later_process()
    try:
        with file_rt.sessions() as s:
            col = file_rt.collection(s)
            got = manager.stored_sentences(s, [fresh], ids, model=col.model, dim=col.dim)
        _same(got, want)
        assert manager.stats.sentence_loads == 1 and manager.stats.sentence_builds == 0
        assert fresh.sentences is not None and fresh.sentences.stale == added
        deadline = time.monotonic() + 30  # the background thread checks its sha256
        while not fresh.sentences.verified and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fresh.sentences.verified and manager.stats.sentence_builds == 0
    finally:
        manager.close()

    # A flipped bit among the vectors: mapped, then refused by the check and written again.
    data = path.parent / json.loads(path.read_text())["file"]
    blob = bytearray(data.read_bytes())
    blob[10] ^= 0xFF
    data.write_bytes(bytes(blob))
    manager, fresh = later_process()
    try:
        with file_rt.sessions() as s:
            col = file_rt.collection(s)
            manager.stored_sentences(s, [fresh], ids[:3], model=col.model, dim=col.dim)
        deadline = time.monotonic() + 30
        while manager.stats.sentence_builds == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert manager.stats.sentence_loads == 1 and manager.stats.sentence_builds == 1
        assert fresh.sentences is not None and fresh.sentences.verified
        with file_rt.sessions() as s:
            got = manager.stored_sentences(s, [fresh], ids, model=col.model, dim=col.dim)
        _same(got, want)
    finally:
        manager.close()


def test_a_pruned_change_log_drops_the_file(file_rt: Runtime) -> None:
    idx = _index(file_rt)
    assert file_rt.indexes.build_sentences(idx)
    with transaction(file_rt.sessions) as s:
        bump_version(s, file_rt.collection(s).id)
        bump_version(s, file_rt.collection(s).id)
    with transaction(file_rt.sessions) as s:
        changes.prune(s, keep_versions=0)
    _index(file_rt)  # the log does not reach back: a full diff, which drops the file
    assert idx.sentences is None
    ids = _chunk_ids(file_rt)
    _same(_from_manager(file_rt, idx, ids), _from_sql(file_rt, ids))


def test_small_collections_read_sql(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Below the threshold (default 20k chunks) no file is written."""
    for name, text in SAMPLES.items():
        store_upload(rt, name, text.encode())
    settle(rt)
    calls: list[int] = []
    real = sentence_file.stored_sentences

    def counted(session: object, chunk_ids: list[int], **kw: object) -> dict[int, np.ndarray]:
        calls.append(len(chunk_ids))
        return real(session, chunk_ids, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(sentence_file, "stored_sentences", counted)
    assert search(rt, query="How do I restore a backup?", mode="hybrid").hits
    assert calls and calls[0] > 0
    time.sleep(0.2)
    assert _index(rt).sentences is None
    assert not list(rt.settings.index_dir.glob("*.sentences*"))
    for never in ("", "never", "off"):
        assert Settings(sentence_file_min_chunks=never).sentence_file_min_chunks is None
    assert Settings().sentence_file_min_chunks == 20_000
