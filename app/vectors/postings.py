"""A collection's lexical index in memory: BM25 over the chunks' stored terms.

Why not the database's full-text index alone: SQLite's ``bm25()`` and PostgreSQL's
``ts_rank`` score every chunk that matches any query term before the best k are kept, one
match at a time. A median query matches about a quarter of a collection, so at 100k chunks
the lexical leg cost ~40 ms of CPU per query, twice in hybrid search (the translated
query), and grew linearly from there. Here a term's postings are two numpy arrays (rows
and term counts), and scoring a query is a few vectorised passes over the postings of its
terms.

It is a cache, like the vector index beside which it lives (``CollectionIndex.terms``):
built from ``chunks.search_terms`` (the terms ``app.text.terms`` wrote, split on spaces as
the database's index splits them) in the background, kept in step by the same change-log
syncs, and rebuilt from SQL when in doubt. The database's index keeps serving small
collections, and any collection while this one is being built.

Ranking is FTS5's bm25 (k1 1.2, b 0.75, the same idf and its floor), over the
collection's own counts: on one collection the same scores as SQLite's leg; on PostgreSQL
it replaces ``ts_rank``, which knows no document frequencies.

Layout, append-only so that a search reads a consistent :class:`TermView` without a lock:

- rows: one per chunk added since the build (its id, its number of terms, whether alive);
  a chunk removed is only marked dead, and its row stays until the next build;
- segments: postings grouped by term. The build makes one, each sync adds a small one for
  the chunks it added, and :meth:`TermIndex.compact` merges them (in the background):
  the small ones into one when there are a few, all into one when they have grown;
- the vocabulary maps a term to its id, and only grows.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from app.vectors.files import check_data_file, file_sha256, fsync_dir, publish_json

# FTS5's bm25() constants (ext/fts5/fts5_aux.c): term saturation, length normalisation,
# and the idf given to a term in more than half of the rows.
K1 = 1.2
B = 0.75
IDF_FLOOR = 1e-6
# Terms counted per chunk saturate far below this; the counts are stored as uint16.
_MAX_TF = 65535
# Rows tokenised per step of a build (bounds the temporary arrays).
_BUILD_BATCH = 20000
# Merge every segment when those added since the first hold more than 1/_MERGE_SHARE of
# the postings; short of that, merge the added ones into one when there are more than
# _MAX_ADDED (cheap: they are small). Each segment costs a lookup per query term: ten
# small ones doubled the postings' share of a search.
_MERGE_SHARE = 8
_MAX_ADDED = 3
# Rebuild from SQL (renumbering rows) when dead rows outnumber the live ones.
_DEAD_SHARE = 1.0
# A lone CJK character (matched as a prefix): the index lists the terms it starts.
_CJK_START = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]")

I64 = npt.NDArray[np.int64]


class _Vocabulary(dict[str, int]):
    """Term -> id; a missing term gets the next id (``__missing__`` runs only for new
    terms, so mapping a list of known terms stays in C)."""

    def __missing__(self, term: str) -> int:
        tid = self[term] = len(self)
        return tid


@dataclass(frozen=True)
class Segment:
    """Postings grouped by term: ``terms`` sorted, the postings of ``terms[i]`` at
    ``rows[ptr[i]:ptr[i+1]]`` (one per row holding it) with their counts in ``tf``."""

    terms: I64
    ptr: I64
    rows: npt.NDArray[np.int32]
    tf: npt.NDArray[np.uint16]
    # True when ``terms`` is 0, 1, 2, ... (a build's segment holds every term of its
    # vocabulary): a term's place is its id, no search (a search per term and query
    # showed in profiles under load).
    dense: bool = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.terms)
        object.__setattr__(self, "dense", bool(n) and int(self.terms[-1]) == n - 1)

    def postings(self, term: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.uint16]] | None:
        if self.dense:
            if term >= len(self.terms):
                return None
            i = term
        else:
            i = int(np.searchsorted(self.terms, term))
            if i >= len(self.terms) or int(self.terms[i]) != term:
                return None
        lo, hi = int(self.ptr[i]), int(self.ptr[i + 1])
        return self.rows[lo:hi], self.tf[lo:hi]

    @property
    def size(self) -> int:
        return len(self.rows)

    @property
    def nbytes(self) -> int:
        return int(self.terms.nbytes + self.ptr.nbytes + self.rows.nbytes + self.tf.nbytes)


def _segment(term_ids: I64, rows: npt.NDArray[np.int32], tf: npt.NDArray[np.uint16]) -> Segment:
    order = np.argsort(term_ids, kind="stable")
    sorted_terms = term_ids[order]
    terms, starts = np.unique(sorted_terms, return_index=True)
    ptr = np.append(starts, len(sorted_terms)).astype(np.int64)
    return Segment(terms.astype(np.int64), ptr, rows[order], tf[order])


@dataclass(frozen=True)
class Postings:
    """One query term's matches: per segment, its rows and how often the term occurs in
    each (views into the segment: dead rows included, zeroed when scores are summed), and
    how many live rows hold the term."""

    parts: tuple[tuple[npt.NDArray[np.int32], npt.NDArray[np.uint16]], ...]
    count: int

    def __len__(self) -> int:
        return self.count


_NO_POSTINGS = Postings((), 0)


@dataclass(frozen=True)
class TermView:
    """What one search reads: segments and rows as of one published state."""

    segments: tuple[Segment, ...]
    n: int  # rows in use
    live: int
    total_terms: int  # terms of the live rows (for the average length)
    ids: I64
    lengths: npt.NDArray[np.int32]
    alive: npt.NDArray[np.bool_]
    row_of: npt.NDArray[np.int32]  # chunk id -> row, -1 when none
    vocabulary: dict[str, int]
    prefixes: dict[str, list[int]]

    def postings(self, term: str, prefix: bool = False) -> Postings:
        """The rows holding ``term``; ``prefix`` (a lone CJK character, as
        ``app.text.terms.match_terms`` asks): any term starting with it, its counts summed
        per row, as FTS5 counts a prefix query."""
        if prefix and len(term) == 1:
            tids = list(self.prefixes.get(term, ()))
        else:
            tid = self.vocabulary.get(term)
            tids = [] if tid is None else [tid]
        parts = [got for tid in tids for seg in self.segments if (got := seg.postings(tid))]
        if not parts:
            return _NO_POSTINGS
        if len(tids) > 1:
            rows = np.concatenate([r for r, _ in parts])
            tf = np.concatenate([f for _, f in parts]).astype(np.float32)
            keep = self.alive[rows]
            uniq, inverse = np.unique(rows[keep], return_inverse=True)
            summed = np.bincount(inverse, weights=tf[keep]).astype(np.uint16)
            return Postings(((uniq.astype(np.int32), summed),), len(uniq))
        if self.live == self.n:
            count = sum(len(r) for r, _ in parts)
        else:
            count = sum(int(np.count_nonzero(self.alive[r])) for r, _ in parts)
        return Postings(tuple(parts), count)

    def top(
        self, matches: Sequence[Postings], k: int, allowed: I64 | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` best (chunk id, bm25 score) over the rows matching any of
        ``matches``, best first (ties by chunk id); ``allowed``: only those chunk ids."""
        if k <= 0 or self.live == 0:
            return []
        avgdl = self.total_terms / self.live if self.live else 1.0
        scores = np.zeros(self.n, np.float32)
        norm_len = np.float32(K1 * B / max(avgdl, 1e-9))
        base = np.float32(K1 * (1 - B))
        for m in matches:
            if not len(m):
                continue
            idf = math.log((self.live - len(m) + 0.5) / (len(m) + 0.5))
            if idf <= 0:
                idf = IDF_FLOOR
            weight = np.float32(idf * (K1 + 1))
            # A row is in one segment only: no part adds to a row another part adds to.
            for rows, counts in m.parts:
                tf = counts.astype(np.float32)
                dl = self.lengths[rows].astype(np.float32)
                scores[rows] += weight * tf / (tf + base + norm_len * dl)
        if self.live != self.n:
            scores *= self.alive[: self.n]  # dead rows' postings counted for nothing
        if allowed is not None:
            scores *= self.row_mask(allowed)
        found = np.flatnonzero(scores)
        if not len(found):
            return []
        if len(found) > k:
            # Every candidate level with the k-th score stays, so that ties are broken by
            # chunk id as the database's query breaks them.
            kth = np.partition(scores[found], len(found) - k)[len(found) - k]
            found = found[scores[found] >= kth]
        order = np.lexsort((self.ids[found], -scores[found]))[:k]
        best = found[order]
        return list(zip(self.ids[best].tolist(), scores[best].astype(float).tolist(), strict=True))

    def row_mask(self, allowed: I64) -> npt.NDArray[np.float32]:
        inside = allowed[(allowed >= 0) & (allowed < len(self.row_of))]
        rows = self.row_of[inside]
        mask = np.zeros(self.n, np.float32)
        mask[rows[(rows >= 0) & (rows < self.n)]] = 1.0
        return mask


