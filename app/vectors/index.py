"""FAISS indexes derived from the vectors in SQL, one per collection.

SQL is the truth. Each serving process keeps its own copy in step: the collection's
``version`` is the cheap "anything new?" probe, and when it moved the process applies
only the chunk ids the change log (``chunk_changes``, written by database triggers; see
app/vectors/changes.py) names after the version its index covers. A full diff of every
chunk id is the fallback (no index yet, another model, changes pruned) and a periodic
background consistency check.

Snapshots on disk only make starting fast; they are written by one background thread per
manager, never on a request path: a FAISS file (``faiss.write_index``) renamed into place,
then a small JSON sidecar naming it, with the version it covers and its size and sha256,
renamed over the previous one. A reader that trusts only the sidecar therefore never sees
a half-written file. Loading maps the vectors (``IO_FLAG_MMAP_IFC``: no copy, and the
pages are shared by every process on the host); a change to a mapped index excludes the
ids it removes and adds to a small owned delta index (see CollectionIndex), and after
each save the process maps the file it wrote, or the one another process wrote at the
same version, in place of both. A missing, stale or corrupt snapshot is rebuilt or
brought up to date from SQL, never by re-embedding.

Index type by size (``AnnPolicy``): a collection's index is exact (``IndexFlatIP`` under
an id map) until it holds ``min_vectors`` vectors; then the background thread trains an
inverted-file index (IVF, about sqrt(N) lists, its own ids and a hashtable direct map so
deletes and id lookups work) from the vectors in SQL, replays the changes the live index
took meanwhile from the change log, and swaps it in; it trains again when the collection
has grown ``regrow`` times since. Searches probe ``nprobe`` lists (recall against exact
search is measured by bench/scale.py and tests/test_ann.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.collections.models import Collection
from app.documents.models import Chunk
from app.vectors import changes, facets, postings, sentence_file
from app.vectors.facets import ChunkFacets, FacetFilter
from app.vectors.files import HASH_BLOCK, check_data_file, publish_json, release_freed_memory
from app.vectors.postings import TermIndex, TermView
from app.vectors.sentence_file import SentenceCache

log = logging.getLogger(__name__)

_FETCH_BATCH = 2000
_COPY_BLOCK = 65536
# Up to this many changed ids are looked up one by one in the index; more, with one pass.
_PROBE_MAX = 256
# Data files of a collection other than the current one are removed once this old (s):
# another process may have written one and be about to publish its sidecar.
_STALE_FILE_S = 60.0
# The sentence file is written again once this many of its chunks changed (or a
# 1/_SENTENCES_STALE_SHARE of them, whichever is more): until then they are read from SQL.
_SENTENCES_STALE_MIN = 2000
_SENTENCES_STALE_SHARE = 20


@dataclass(frozen=True)
class IndexMeta:
    """What an index covers; a snapshot whose model or dimension differs is discarded.

    ``version`` is the collection version whose chunks the index holds (it also is the
    change log cursor: changes stamped with a higher version are still to be applied)."""

    collection_id: int
    embedder: str
    model: str
    dim: int
    version: int


def vector_to_bytes(vector: npt.NDArray[np.float32]) -> bytes:
    """Store a vector as little-endian float16 (half the bytes, retrieval unchanged)."""
    return np.asarray(vector, dtype="<f2").tobytes()


def bytes_to_vectors(blobs: Iterable[bytes], dim: int) -> npt.NDArray[np.float32]:
    joined = b"".join(blobs)
    arr = np.frombuffer(joined, dtype="<f2").astype(np.float32)
    return arr.reshape(-1, dim)


def _new_index(dim: int) -> Any:
    # IndexIDMap2 keeps chunk ids (SQL primary keys) as FAISS ids and can list them.
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


@dataclass(frozen=True)
class AnnPolicy:
    """When a collection's index becomes approximate, and how the IVF index is built.

    ``min_vectors``: exact search below this many vectors (0: always exact). ``encoding``:
    how IVF stores vectors, "Flat" (float32) or "SQfp16" (half the memory). ``nprobe``:
    lists searched per query (0: ``max(16, nlist // 8)``, measured for recall@10 >= 0.98).
    ``regrow``: train again when the collection is this many times the size trained on.
    """

    min_vectors: int = 50_000
    encoding: str = "Flat"
    nprobe: int = 0
    regrow: float = 2.0
    # Training points per list: FAISS wants >= 39; more costs time, not recall.
    train_per_list: int = 64

    def nlist(self, n: int) -> int:
        return max(16, min(16384, round(math.sqrt(n))))

    def probes(self, nlist: int) -> int:
        return min(nlist, self.nprobe or max(16, nlist // 8))

    def wants_ivf(self, n: int, trained_on: int) -> bool:
        if self.min_vectors <= 0 or n < self.min_vectors:
            return False
        return trained_on <= 0 or n >= self.regrow * trained_on


EXACT = AnnPolicy(min_vectors=0)


def _new_ivf(dim: int, nlist: int, encoding: str) -> Any:
    index = faiss.index_factory(dim, f"IVF{nlist},{encoding}", faiss.METRIC_INNER_PRODUCT)
    return index


class _Removed:
    """Ids removed from a mapped index (FAISS cannot change a mapped file), sorted, with a
    selector that excludes them; replaced whole on each change, so a search can hold one
    without a lock."""

    def __init__(self, ids: npt.NDArray[np.int64]) -> None:
        self.ids = ids
        self._batch = faiss.IDSelectorBatch(ids) if len(ids) else None
        self.excluding = None if self._batch is None else faiss.IDSelectorNot(self._batch)

    def __len__(self) -> int:
        return len(self.ids)

    def with_(self, more: npt.NDArray[np.int64]) -> _Removed:
        return _Removed(np.union1d(self.ids, more).astype(np.int64, copy=False))


_NONE_REMOVED = _Removed(np.zeros(0, np.int64))


def _base_ids(index: Any) -> npt.NDArray[np.int64]:
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is None:
        return faiss.vector_to_array(index.id_map).astype(np.int64, copy=False)
    lists: Any = ivf.invlists
    parts = [
        faiss.rev_swig_ptr(lists.get_ids(i), size).copy()
        for i in range(lists.nlist)
        if (size := lists.list_size(i))
    ]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def _holds(index: Any, i: int) -> bool:
    try:
        index.reconstruct(int(i))  # the id map's hash lookup
    except RuntimeError:
        return False
    return True


def _owned_copy(index: Any, source: Path | None, dim: int) -> Any:
    """An owned copy of a mapped index, read beside searches (the mapped file is never
    written): from the snapshot's data file when it is still there, else block by block
    from memory."""
    if source is not None:
        try:
            owned_read = faiss.read_index(str(source))
        except RuntimeError:  # removed by a newer snapshot meanwhile: copy from memory
            owned_read = None
        if owned_read is not None and int(owned_read.ntotal) == int(index.ntotal):
            return owned_read
    if faiss.try_extract_index_ivf(index) is not None:
        # A clone of a mapped IVF index still views the file; a round trip owns it.
        return faiss.deserialize_index(faiss.serialize_index(index))
    flat = faiss.downcast_index(index.index)
    ids = _base_ids(index)
    owned = _new_index(dim)
    n = int(index.ntotal)
    for start in range(0, n, _COPY_BLOCK):
        stop = min(n, start + _COPY_BLOCK)
        owned.add_with_ids(flat.reconstruct_n(start, stop - start), ids[start:stop])
    return owned


def _remove_from(index: Any, arr: npt.NDArray[np.int64]) -> None:
    # An IVF index's hashtable direct map removes only by an explicit array.
    ivf = faiss.try_extract_index_ivf(index) is not None
    index.remove_ids(faiss.IDSelectorArray(arr) if ivf else faiss.IDSelectorBatch(arr))


def _merge(
    hits: list[tuple[int, float]], ids: npt.NDArray[np.int64], scores: Any, k: int
) -> list[tuple[int, float]]:
    """The best ``k`` of two result lists, each id once (an id re-added while a search
    read the previous exclusions could come from both)."""
    both = hits + [(int(i), float(s)) for i, s in zip(ids, scores, strict=True) if i != -1]
    both.sort(key=lambda h: -h[1])
    seen: set[int] = set()
    out: list[tuple[int, float]] = []
    for i, s in both:
        if i not in seen:
            seen.add(i)
            out.append((i, s))
    return out[:k]


@dataclass(frozen=True)
class FrozenIndex:
    """What a snapshot writes, taken under ``sync_lock``: a mapped base (never changed in
    place) with the ids removed from it and an owned copy of the vectors added since, or
    an owned copy of the whole index. :meth:`whole` merges them outside the lock."""

    base: Any
    meta: IndexMeta
    mapped: bool = False
    source: Path | None = None
    removed: npt.NDArray[np.int64] | None = None
    added: Any | None = None

    def whole(self) -> Any:
        if self.removed is None and self.added is None:
            return self.base
        merged = _owned_copy(self.base, self.source, self.meta.dim)
        if self.removed is not None and len(self.removed):
            _remove_from(merged, self.removed)
        if self.added is not None and self.added.ntotal:
            merged.add_with_ids(
                self.added.index.reconstruct_n(0, self.added.ntotal), _base_ids(self.added)
            )
        return merged


class CollectionIndex:
    """Inner-product search over one collection's normalised vectors.

    A snapshot's vectors are mapped from its file (the processes of a host share the
    pages) and FAISS cannot change them: while ``mapped``, a change removes ids by
    excluding them from the mapped index's searches (``removed``) and adds vectors to a
    small owned exact index (``delta``); a search asks both. The next snapshot this
    process writes (or finds written at its version) is mapped in their place, so the
    delta holds at most the changes of one snapshot interval and no process ever copies
    the whole index to take a change.

    ``lock`` guards the FAISS objects for searches and changes (held only for the FAISS
    calls); ``sync_lock`` lets one thread at a time prepare a change (the SQL reads happen
    under it, not under ``lock``) or take a snapshot copy."""

    def __init__(self, meta: IndexMeta, index: Any | None = None, *, mapped: bool = False) -> None:
        self.meta = meta
        self.index: Any = index if index is not None else _new_index(meta.dim)
        # True while the vectors are a read-only view of a mapped snapshot file.
        self.mapped = mapped
        # The mapped snapshot's data file: a merged copy reads it plainly (one copy).
        self.source: Path | None = None
        # While mapped: the mapped ids removed since, and the vectors added since.
        self.removed = _NONE_REMOVED
        self.delta: Any | None = None
        self.lock = threading.RLock()
        self.sync_lock = threading.Lock()
        # Lists probed per search when the index is an IVF one (set by the manager).
        self.nprobe = 16
        # How many vectors an IVF index was trained on (0: exact index).
        self.trained_on = int(self.index.ntotal) if self.is_ivf else 0
        # What filters read, built on the first filtered search and then kept in step by
        # the same syncs as the vectors (None: not built, or dropped by a full diff).
        self.facets: ChunkFacets | None = None
        # The lexical leg's postings (app/vectors/postings.py), built in the background
        # for large collections and then kept in step by the same syncs (None: not built).
        self.terms: TermIndex | None = None
        # The stored sentence vectors in a mapped file (app/vectors/sentence_file.py),
        # for large collections, with the chunks changed since it was written.
        self.sentences: SentenceCache | None = None

    @property
    def version(self) -> int:
        return self.meta.version

    @property
    def is_ivf(self) -> bool:
        return faiss.try_extract_index_ivf(self.index) is not None

    # The readers below take ``lock``: a save may swap the mapped index, its exclusions
    # and its delta for a newly mapped file between two reads of them.
    def count(self) -> int:
        with self.lock:
            added = 0 if self.delta is None else int(self.delta.ntotal)
            return int(self.index.ntotal) - len(self.removed) + added

    def ids(self) -> set[int]:
        return set(self.id_array().tolist())

    def id_array(self) -> npt.NDArray[np.int64]:
        with self.lock:
            ids = _base_ids(self.index)
            removed = self.removed
            if len(removed):
                ids = ids[~np.isin(ids, removed.ids)]
            if self.delta is not None and self.delta.ntotal:
                ids = np.concatenate([ids, _base_ids(self.delta)])
            return ids

    def present(self, ids: Iterable[int]) -> list[int]:
        """Those of ``ids`` the index holds."""
        wanted = list(ids)
        if len(wanted) > _PROBE_MAX:
            have = self.id_array()
            arr = np.asarray(wanted, dtype=np.int64)
            return [int(i) for i in arr[np.isin(arr, have)]]
        with self.lock:
            return [i for i in wanted if self._holds(int(i))]

    def _holds(self, i: int) -> bool:
        """(The caller holds ``lock``.)"""
        if self.delta is not None and _holds(self.delta, i):
            return True
        removed = self.removed.ids
        at = int(np.searchsorted(removed, i))
        if at < len(removed) and int(removed[at]) == i:
            return False
        return _holds(self.index, i)

    def reconstruct(self, i: int) -> npt.NDArray[np.float32]:
        """The stored vector of chunk ``i`` (KeyError when the index does not hold it)."""
        with self.lock:
            if not self._holds(i):
                raise KeyError(i)
            if self.delta is not None and _holds(self.delta, i):
                return np.asarray(self.delta.reconstruct(i))
            return np.asarray(self.index.reconstruct(i))

    def adopt(self, other: CollectionIndex) -> None:
        """Take ``other``'s vectors in place of these (the caller holds ``lock``)."""
        self.index, self.mapped, self.source = other.index, other.mapped, other.source
        self.removed, self.delta = other.removed, other.delta
        self.nprobe = other.nprobe
        self.trained_on = int(self.index.ntotal) if self.is_ivf else 0

    def add(self, ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32]) -> None:
        if len(ids):
            with self.lock:
                x = np.ascontiguousarray(vectors, np.float32)
                if self.mapped:
                    if self.delta is None:
                        self.delta = _new_index(self.meta.dim)
                    self.delta.add_with_ids(x, ids)
                else:
                    self.index.add_with_ids(x, ids)

    def remove(self, ids: Iterable[int]) -> None:
        arr = np.fromiter(ids, dtype=np.int64)
        if not len(arr):
            return
        with self.lock:
            if not self.mapped:
                _remove_from(self.index, arr)
                return
            if self.delta is not None and self.delta.ntotal:
                self.delta.remove_ids(faiss.IDSelectorBatch(arr))
            if len(arr) > _PROBE_MAX:
                mapped = arr[np.isin(arr, _base_ids(self.index))]
            else:
                mapped = np.fromiter((i for i in arr if _holds(self.index, int(i))), np.int64)
            if len(mapped):
                self.removed = self.removed.with_(mapped)

    def allowed_ids(self, session: Session, f: FacetFilter) -> npt.NDArray[np.int64]:
        """The chunk ids passing ``f``, from the facet arrays (read from SQL on first use,
        the per-document table once per version)."""
        cid = self.meta.collection_id
        if self.facets is None:
            rows = facets.read_all_rows(session, cid)
            with self.sync_lock:  # no change is applied while the arrays are swapped in
                if self.facets is None:
                    built = ChunkFacets()
                    built.replace((), rows)
                    with self.lock:
                        self.facets = built
        with self.lock:
            current = self.facets
            version = self.version
        assert current is not None
        docs = current.documents
        if facets.needs_documents(f) and (docs is None or docs.version != version):
            docs = facets.read_documents(session, cid, version)
            current.documents = docs
        with self.lock:
            return current.allowed(f, docs)

    def search(
        self,
        query: npt.NDArray[np.float32],
        k: int,
        *,
        allowed: npt.NDArray[np.int64] | None = None,
    ) -> list[tuple[int, float]]:
        """Top-k (chunk id, cosine score) for one normalised query vector.

        ``allowed`` restricts the search to those chunk ids inside FAISS (a bitmap
        selector over the id space), so a filtered search still returns k results when
        k exist.
        """
        if allowed is not None and not len(allowed):
            return []
        removed = self.removed
        selection = base_selection = None
        if allowed is not None:
            selection, base_selection = facets.bitmap_selectors(
                allowed, removed.ids if len(removed) else None
            )
        x = query.reshape(1, -1).astype(np.float32)
        with self.lock:
            if self.count() == 0 or k <= 0:
                return []
            current = self.removed  # kept alive (it owns the selector) until the return
            base_sel: Any = current.excluding
            if selection is not None:
                if current is not removed and allowed is not None:
                    # a change landed since the bitmaps were made: exclude its ids too
                    _, base_selection = facets.bitmap_selectors(allowed, current.ids)
                base_sel = (base_selection or selection).selector
            params: Any = None
            # The keyword forms keep the selector alive as long as the parameters.
            if self.is_ivf:
                params = faiss.SearchParametersIVF(sel=base_sel, nprobe=self.nprobe)  # type: ignore[call-arg]
            elif base_sel is not None:
                params = faiss.SearchParameters(sel=base_sel)  # type: ignore[call-arg]
            scores, ids = self.index.search(x, k, params=params)
            hits = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != -1]
            delta = self.delta
            if delta is not None and delta.ntotal:
                dparams: Any = None
                if selection is not None:
                    dparams = faiss.SearchParameters(sel=selection.selector)  # type: ignore[call-arg]
                dscores, dids = delta.search(x, min(k, int(delta.ntotal)), params=dparams)
                hits = _merge(hits, dids[0], dscores[0], k)
            del selection, base_selection  # the bitmaps outlive the searches that read them
        return hits

    def frozen(self) -> FrozenIndex:
        """What a snapshot of this index writes (the caller holds ``sync_lock``, which
        every change takes): a mapped index is never changed in place (its changes are
        copied), an owned one is copied. Searches go on meanwhile."""
        if not self.mapped:
            return FrozenIndex(faiss.clone_index(self.index), self.meta)
        with self.lock:
            added = None
            if self.delta is not None and self.delta.ntotal:
                added = faiss.clone_index(self.delta)
            removed = self.removed.ids if len(self.removed) else None
        return FrozenIndex(self.index, self.meta, True, self.source, removed, added)

    # Snapshot: <name>.json (the sidecar) names the FAISS data file and its checksum.
    def save(self, path: Path) -> None:
        """Write a snapshot whose sidecar is ``path``, atomically (see write_snapshot)."""
        with self.sync_lock:
            frozen = self.frozen()
        write_snapshot(path, frozen.whole(), frozen.meta)

    @classmethod
    def load(cls, path: Path, *, verify: bool = True) -> CollectionIndex:
        """Read the snapshot whose sidecar is ``path``; raises ValueError when it is
        corrupt and OSError when it is missing."""
        return read_snapshot(path, verify=verify)