_A = TypeVar("_A", bound=np.generic)


def _grow(arr: npt.NDArray[_A], size: int, fill: object = 0) -> npt.NDArray[_A]:
    if size <= len(arr):
        return arr
    out = np.full(max(size, 2 * len(arr), 1024), fill, dtype=arr.dtype)
    out[: len(arr)] = arr
    return out


def split_terms(text: str | None) -> list[str]:
    return text.split() if text else []


class TermIndex:
    """One collection's postings; see the module's docstring.

    :meth:`apply`, :meth:`compact` and the build are serialised by the caller (the vector
    index's ``sync_lock`` or the background thread); searches read :meth:`view`."""

    def __init__(self) -> None:
        self._vocabulary = _Vocabulary()
        self._prefixes: dict[str, list[int]] = {}
        self._ids: I64 = np.zeros(0, np.int64)
        self._lengths: npt.NDArray[np.int32] = np.zeros(0, np.int32)
        self._alive: npt.NDArray[np.bool_] = np.zeros(0, np.bool_)
        self._row_of: npt.NDArray[np.int32] = np.zeros(0, np.int32)
        self._used = 0  # rows in use (some perhaps not yet in a published view)
        self._publish = threading.Lock()
        self._view = self._make_view((), 0, 0, 0)

    # -- reading -----------------------------------------------------------------------

    def view(self) -> TermView:
        return self._view

    @property
    def live(self) -> int:
        return self._view.live

    @property
    def dead(self) -> int:
        return self._view.n - self._view.live

    @property
    def nbytes(self) -> int:
        v = self._view
        arrays = v.ids.nbytes + v.lengths.nbytes + v.alive.nbytes + v.row_of.nbytes
        return int(sum(s.nbytes for s in v.segments) + arrays)

    def chunk_ids(self) -> set[int]:
        v = self._view
        return {int(i) for i in v.ids[: v.n][v.alive[: v.n]]}

    # -- changing ----------------------------------------------------------------------

    @classmethod
    def build(cls, rows: Iterable[tuple[int, str | None]]) -> TermIndex:
        """A new index of ``rows`` (chunk id, its stored terms)."""
        idx = cls()
        parts = [idx._add_rows(batch) for batch in _batches(rows, _BUILD_BATCH)]
        if parts:
            seg = _segment(
                np.concatenate([p[0] for p in parts]),
                np.concatenate([p[1] for p in parts]),
                np.concatenate([p[2] for p in parts]),
            )
            live = int(idx._alive[: idx._used].sum())
            total = int(idx._lengths[: idx._used][idx._alive[: idx._used]].sum())
            idx._view = idx._make_view((seg,), idx._used, live, total)
        return idx

    def apply(self, touched: Iterable[int], rows: Sequence[tuple[int, str | None]]) -> None:
        """Drop every ``touched`` chunk id this index holds, then add ``rows`` (chunk id,
        stored terms): the change-log step, idempotent like the vector index's."""
        v = self._view
        # A chunk added again without being named as touched replaces its row too.
        gone = np.unique(
            np.concatenate(
                [np.fromiter(touched, dtype=np.int64), np.fromiter((r[0] for r in rows), np.int64)]
            )
        )
        live, total = v.live, v.total_terms
        if len(gone):
            gone = gone[(gone >= 0) & (gone < len(self._row_of))]
            dead_rows = self._row_of[gone]
            dead_rows = dead_rows[dead_rows >= 0]
            dead_rows = dead_rows[self._alive[dead_rows]]
            # A search may see a row die before the new view is published: harmless, its
            # hit would be dropped when the chunk is read.
            self._alive[dead_rows] = False
            self._row_of[self._ids[dead_rows]] = -1
            live -= len(dead_rows)
            total -= int(self._lengths[dead_rows].sum())
        added: tuple[Segment, ...] = ()
        if rows:
            term_ids, row_ids, tf, terms = self._add_rows(rows)
            added = (_segment(term_ids, row_ids, tf),)
            live += len(rows)
            total += terms
        with self._publish:  # a merge may have published meanwhile: keep its segments
            segments = (*self._view.segments, *added)
            self._view = self._make_view(segments, self._used, live, total)

    def wants_compaction(self) -> bool:
        return self._merge_from() is not None

    def _merge_from(self) -> int | None:
        """The first segment a merge should take (0: all, 1: those added since the
        first), or None when none is due."""
        segs = self._view.segments
        if len(segs) <= 1:
            return None
        added = sum(s.size for s in segs[1:])
        if added * _MERGE_SHARE > max(segs[0].size, 1):
            return 0
        return 1 if len(segs) - 1 > _MAX_ADDED else None

    def wants_rebuild(self) -> bool:
        v = self._view
        return (v.n - v.live) > _DEAD_SHARE * max(v.live, 1000)

    def compact(self, *, whole: bool = False) -> None:
        """Merge segments, leaving out dead rows' postings: all of them into one when
        ``whole`` or when the added ones have grown, else the added ones into one when
        there are many (see :data:`_MERGE_SHARE`). Runs beside searches and syncs:
        segments added meanwhile are kept after the merged ones."""
        v = self._view
        start = 0 if whole else self._merge_from()
        if start is None or len(v.segments) - start <= 1:
            return
        merged_from = v.segments
        term_parts, row_parts, tf_parts = [], [], []
        for seg in merged_from[start:]:
            counts = np.diff(seg.ptr)
            term_parts.append(np.repeat(seg.terms, counts))
            row_parts.append(seg.rows)
            tf_parts.append(seg.tf)
        rows = np.concatenate(row_parts)
        keep = self._alive[rows]
        merged = _segment(
            np.concatenate(term_parts)[keep], rows[keep], np.concatenate(tf_parts)[keep]
        )
        with self._publish:
            now = self._view
            later = now.segments[len(merged_from) :]
            segments = (*merged_from[:start], merged, *later)
            self._view = self._make_view(segments, now.n, now.live, now.total_terms)

    def freeze(self) -> Frozen:
        """What a snapshot writes, as of the published view (the caller holds the lock
        that serialises :meth:`apply`): rows below ``n`` and segments never change, the
        alive flags do, so those are copied."""
        v = self._view
        return Frozen(
            segments=v.segments,
            n=v.n,
            live=v.live,
            total_terms=v.total_terms,
            ids=v.ids[: v.n],
            lengths=v.lengths[: v.n],
            alive=v.alive[: v.n].copy(),
            terms=list(self._vocabulary),
        )

    @classmethod
    def restore(cls, frozen: Frozen) -> TermIndex:
        """An index over ``frozen``'s arrays (which may map a snapshot: segments and
        rows are never written in place; the alive flags are copied)."""
        idx = cls()
        idx._vocabulary = _Vocabulary(zip(frozen.terms, range(len(frozen.terms)), strict=True))
        idx._note_prefixes(0)
        idx._ids, idx._lengths = frozen.ids, frozen.lengths
        idx._alive = np.array(frozen.alive, dtype=np.bool_)
        idx._used = frozen.n
        live_rows = np.flatnonzero(idx._alive).astype(np.int32)
        top = int(frozen.ids.max()) + 1 if frozen.n else 0
        idx._row_of = np.full(top, -1, np.int32)
        idx._row_of[frozen.ids[live_rows]] = live_rows
        idx._view = idx._make_view(frozen.segments, frozen.n, frozen.live, frozen.total_terms)
        return idx

    def _add_rows(
        self, rows: Sequence[tuple[int, str | None]]
    ) -> tuple[I64, npt.NDArray[np.int32], npt.NDArray[np.uint16], int]:
        """Append rows; returns their postings (term id, row, count), not yet in any
        segment, and how many terms they hold. Published views do not reach the new rows
        (they read rows below their ``n`` only), so nothing is published here."""
        first = self._used
        split = [split_terms(text) for _, text in rows]
        lengths = np.fromiter((len(s) for s in split), np.int32, count=len(split))
        ids = np.fromiter((cid for cid, _ in rows), np.int64, count=len(rows))
        n = first + len(rows)
        known = len(self._vocabulary)
        tokens = np.fromiter(
            map(self._vocabulary.__getitem__, chain.from_iterable(split)),
            np.int64,
            count=int(lengths.sum()),
        )
        self._note_prefixes(known)
        self._ids = _grow(self._ids, n)
        self._lengths = _grow(self._lengths, n)
        self._alive = _grow(self._alive, n, False)
        self._ids[first:n] = ids
        self._lengths[first:n] = lengths
        self._alive[first:n] = True
        top = int(ids.max()) + 1 if len(ids) else 0
        self._row_of = _grow(self._row_of, top, -1)
        self._row_of[ids] = np.arange(first, n, dtype=np.int32)
        self._used = n
        token_rows = np.repeat(np.arange(first, n, dtype=np.int64), lengths)
        uniq, counts = np.unique((token_rows << 32) | tokens, return_counts=True)
        return (
            (uniq & 0xFFFFFFFF).astype(np.int64),
            (uniq >> 32).astype(np.int32),
            np.minimum(counts, _MAX_TF).astype(np.uint16),
            int(lengths.sum()),
        )

    def _note_prefixes(self, known: int) -> None:
        fresh = len(self._vocabulary) - known
        if not fresh:
            return
        new = self._vocabulary if not known else islice(reversed(self._vocabulary), fresh)
        for term in new:
            if _CJK_START.match(term):
                self._prefixes.setdefault(term[0], []).append(self._vocabulary[term])

    def _make_view(self, segments: tuple[Segment, ...], n: int, live: int, total: int) -> TermView:
        return TermView(
            segments=segments,
            n=n,
            live=live,
            total_terms=total,
            ids=self._ids,
            lengths=self._lengths,
            alive=self._alive,
            row_of=self._row_of,
            vocabulary=self._vocabulary,
            prefixes=self._prefixes,
        )


@dataclass(frozen=True)
class Frozen:
    """A :class:`TermIndex`'s content, for a snapshot."""

    segments: tuple[Segment, ...]
    n: int
    live: int
    total_terms: int
    ids: I64
    lengths: npt.NDArray[np.int32]
    alive: npt.NDArray[np.bool_]
    terms: list[str]  # the vocabulary, in id order


# Snapshot: a data file of arrays (each at a 64-byte aligned offset) and the vocabulary
# (terms joined by newlines: a term never holds white space), named by a JSON sidecar
# with the version it covers, the layout, the size and the sha256.
_ALIGN = 64
SNAPSHOT_FORMAT = 1


def write_snapshot(path: Path, frozen: Frozen, *, version: int, collection_id: int) -> Path:
    """Write ``frozen`` to a new data file beside the sidecar ``path`` (temporary name,
    fsync, rename), then the sidecar; returns the data file."""
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    base = path.name.removesuffix(".json")
    data = folder / f"{base}-v{version}-{secrets.token_hex(4)}.bin"
    tmp = folder / f".{data.name}.{os.getpid()}.tmp"
    arrays: dict[str, npt.NDArray[np.generic]] = {
        "ids": frozen.ids,
        "lengths": frozen.lengths,
        "alive": frozen.alive,
    }
    for i, seg in enumerate(frozen.segments):
        arrays.update(
            {
                f"s{i}.terms": seg.terms,
                f"s{i}.ptr": seg.ptr,
                f"s{i}.rows": seg.rows,
                f"s{i}.tf": seg.tf,
            }
        )
    layout: dict[str, list[object]] = {}
    offset = 0
    try:
        with open(tmp, "wb") as f:

            def put(blob: bytes | memoryview) -> int:
                nonlocal offset
                pad = -offset % _ALIGN
                f.write(b"\0" * pad)
                f.write(blob)
                start = offset + pad
                offset = start + len(blob)
                return start

            for name, arr in arrays.items():
                contiguous = np.ascontiguousarray(arr)
                layout[name] = [
                    put(
                        contiguous.tobytes() if not contiguous.nbytes else contiguous.data.cast("B")
                    ),
                    contiguous.dtype.str,
                    len(arr),
                ]
            vocabulary = "\n".join(frozen.terms).encode()
            layout["vocabulary"] = [put(vocabulary), "bytes", len(vocabulary)]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    digest, size = file_sha256(data)
    publish_json(
        path,
        {
            "format": SNAPSHOT_FORMAT,
            "collection_id": collection_id,
            "version": version,
            "file": data.name,
            "size": size,
            "sha256": digest,
            "n": frozen.n,
            "live": frozen.live,
            "total_terms": frozen.total_terms,
            "segments": len(frozen.segments),
            "terms": len(frozen.terms),
            "layout": layout,
        },
    )
    fsync_dir(folder)
    return data