def write_snapshot(path: Path, index: Any, meta: IndexMeta) -> Path:
    """Write ``index`` to a new data file beside ``path`` (temporary name, fsync, rename),
    then the sidecar ``path`` the same way; returns the data file. Readers go through the
    sidecar, so they see the previous snapshot or this one, whole."""
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    stem = path.name.removesuffix(".json")  # collection-N.kbidx
    base = stem.removesuffix(".kbidx")
    data = folder / f"{base}-v{meta.version}-{secrets.token_hex(4)}.kbidx"
    tmp = folder / f".{data.name}.{os.getpid()}.tmp"
    h = hashlib.sha256()
    size = 0
    try:
        with open(tmp, "wb") as f:

            def sink(chunk: bytes) -> int:
                nonlocal size
                f.write(chunk)
                h.update(chunk)
                size += len(chunk)
                return len(chunk)

            writer = faiss.PyCallbackIOWriter(sink, HASH_BLOCK)  # type: ignore[attr-defined]
            faiss.write_index(index, writer)
            del writer  # flushes the last block
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, data)
        side = {
            **asdict(meta),
            "file": data.name,
            "size": size,
            "sha256": h.hexdigest(),
            "ntotal": int(index.ntotal),
        }
        publish_json(path, side)
    except BaseException:
        for leftover in (tmp,):
            leftover.unlink(missing_ok=True)
        raise
    _remove_old_files(folder, base, keep=data.name)
    return data