def read_snapshot(path: Path, *, verify: bool = True) -> tuple[TermIndex, int, int]:
    """The index a sidecar names, mapped from its data file, with the version and
    collection it covers; ValueError when anything does not match (OSError: missing)."""
    side = json.loads(path.read_text())
    try:
        if side["format"] != SNAPSHOT_FORMAT:
            raise ValueError(f"format {side['format']}")
        data = path.parent / str(side["file"])
        layout = side["layout"]
        size, digest = int(side["size"]), str(side["sha256"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"postings snapshot {path} has an unreadable sidecar: {exc}") from exc
    check_data_file(data, size, digest, verify=verify, what="postings snapshot")
    mapped = np.memmap(data, dtype=np.uint8, mode="r")

    def arr(name: str) -> npt.NDArray[Any]:
        offset, dtype, count = layout[name]
        return np.frombuffer(mapped, dtype=np.dtype(dtype), count=int(count), offset=int(offset))

    try:
        offset, _, length = layout["vocabulary"]
        blob = bytes(mapped[int(offset) : int(offset) + int(length)])
        terms = blob.decode().split("\n") if int(side["terms"]) else []
        segments = tuple(
            Segment(arr(f"s{i}.terms"), arr(f"s{i}.ptr"), arr(f"s{i}.rows"), arr(f"s{i}.tf"))
            for i in range(int(side["segments"]))
        )
        frozen = Frozen(
            segments=segments,
            n=int(side["n"]),
            live=int(side["live"]),
            total_terms=int(side["total_terms"]),
            ids=arr("ids"),
            lengths=arr("lengths"),
            alive=arr("alive"),
            terms=terms,
        )
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"postings snapshot {data} does not match its sidecar: {exc}") from exc
    if len(terms) != int(side["terms"]) or len(frozen.ids) != frozen.n:
        raise ValueError(f"postings snapshot {data} does not match its sidecar")
    return TermIndex.restore(frozen), int(side["version"]), int(side["collection_id"])


def _batches(
    rows: Iterable[tuple[int, str | None]], size: int
) -> Iterator[list[tuple[int, str | None]]]:
    batch: list[tuple[int, str | None]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