def _remove_old_files(folder: Path, base: str, *, keep: str) -> None:
    now = time.time()
    suffix = Path(keep).suffix  # .kbidx (vectors) or .bin (lexical postings)
    for old in folder.glob(f"{base}-v*{suffix}"):
        if old.name == keep:
            continue
        try:
            if now - old.stat().st_mtime >= _STALE_FILE_S:
                old.unlink()  # a process mapping it keeps its pages until it lets go
        except OSError:
            pass


def _same_model(a: IndexMeta, b: IndexMeta) -> bool:
    return (a.collection_id, a.embedder, a.model, a.dim) == (
        b.collection_id,
        b.embedder,
        b.model,
        b.dim,
    )


def _sidecar_meta(path: Path) -> IndexMeta | None:
    """What the snapshot ``path`` names covers (None: none, or unreadable)."""
    try:
        side = json.loads(path.read_text())
        return IndexMeta(**{k: side[k] for k in IndexMeta.__dataclass_fields__})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def read_snapshot(
    path: Path, *, verify: bool = True, trusted: str | None = None
) -> CollectionIndex:
    """``trusted``: a data file name whose checksum is not computed again (the caller
    wrote it)."""
    side = json.loads(path.read_text())
    try:
        meta = IndexMeta(**{k: side[k] for k in IndexMeta.__dataclass_fields__})
        data = path.parent / str(side["file"])
        size, digest, ntotal = int(side["size"]), str(side["sha256"]), int(side["ntotal"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"index snapshot {path} has an unreadable sidecar: {exc}") from exc
    verify = verify and data.name != trusted
    check_data_file(data, size, digest, verify=verify, what="index snapshot")
    try:
        index = faiss.read_index(str(data), faiss.IO_FLAG_MMAP_IFC)
    except RuntimeError as exc:
        raise ValueError(f"index snapshot {data} is unreadable: {exc}") from exc
    if int(index.ntotal) != ntotal or int(index.d) != meta.dim:
        raise ValueError(f"index snapshot {data} does not match its sidecar")
    idx = CollectionIndex(meta, index, mapped=True)
    idx.source = data
    return idx


def _sentences_outdated(cache: SentenceCache) -> bool:
    return len(cache.stale) > max(_SENTENCES_STALE_MIN, len(cache.file) // _SENTENCES_STALE_SHARE)


def _meta_for(collection: Collection, version: int) -> IndexMeta:
    return IndexMeta(
        collection_id=collection.id,
        embedder=collection.embedder,
        model=collection.model,
        dim=collection.dim,
        version=version,
    )


def _meta_for_row(collection_id: int, row: Any, version: int) -> IndexMeta:
    return IndexMeta(
        collection_id=collection_id,
        embedder=row.embedder,
        model=row.model,
        dim=row.dim,
        version=version,
    )


def _fetch_vectors(
    session: Session, collection_id: int, ids: Iterable[int], dim: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The vectors in SQL of those ``ids`` that are chunks of the collection now (and
    not disabled: app/documents/chunks.py)."""
    wanted = sorted(ids)
    id_parts: list[npt.NDArray[np.int64]] = []
    vec_parts: list[npt.NDArray[np.float32]] = []
    for start in range(0, len(wanted), _FETCH_BATCH):
        batch = wanted[start : start + _FETCH_BATCH]
        rows = session.execute(
            select(Chunk.id, Chunk.vector).where(
                Chunk.collection_id == collection_id,
                Chunk.id.in_(batch),
                Chunk.disabled.is_(False),  # a disabled chunk is searched as if deleted
            )
        ).all()
        id_parts.append(np.array([r[0] for r in rows], dtype=np.int64))
        vec_parts.append(bytes_to_vectors((r[1] for r in rows), dim))
    if not id_parts:
        return np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
    return np.concatenate(id_parts), np.concatenate(vec_parts)


def _fetch_terms(
    session: Session, collection_id: int, ids: Iterable[int]
) -> list[tuple[int, str | None]]:
    """The stored terms of those ``ids`` that are enabled chunks of the collection now."""
    wanted = sorted(ids)
    rows: list[tuple[int, str | None]] = []
    for start in range(0, len(wanted), _FETCH_BATCH):
        rows.extend(
            (r[0], r[1])
            for r in session.execute(
                select(Chunk.id, Chunk.search_terms).where(
                    Chunk.collection_id == collection_id,
                    Chunk.id.in_(wanted[start : start + _FETCH_BATCH]),
                    Chunk.disabled.is_(False),
                )
            )
        )
    return rows


@dataclass(frozen=True)
class _Changed:
    """What a sync reads of the changed chunks: enabled chunks' ids and vectors, their
    stored terms (when the index has postings), and every chunk's facet row (when it has
    facet arrays)."""

    ids: npt.NDArray[np.int64]
    vectors: npt.NDArray[np.float32]
    terms: list[tuple[int, str | None]]
    facet_rows: list[tuple[int, int, str, str | None]]


def _fetch_changed(
    session: Session, collection_id: int, ids: Iterable[int], dim: int, *, terms: bool, rows: bool
) -> _Changed:
    """One query per batch for everything a sync applies (on PostgreSQL each query is a
    round trip: three of them cost a search right after an ingest several ms)."""
    wanted = sorted(ids)
    columns: list[Any] = [Chunk.id, Chunk.disabled, Chunk.vector]
    if terms:
        columns.append(Chunk.search_terms)
    if rows:
        columns += [Chunk.document_id, Chunk.kind, Chunk.language]
    found: list[Any] = []
    for start in range(0, len(wanted), _FETCH_BATCH):
        found.extend(
            session.execute(
                select(*columns).where(
                    Chunk.collection_id == collection_id,
                    Chunk.id.in_(wanted[start : start + _FETCH_BATCH]),
                )
            )
        )
    # A disabled chunk is searched as if deleted (app/documents/chunks.py); its facet row
    # stays, as facets.read_rows keeps it.
    enabled = [r for r in found if not r.disabled]
    return _Changed(
        ids=np.array([r.id for r in enabled], dtype=np.int64),
        vectors=bytes_to_vectors((r.vector for r in enabled), dim),
        terms=[(r.id, r.search_terms) for r in enabled] if terms else [],
        facet_rows=[(r.id, r.document_id, r.kind, r.language) for r in found] if rows else [],
    )


@dataclass
class SyncStats:
    """How this manager's syncs went (for tests, logs and the benchmark)."""

    incremental: int = 0
    full: int = 0
    saves: int = 0
    checks_fixed: int = 0
    trainings: int = 0
    term_builds: int = 0
    term_loads: int = 0
    sentence_builds: int = 0
    sentence_loads: int = 0
    remaps: int = 0


class IndexManager:
    """Holds this process's indexes, keeps each in step with SQL, snapshots them in the
    background.

    ``sessions`` (optional) lets the background thread run the periodic consistency
    check (a full id diff every ``check_every_s``) and prune the change log (every
    ``prune_every_s``, keeping ``keep_versions`` versions; app/vectors/changes.py).
    """

    def __init__(
        self,
        index_dir: Path,
        *,
        snapshot_every_s: float = 30.0,
        sessions: sessionmaker[Session] | None = None,
        check_every_s: float = 600.0,
        prune_every_s: float = 600.0,
        keep_versions: int = 1000,
        ann: AnnPolicy = EXACT,
        terms_min_chunks: int | None = None,
        sentences_min_chunks: int | None = None,
    ) -> None:
        self.index_dir = index_dir
        self.ann = ann
        # Collections from this many chunks get in-memory lexical postings (None: none).
        self.terms_min_chunks = terms_min_chunks
        # ... and their sentence vectors in a mapped file (None: never; SQL serves them).
        self.sentences_min_chunks = sentences_min_chunks
        self.snapshot_every_s = snapshot_every_s
        self.sessions = sessions
        self.check_every_s = check_every_s
        self.prune_every_s = prune_every_s
        self.keep_versions = keep_versions
        self.stats = SyncStats()
        self._indexes: dict[int, CollectionIndex] = {}
        self._last_saved: dict[int, float] = {}
        self._saved_version: dict[int, int] = {}
        self._dirty: dict[int, CollectionIndex] = {}
        # Indexes whose lexical postings the background thread builds, merges or rebuilds.
        self._terms_wanted: dict[int, CollectionIndex] = {}
        # Collections whose postings snapshot a search tried to load (once per process).
        self._terms_load_tried: set[int] = set()
        # The same for the sentence files.
        self._sentences_wanted: dict[int, CollectionIndex] = {}
        self._sentences_load_tried: set[int] = set()
        # Held while a search loads either of them (searches arriving meanwhile wait).
        self._first_load_lock = threading.Lock()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._saver: threading.Thread | None = None
        self._stopping = False
        self._busy = False
        self._last_check = time.monotonic()
        self._last_prune = time.monotonic()

    def snapshot_path(self, collection_id: int) -> Path:
        """The sidecar of the collection's snapshot (it names the FAISS data file)."""
        return self.index_dir / f"collection-{collection_id}.kbidx.json"

    def terms_path(self, collection_id: int) -> Path:
        """The sidecar of the collection's lexical postings snapshot."""
        return self.index_dir / f"collection-{collection_id}.terms.json"

    def sentences_path(self, collection_id: int) -> Path:
        """The sidecar of the collection's sentence file."""
        return self.index_dir / f"collection-{collection_id}.sentences.json"

    def get(
        self, session: Session, collection: Collection, *, current: bool = False
    ) -> CollectionIndex:
        """The collection's index, brought up to date with SQL. ``current``: the caller
        read ``collection`` from the database just now (a search, with
        ``populate_existing``): its version and model are used, not read again."""
        outgrown = False
        with self._lock:
            idx = self._indexes.get(collection.id)
            if idx is None:
                idx = self._open(collection)
                self._tune(idx)
                self._indexes[collection.id] = idx
                if idx.version >= 0:  # loaded from a snapshot: the next save can wait ...
                    self._saved_version[collection.id] = idx.version
                    # ... unless the snapshot is an exact index the collection has outgrown
                    # (saved below the threshold, or before it was lowered): the background
                    # thread trains the approximate one now instead of after the next change.
                    outgrown = self.sessions is not None and self.ann.wants_ivf(
                        idx.count(), idx.trained_on
                    )
                    if not outgrown:
                        self._last_saved[collection.id] = time.monotonic()
        if outgrown:
            self._request_save(idx)
        self.sync(session, collection, idx, row=collection if current else None)
        return idx

    def _tune(self, idx: CollectionIndex) -> None:
        ivf = faiss.try_extract_index_ivf(idx.index)
        if ivf is not None:
            idx.nprobe = self.ann.probes(int(ivf.nlist))

    def _open(self, collection: Collection) -> CollectionIndex:
        path = self.snapshot_path(collection.id)
        fresh = CollectionIndex(_meta_for(collection, version=-1))
        if not path.exists():
            return fresh
        idx = None
        for _attempt in range(3):  # a newer save may remove the file between the reads
            try:
                idx = CollectionIndex.load(path)
                break
            except FileNotFoundError:
                continue
            except Exception as exc:  # any unreadable snapshot is only a lost cache
                log.warning("discarding index snapshot %s: %s", path, exc)
                return fresh
        if idx is None:
            return fresh
        want = _meta_for(collection, idx.meta.version)
        if idx.meta != want:
            log.warning("discarding index snapshot %s: built for %s", path, idx.meta)
            return fresh
        return idx

    def sync(
        self, session: Session, collection: Collection, idx: CollectionIndex, *, row: Any = None
    ) -> bool:
        """Bring ``idx`` to the collection's current version; True if anything changed.
        ``row``: the collection's version, embedder, model and dim as the caller read them
        (else probed here; on PostgreSQL a statement is ~0.5 ms of a search's CPU).

        The version probe needs no lock. The SQL reads happen under ``idx.sync_lock``
        only; searches wait on ``idx.lock`` just for the FAISS add/remove."""
        if row is None:
            row = self._probe(session, collection.id)
        if row is None or row.version <= idx.version:
            return False
        with idx.sync_lock:
            if row.version <= idx.version:
                return False  # another thread brought it there meanwhile
            self._catch_up(session, collection.id, row, idx)
        self._request_save(idx)
        return True

    @staticmethod
    def _probe(session: Session, collection_id: int) -> Any:
        return session.execute(
            select(Collection.version, Collection.embedder, Collection.model, Collection.dim).where(
                Collection.id == collection_id
            )
        ).first()

    def _catch_up(self, session: Session, cid: int, row: Any, idx: CollectionIndex) -> None:
        same_model = (idx.meta.embedder, idx.meta.model, idx.meta.dim) == (
            row.embedder,
            row.model,
            row.dim,
        )
        if same_model and idx.version >= 0:
            window = changes.read_window(session, cid, idx.version, row.version)
            if window.complete:
                self._apply(session, cid, row, idx, window.ids)
                self.stats.incremental += 1
                return
        # Which chunks changed since the sentence file was written is unknown now.
        idx.sentences = None
        self._full_diff(session, cid, row, idx, same_model=same_model)
        self.stats.full += 1

    def _apply(
        self, session: Session, cid: int, row: Any, idx: CollectionIndex, touched: frozenset[int]
    ) -> None:
        """Remove every touched id the index holds, add back those still in SQL."""
        terms = idx.terms
        got = _fetch_changed(
            session,
            cid,
            touched,
            idx.meta.dim,
            terms=terms is not None,
            rows=idx.facets is not None,
        )
        if terms is not None:
            terms.apply(touched, got.terms)
        cache = idx.sentences
        if cache is not None:
            cache.stale.update(touched)  # before searches can see the new vectors
        with idx.lock:
            idx.remove(idx.present(touched))
            idx.add(got.ids, got.vectors)
            if idx.facets is not None:
                idx.facets.replace(touched, got.facet_rows)
            idx.meta = _meta_for_row(cid, row, row.version)
        if terms is not None and (terms.wants_compaction() or terms.wants_rebuild()):
            self._want_terms(idx)
        if cache is not None and _sentences_outdated(cache):
            self._want_sentences(idx)

    def _full_diff(
        self, session: Session, cid: int, row: Any, idx: CollectionIndex, *, same_model: bool
    ) -> int:
        """Diff every chunk id in SQL against the index; returns how many ids differed.

        The ids are read after the version, so they cover at least that version; a change
        committed in between is applied again by the next sync (idempotent)."""
        sql_ids = set(
            session.scalars(
                select(Chunk.id).where(Chunk.collection_id == cid, Chunk.disabled.is_(False))
            )
        )
        fixed = self._diff_terms(session, cid, idx, sql_ids)
        if not same_model:
            # The collection switched models: build a new index, swap it in whole.
            ids, vectors = _fetch_vectors(session, cid, sql_ids, row.dim)
            fresh = _new_index(row.dim)
            if len(ids):
                fresh.add_with_ids(np.ascontiguousarray(vectors, np.float32), ids)
            with idx.lock:
                idx.adopt(CollectionIndex(_meta_for_row(cid, row, row.version), fresh))
                idx.facets = None
                idx.sentences = None
                idx.meta = _meta_for_row(cid, row, row.version)
            return len(ids) + fixed
        have = idx.ids()
        gone = have - sql_ids
        new = sql_ids - have
        cache = idx.sentences
        if cache is not None:
            cache.stale.update(gone | new)
        ids, vectors = _fetch_vectors(session, cid, new, idx.meta.dim)
        rows = facets.read_rows(session, cid, new) if idx.facets is not None else []
        with idx.lock:
            idx.remove(gone)
            idx.add(ids, vectors)
            if idx.facets is not None:
                idx.facets.replace(gone | new, rows)
            idx.meta = _meta_for_row(cid, row, row.version)
        return len(gone) + len(ids) + fixed

    @staticmethod
    def _diff_terms(session: Session, cid: int, idx: CollectionIndex, sql_ids: set[int]) -> int:
        """The full diff of the lexical postings (when built) against SQL's chunk ids."""
        terms = idx.terms
        if terms is None:
            return 0
        have = terms.chunk_ids()
        gone, new = have - sql_ids, sql_ids - have
        if gone or new:
            terms.apply(gone, _fetch_terms(session, cid, new))
        return len(gone) + len(new)

    def check(self, session: Session, collection_id: int) -> int:
        """The consistency check: a full id diff of an index this process holds (after
        applying the log); returns how many ids it had to fix (0 when all was well)."""
        with self._lock:
            idx = self._indexes.get(collection_id)
        if idx is None:
            return 0
        row = self._probe(session, collection_id)
        if row is None:
            return 0
        with idx.sync_lock:
            if row.version > idx.version:
                self._catch_up(session, collection_id, row, idx)
            same = (idx.meta.embedder, idx.meta.model, idx.meta.dim) == (
                row.embedder,
                row.model,
                row.dim,
            )
            fixed = self._full_diff(session, collection_id, row, idx, same_model=same)
        if fixed:
            log.warning(
                "index of collection %d was off by %d chunk ids; fixed", collection_id, fixed
            )
            self.stats.checks_fixed += 1
            self._request_save(idx)
        return fixed

    def rebuild(self, session: Session, collection: Collection) -> CollectionIndex:
        """Drop this process's copy and the snapshot, rebuild from SQL, save a snapshot
        (in the caller's thread: this is the ``reindex`` command, not a request)."""
        idx = CollectionIndex(_meta_for(collection, version=-1))
        with self._lock:
            self._indexes[collection.id] = idx
            self._dirty.pop(collection.id, None)
        self.sync(session, collection, idx)
        self._train_if_due(idx)
        with self._cond:
            # Saved below, in this thread: not also by the saver (nor while it writes).
            self._dirty.pop(collection.id, None)
            while self._busy:
                self._cond.wait(timeout=0.05)
        self._save(idx)
        return idx

    # -- snapshots, in the background ---------------------------------------------------

    def _request_save(self, idx: CollectionIndex) -> None:
        with self._cond:
            if self._stopping:
                return
            self._dirty[idx.meta.collection_id] = idx
            self._start_saver()

    def _due(self, now: float) -> tuple[list[CollectionIndex], float]:
        """The dirty indexes due for a save, and how long until the next one is."""
        due: list[CollectionIndex] = []
        wait = max(self.check_every_s, 1.0) if self.sessions is not None else 3600.0
        for cid, idx in list(self._dirty.items()):
            left = self._last_saved.get(cid, -1e18) + self.snapshot_every_s - now
            if left <= 0:
                due.append(idx)
                del self._dirty[cid]
            else:
                wait = min(wait, left)
        return due, wait

    def _start_saver(self) -> None:
        """Start the background thread (the caller holds ``_cond``)."""
        if self._saver is None:
            self._saver = threading.Thread(
                target=self._saver_loop, name="index-snapshots", daemon=True
            )
            self._saver.start()
        self._cond.notify_all()

    def _saver_loop(self) -> None:
        while True:
            with self._cond:
                due, wait = self._due(time.monotonic())
                while (
                    not due
                    and not self._terms_wanted
                    and not self._sentences_wanted
                    and not self._stopping
                    and not self._maintenance_due()
                ):
                    self._cond.wait(timeout=wait)
                    due, wait = self._due(time.monotonic())
                if self._stopping:
                    return
                wanted = list(self._terms_wanted.values())
                self._terms_wanted.clear()
                wanted_sentences = list(self._sentences_wanted.values())
                self._sentences_wanted.clear()
                self._busy = True
            try:
                for idx in wanted:
                    self._refresh_terms(idx)
                for idx in wanted_sentences:
                    self._refresh_sentences(idx)
                for idx in due:
                    self._train_if_due(idx)
                    self._save(idx)
                self._maintain()
            except Exception:  # the thread must outlive any one failure
                log.exception("index background work failed")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _save(self, idx: CollectionIndex) -> None:
        cid = idx.meta.collection_id
        try:
            terms = idx.terms
            if terms is not None and terms.wants_compaction():
                terms.compact()  # fewer segments on disk
            with idx.sync_lock:
                frozen = idx.frozen()
                terms = idx.terms
                frozen_terms = terms.freeze() if terms is not None else None
            meta = frozen.meta
            if meta.version < 0:
                return
            path = self.snapshot_path(cid)
            on_disk = _sidecar_meta(path)
            written: str | None = None
            if (
                not frozen.mapped  # built or trained here: only this process has it
                or on_disk is None
                or not _same_model(on_disk, meta)
                or on_disk.version < meta.version
            ):
                written = write_snapshot(path, frozen.whole(), meta).name
            # else another process of this host wrote this version (or a newer one) from
            # the same snapshot lineage: map its file, so the host keeps one copy of the
            # pages, instead of writing ours.
            del frozen  # the merged copy written (a whole index) is not kept
            if written is not None:
                release_freed_memory()
            self._map_snapshot(idx, path, trusted=written)
            if frozen_terms is not None:
                terms_file = postings.write_snapshot(
                    self.terms_path(cid), frozen_terms, version=meta.version, collection_id=cid
                )
                _remove_old_files(self.index_dir, f"collection-{cid}.terms", keep=terms_file.name)
            with self._lock:
                self._last_saved[cid] = time.monotonic()
                self._saved_version[cid] = meta.version
            self.stats.saves += 1
        except OSError as exc:  # a snapshot is an optimisation; serving goes on
            log.warning("could not write index snapshot: %s", exc)

    def _map_snapshot(self, idx: CollectionIndex, path: Path, *, trusted: str | None) -> None:
        """Serve ``idx`` from the snapshot ``path`` names, mapped, when it is at or behind
        the index's version (the changes since are applied to it again from the change
        log): the delta of a mapped index then holds the changes of one snapshot
        interval at most, and an owned index gives its memory back to the page cache,
        where the other processes mapping the same file share it. ``trusted``: the data
        file this thread just wrote (its checksum was computed while writing)."""
        cid = idx.meta.collection_id
        try:
            mapped = read_snapshot(path, verify=True, trusted=trusted)
        except (OSError, ValueError) as exc:
            log.warning("not mapping index snapshot %s: %s", path, exc)
            return
        mapped.nprobe = idx.nprobe
        with idx.sync_lock:
            if not _same_model(mapped.meta, idx.meta) or mapped.version > idx.version:
                return  # a newer one: this process's syncs have not got there yet
            if mapped.version < idx.version:
                if self.sessions is None:
                    return
                with self.sessions() as s:
                    window = changes.read_window(s, cid, mapped.version, idx.version)
                    if not window.complete:
                        return
                    self._apply(s, cid, idx.meta, mapped, window.ids)
            with idx.lock:
                trained_on = idx.trained_on
                idx.adopt(mapped)
                if idx.is_ivf:  # the count it was trained on decides when to train again
                    idx.trained_on = trained_on or idx.trained_on
        self.stats.remaps += 1

    # -- lexical postings, built in the background --------------------------------------

    def term_view(self, idx: CollectionIndex) -> TermView | None:
        """The collection's lexical postings as of now, or None when it has none (too small,
        or still being built: the database's full-text index answers meanwhile).

        A snapshot of them is loaded here, by the first search that wants them: mapping
        it takes a fraction of a second (0.3 s at 1M chunks) where the database's
        full-text search of a cold first query took 2.5 s at 300k on PostgreSQL. Building
        them from SQL is left to the background thread."""
        terms = idx.terms
        if terms is not None:
            return terms.view()
        if self.terms_min_chunks is None or idx.count() < self.terms_min_chunks:
            return None
        if self._load_terms_once(idx) and idx.terms is not None:
            return idx.terms.view()
        self._want_terms(idx)
        return None

    def _load_terms_once(self, idx: CollectionIndex) -> bool:
        """:meth:`load_terms` in the caller's thread, tried once per collection and
        process (a failed try leaves it to the background thread); searches arriving
        meanwhile wait for it."""
        if self.sessions is None:
            return False
        cid = idx.meta.collection_id
        with self._first_load_lock:
            if idx.terms is not None:
                return True
            if cid in self._terms_load_tried:
                return False
            self._terms_load_tried.add(cid)
            try:
                return self.load_terms(idx)
            except Exception:  # the database's full-text index answers instead
                log.exception("loading the lexical postings of collection %d failed", cid)
                return False

    def prepare_terms(self, idx: CollectionIndex) -> bool:
        """Build the lexical postings now, in the caller's thread, when the collection is
        large enough to get them (benchmarks, which time a warmed-up server); True when
        it has them."""
        if idx.terms is None and (
            self.terms_min_chunks is not None and idx.count() >= self.terms_min_chunks
        ):
            self.build_terms(idx)
        return idx.terms is not None

    def _want_terms(self, idx: CollectionIndex) -> None:
        self._want(self._terms_wanted, idx)

    def _want(self, queue: dict[int, CollectionIndex], idx: CollectionIndex) -> None:
        """Queue ``idx`` for the background thread (postings or sentence file)."""
        if self.sessions is None:
            return
        with self._cond:
            if self._stopping or idx.meta.collection_id in queue:
                return
            queue[idx.meta.collection_id] = idx
            self._start_saver()

    def _refresh_terms(self, idx: CollectionIndex) -> None:
        try:
            terms = idx.terms
            if terms is None and self.load_terms(idx):
                return
            if terms is None or terms.wants_rebuild():
                self.build_terms(idx)
            elif terms.wants_compaction():
                terms.compact()
        except Exception:  # the database's full-text index keeps answering
            log.exception("lexical postings of collection %d failed", idx.meta.collection_id)

    def load_terms(self, idx: CollectionIndex) -> bool:
        """Load the collection's postings snapshot (mapped: the processes of a host share
        its pages), bring it to the index's version from the change log, and swap it in;
        False when there is none or it cannot be used (then they are built from SQL)."""
        assert self.sessions is not None
        cid = idx.meta.collection_id
        path = self.terms_path(cid)
        if not path.exists():
            return False
        try:
            loaded, version, owner = postings.read_snapshot(path)
        except (OSError, ValueError) as exc:  # a lost cache: built again from SQL
            log.warning("discarding postings snapshot %s: %s", path, exc)
            return False
        if owner != cid:
            return False
        with self.sessions() as s, idx.sync_lock:
            if idx.version < 0:
                return False
            if idx.version > version:
                window = changes.read_window(s, cid, version, idx.version)
                if not window.complete:
                    return False
                loaded.apply(window.ids, _fetch_terms(s, cid, window.ids))
            # A snapshot newer than the index is brought there by the index's next syncs,
            # which apply every id changed since the index's version to it too.
            idx.terms = loaded
        self.stats.term_loads += 1
        if loaded.wants_compaction():  # segments the change log added, or a snapshot's
            self._want_terms(idx)
        return True

    def build_terms(self, idx: CollectionIndex) -> bool:
        """Build the collection's lexical postings from SQL (needs ``sessions``), replay
        what the index applied meanwhile from the change log, and swap them in; True when
        it did. Runs in the background thread (or a benchmark's or test's own)."""
        assert self.sessions is not None
        cid = idx.meta.collection_id
        started = time.monotonic()
        with self.sessions() as s:
            # The rows are read after this version, so they cover it; what the index
            # applies after it is replayed below (idempotent, like the vectors' sync).
            start = self._probe(s, cid)
            if start is None:
                return False
            rows = s.execute(
                select(Chunk.id, Chunk.search_terms)
                .where(Chunk.collection_id == cid, Chunk.disabled.is_(False))
                .execution_options(yield_per=_FETCH_BATCH * 5)
            )
            built = TermIndex.build((r[0], r[1]) for r in rows)
            with idx.sync_lock:
                if idx.version > start.version:
                    window = changes.read_window(s, cid, start.version, idx.version)
                    if not window.complete:
                        log.warning("lexical postings of collection %d: log pruned; later", cid)
                        return False
                    built.apply(window.ids, _fetch_terms(s, cid, window.ids))
                idx.terms = built
        self.stats.term_builds += 1
        self._request_save(idx)  # on disk with the next snapshot: restarts load them
        log.info(
            "collection %d: lexical postings of %d chunks (%.0f MB) built in %.1f s",
            cid,
            built.live,
            built.nbytes / 2**20,
            time.monotonic() - started,
        )
        return True

    # -- sentence vectors, in a mapped file ----------------------------------------------

    def stored_sentences(
        self,
        session: Session,
        indexes: Iterable[CollectionIndex],
        chunk_ids: Iterable[int],
        *,
        model: str,
        dim: int,
    ) -> dict[int, npt.NDArray[np.float32]]:
        """The stored sentence vectors of ``chunk_ids`` (chunks of these indexes'
        collections) by ``model``: from the collections' sentence files where they hold
        them, from SQL for the rest; chunks without any are left out."""
        rest = list(chunk_ids)
        out: dict[int, npt.NDArray[np.float32]] = {}
        for idx in indexes:
            cache = self.sentence_cache(idx)
            if cache is not None and rest:
                got, rest = cache.answer(rest, model=model, dim=dim)
                out.update(got)
        if rest:
            out.update(sentence_file.stored_sentences(session, rest, model=model, dim=dim))
        return out

    def sentence_cache(self, idx: CollectionIndex) -> SentenceCache | None:
        """The collection's sentence file, or None (too small, or not written yet: SQL
        answers meanwhile, and the background thread writes it). Like the postings, an
        existing file is mapped by the first search that wants it."""
        cache = idx.sentences
        if cache is not None:
            return cache
        if self.sentences_min_chunks is None or idx.count() < self.sentences_min_chunks:
            return None
        if self.sessions is None:
            return None
        cid = idx.meta.collection_id
        with self._first_load_lock:
            if idx.sentences is None and cid not in self._sentences_load_tried:
                self._sentences_load_tried.add(cid)
                try:
                    self.load_sentences(idx)
                except Exception:  # SQL answers instead
                    log.exception("loading the sentence file of collection %d failed", cid)
        cache = idx.sentences
        if cache is None or not cache.verified:
            self._want_sentences(idx)  # checked, or written, in the background
        return cache

    def prepare_sentences(self, idx: CollectionIndex) -> bool:
        """Write the sentence file now, in the caller's thread, when the collection is
        large enough to get one (benchmarks); True when it has one."""
        if idx.sentences is None and (
            self.sentences_min_chunks is not None and idx.count() >= self.sentences_min_chunks
        ):
            self.build_sentences(idx)
        return idx.sentences is not None

    def _want_sentences(self, idx: CollectionIndex) -> None:
        self._want(self._sentences_wanted, idx)

    def _refresh_sentences(self, idx: CollectionIndex) -> None:
        """In the background thread: check a loaded file's sha256, and write the file
        when there is none, it failed the check, or too many of its chunks changed."""
        try:
            cache = idx.sentences
            if cache is not None and not cache.verified:
                if sentence_file.file_is_intact(cache.file):
                    cache.verified = True
                else:
                    log.warning("discarding sentence file %s: checksum mismatch", cache.file.path)
                    with idx.sync_lock:
                        if idx.sentences is cache:
                            idx.sentences = None
                    cache = None
            if cache is None or _sentences_outdated(cache):
                self.build_sentences(idx)
        except Exception:  # SQL keeps answering
            log.exception("sentence file of collection %d failed", idx.meta.collection_id)

    def load_sentences(self, idx: CollectionIndex) -> bool:
        """Map the collection's sentence file and mark the chunks changed since it was
        written; False when there is none or it cannot be used (then it is written
        again). Its sha256 is checked afterwards, by the background thread."""
        assert self.sessions is not None
        cid = idx.meta.collection_id
        path = self.sentences_path(cid)
        if not path.exists():
            return False
        try:
            loaded = sentence_file.read_file(path)
        except (OSError, ValueError) as exc:  # a lost cache: written again from SQL
            log.warning("discarding sentence file %s: %s", path, exc)
            return False
        if (loaded.collection_id, loaded.model, loaded.dim) != (
            cid,
            idx.meta.model,
            idx.meta.dim,
        ):
            return False
        with self.sessions() as s, idx.sync_lock:
            if idx.version < 0:
                return False
            stale: set[int] = set()
            if idx.version > loaded.version:
                window = changes.read_window(s, cid, loaded.version, idx.version)
                if not window.complete:
                    return False
                stale = set(window.ids)
            # A file newer than the index is brought there by the index's next syncs,
            # which mark every id changed since the index's version stale too.
            idx.sentences = SentenceCache(loaded, stale)
        self.stats.sentence_loads += 1
        return True

    def build_sentences(self, idx: CollectionIndex) -> bool:
        """Write the collection's sentence file (needs ``sessions``): the chunks an
        existing file holds unchanged are copied from it, the others read from SQL.
        Then mark what the index applied meanwhile and swap it in; True when it did."""
        assert self.sessions is not None
        cid = idx.meta.collection_id
        started = time.monotonic()
        with self.sessions() as s:
            # Read after this version, so the rows cover it; what the index applies after
            # it is marked stale below.
            start = self._probe(s, cid)
            if start is None or (start.model, start.dim) != (idx.meta.model, idx.meta.dim):
                return False
            old_cache = idx.sentences
            old = old_cache.file if old_cache is not None else None
            changed: frozenset[int] = frozenset()
            if old is not None:
                window = changes.read_window(s, cid, old.version, start.version)
                if old.version > start.version or not window.complete:
                    old = None
                changed = window.ids
            ids = np.fromiter(
                s.scalars(
                    select(Chunk.id)
                    .where(Chunk.collection_id == cid, Chunk.disabled.is_(False))
                    .order_by(Chunk.id)
                ),
                dtype=np.int64,
            )
            rows = sentence_file.rows_for(
                s, ids, model=start.model, dim=start.dim, old=old, changed=changed
            )
            written = sentence_file.write_file(
                self.sentences_path(cid),
                rows,
                collection_id=cid,
                version=start.version,
                model=start.model,
                dim=start.dim,
            )
            with idx.sync_lock:
                if (idx.meta.model, idx.meta.dim) != (start.model, start.dim):
                    return False  # the collection switched models meanwhile
                stale: set[int] = set()
                if idx.version > start.version:
                    window = changes.read_window(s, cid, start.version, idx.version)
                    if not window.complete:
                        log.warning("sentence file of collection %d: log pruned; later", cid)
                        return False
                    stale = set(window.ids)
                idx.sentences = SentenceCache(written, stale, verified=True)
        _remove_old_files(self.index_dir, f"collection-{cid}.sentences", keep=written.path.name)
        self.stats.sentence_builds += 1
        log.info(
            "collection %d: sentence file of %d chunks (%.0f MB%s) written in %.1f s",
            cid,
            len(written),
            written.path.stat().st_size / 2**20,
            "" if old is None else ", the unchanged ones copied from the previous file",
            time.monotonic() - started,
        )
        return True

    # -- approximate index, trained in the background ----------------------------------

    def _train_if_due(self, idx: CollectionIndex) -> bool:
        """Replace an index that has outgrown its type by a freshly trained IVF index
        (needs ``sessions``: the vectors are read from SQL); True when it did."""
        if self.sessions is None or not self.ann.wants_ivf(idx.count(), idx.trained_on):
            return False
        try:
            self._train(idx)
        except Exception:  # the exact index keeps serving; the next save tries again
            log.exception("training the IVF index of collection %d failed", idx.meta.collection_id)
            return False
        return True

    def _train(self, idx: CollectionIndex) -> None:
        assert self.sessions is not None
        cid = idx.meta.collection_id
        started = time.monotonic()
        with self.sessions() as s:
            # The ids are read after this version, so they cover it; what the live index
            # applies after it is replayed from the change log below.
            start = self._probe(s, cid)
            if start is None or (start.model, start.dim) != (idx.meta.model, idx.meta.dim):
                return
            ids = np.fromiter(
                s.scalars(
                    select(Chunk.id).where(Chunk.collection_id == cid, Chunk.disabled.is_(False))
                ),
                dtype=np.int64,
            )
            if len(ids) < max(self.ann.min_vectors, 1):
                return
            nlist = self.ann.nlist(len(ids))
            rng = np.random.default_rng(cid)
            sample = rng.choice(ids, min(len(ids), nlist * self.ann.train_per_list), replace=False)
            fresh = _new_ivf(idx.meta.dim, nlist, self.ann.encoding)
            fresh.train(_fetch_vectors(s, cid, sample.tolist(), idx.meta.dim)[1])
            # Deletes and id lookups (reconstruct) by chunk id need a direct map.
            fresh.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
            for at in range(0, len(ids), 20 * _FETCH_BATCH):
                got, vectors = _fetch_vectors(
                    s, cid, ids[at : at + 20 * _FETCH_BATCH].tolist(), idx.meta.dim
                )
                if len(got):
                    fresh.add_with_ids(np.ascontiguousarray(vectors, np.float32), got)
            trained = CollectionIndex(_meta_for_row(cid, start, start.version), fresh)
            trained.nprobe = self.ann.probes(nlist)
            with idx.sync_lock:
                if idx.meta.model != start.model or idx.meta.dim != start.dim:
                    return  # the collection switched models meanwhile
                if idx.version > start.version:
                    window = changes.read_window(s, cid, start.version, idx.version)
                    if not window.complete:
                        log.warning("IVF index of collection %d: change log pruned; later", cid)
                        return
                    live = _meta_for_row(cid, start, idx.version)
                    self._apply(s, cid, live, trained, window.ids)
                with idx.lock:
                    idx.adopt(trained)
                    idx.trained_on = len(ids)
        self.stats.trainings += 1
        log.info(
            "collection %d: IVF index (%d lists, %s) trained on %d vectors in %.1f s",
            cid,
            nlist,
            self.ann.encoding,
            len(ids),
            time.monotonic() - started,
        )

    def _maintenance_due(self) -> bool:
        if self.sessions is None:
            return False
        now = time.monotonic()
        return (
            now - self._last_check >= self.check_every_s
            or now - self._last_prune >= self.prune_every_s
        )

    def _maintain(self) -> None:
        if self.sessions is None:
            return
        now = time.monotonic()
        if now - self._last_check >= self.check_every_s:
            self._last_check = now
            with self._lock:
                cids = list(self._indexes)
            for cid in cids:
                with self.sessions() as s:
                    self.check(s, cid)
        if now - self._last_prune >= self.prune_every_s:
            self._last_prune = now
            self.prune()

    def prune(self) -> int:
        """Prune the change log (needs ``sessions``); never past a snapshot this process
        wrote, so its restart catches up incrementally."""
        if self.sessions is None:
            return 0
        with self._lock:
            floors = dict(self._saved_version)
            # ... nor past a sentence file, which a restart catches up from the log too.
            for cid, idx in self._indexes.items():
                cache = idx.sentences
                if cache is not None:
                    floors[cid] = min(floors.get(cid, cache.file.version), cache.file.version)
        with self.sessions() as s, s.begin():
            return changes.prune(s, keep_versions=self.keep_versions, floors=floors)

    def flush(self, timeout: float = 60.0) -> None:
        """Write every pending snapshot now, in the caller's thread (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._busy and time.monotonic() < deadline:
                self._cond.wait(timeout=0.05)
            pending = list(self._dirty.values())
            self._dirty.clear()
        for idx in pending:
            self._save(idx)

    def save_all(self) -> None:
        """Snapshot every index whose version is not on disk yet (in the caller's thread)."""
        self.flush()
        with self._lock:
            indexes = [
                idx
                for cid, idx in self._indexes.items()
                if idx.version >= 0 and self._saved_version.get(cid) != idx.version
            ]
        for idx in indexes:
            self._save(idx)

    def close(self) -> None:
        """Stop the background thread, then save what is not on disk yet."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            saver = self._saver
        if saver is not None:
            saver.join(timeout=120)
        with self._cond:
            self._stopping = False
            self._saver = None
        self.save_all()
