"""A collection's stored sentence vectors in one mapped file, beside its vector index.

Why: the search's second stage (app/search/rescore.py) scores each of its ~60 candidates
by the candidate's sentence closest to the question, from the vectors ingest stored in
``chunk_sentences`` (about 5 KB a chunk at 512 dimensions). Read from SQL that is one
more statement and ~300 KB per search: under load the largest transfer from PostgreSQL,
and at 1M chunks rows mostly outside the database's cache (27 ms of a 63 ms search on
PostgreSQL). The file holds the same float16 bytes, so the scores are the same.

It is a cache, like the index beside it. The index manager's background thread builds it
from SQL for collections from a size on, and builds it again, copying the unchanged
chunks from the old file and reading only the changed ones, once enough chunks changed.
Until then the chunk ids changed since the version the file covers (the ``stale`` set,
fed by the index's change-log syncs) are read from SQL per search, as are chunks of
other collections or models.

Layout of the data file: the vectors (float16, ``total`` rows of ``dim``), then the
chunk ids (int64, ascending, ``n``), then the offsets (int64, ``n + 1``): chunk
``ids[i]`` owns rows ``offsets[i]:offsets[i+1]`` (none when it has no sentences). The
sidecar JSON names the file, the version, model and dimension it covers, and the sha256
of the ids and offsets (checked at load: they decide which bytes are read) and of the
whole file (checked by the background thread after a load; gigabytes at 1M chunks are no
work for a search to wait on).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from app.db import ids_param
from app.documents.models import ChunkSentences
from app.vectors.files import HASH_BLOCK, file_sha256, fsync_dir, publish_json

FORMAT = 1
_FETCH_BATCH = 2000
_F16 = np.dtype("<f2")
_I64 = np.dtype("<i8")
_PAGE = mmap.PAGESIZE
# Read-ahead hints, where the platform has them.
_WILLNEED: int | None = getattr(mmap, "MADV_WILLNEED", None)
_RANDOM: int | None = getattr(mmap, "MADV_RANDOM", None)

Vectors = npt.NDArray[np.float32]


def stored_sentences(
    session: Session, chunk_ids: Sequence[int], *, model: str, dim: int
) -> dict[int, Vectors]:
    """The sentence vectors stored at ingest for these chunks by ``model``, read from
    SQL, one row per sentence of the chunk's plain passage (ingest/sentences.py); chunks
    without any are left out."""
    out: dict[int, Vectors] = {}
    for start in range(0, len(chunk_ids), _FETCH_BATCH):
        for cid, blob in _blobs(session, chunk_ids[start : start + _FETCH_BATCH], model):
            vectors = _from_blob(blob, dim)
            if vectors is not None:
                out[cid] = vectors.astype(np.float32)
    return out


def _blobs(session: Session, chunk_ids: Sequence[int], model: str) -> list[Any]:
    if not chunk_ids:
        return []
    postgres = session.get_bind().dialect.name == "postgresql"
    return list(session.execute(_BLOBS[postgres], {"ids": list(chunk_ids), "model": model}).all())


def _blobs_statement(*, postgres: bool) -> Select[int, bytes]:
    # Built once (per dialect), the ids and the model bound at run time: the statement's
    # building cost more CPU than the read, on every search.
    return select(ChunkSentences.chunk_id, ChunkSentences.vectors).where(
        ids_param(ChunkSentences.chunk_id, postgres=postgres),
        ChunkSentences.model == bindparam("model"),
    )


_BLOBS = {postgres: _blobs_statement(postgres=postgres) for postgres in (False, True)}


def _from_blob(blob: bytes, dim: int) -> npt.NDArray[np.float16] | None:
    vectors = np.frombuffer(blob, dtype=_F16)
    if not vectors.size or vectors.size % dim:  # another shape: ignore, never guess
        return None
    return vectors.reshape(-1, dim)


@dataclass(frozen=True)
class SentenceFile:
    """One published file, mapped read-only (its pages are shared by every process of
    the host that maps it)."""

    path: Path
    collection_id: int
    version: int
    model: str
    dim: int
    ids: npt.NDArray[np.int64]
    offsets: npt.NDArray[np.int64]
    vectors: npt.NDArray[np.float16]
    sha256: str
    # The mapping behind the arrays, for read-ahead hints (None: no hints).
    mapping: mmap.mmap | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, chunk_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Each id's row in ``ids``, or -1 when the file does not hold it."""
        if not len(self.ids):
            return np.full(len(chunk_ids), -1, np.int64)
        pos = np.searchsorted(self.ids, chunk_ids)
        pos[pos >= len(self.ids)] = 0
        return np.where(self.ids[pos] == chunk_ids, pos, -1).astype(np.int64)

    def rows(self, pos: int) -> npt.NDArray[np.float16]:
        return self.vectors[int(self.offsets[pos]) : int(self.offsets[pos + 1])]

    def prefetch(self, spans: Iterable[tuple[int, int]]) -> None:
        """Ask the kernel to read these row spans (``[start, end)`` in rows) ahead, all at
        once. A search reads ~60 chunks scattered over a file of gigabytes at 1M chunks;
        where they are not in the page cache, faulting them in one after another cost
        ~18 ms per 60 at 100k (each fault also read 128 KB around it), the hint ~1.5 ms.
        Where they are cached it is a cheap check."""
        if self.mapping is None or _WILLNEED is None:
            return
        row = self.dim * _F16.itemsize
        for start, end in spans:
            if end > start:
                first = start * row - start * row % _PAGE
                self.mapping.madvise(_WILLNEED, first, end * row - first)


@dataclass
class SentenceCache:
    """A file and the chunk ids changed since the version it covers.

    ``stale`` only grows (by the index's syncs, under its ``sync_lock``) until a new
    cache replaces this one; searches read it without a lock: an id is added before the
    index applies the change, so a search sees it stale no later than it sees the chunk's
    new vector."""

    file: SentenceFile
    stale: set[int] = field(default_factory=set)
    # True once the whole file's sha256 was checked (a freshly written file is).
    verified: bool = False

    def answer(
        self, chunk_ids: Sequence[int], *, model: str, dim: int
    ) -> tuple[dict[int, Vectors], list[int]]:
        """The vectors of those ``chunk_ids`` the file answers for (a chunk it holds with
        no sentences is answered, and left out), and the ids it cannot answer for."""
        f = self.file
        if (f.model, f.dim) != (model, dim) or not chunk_ids:
            return {}, list(chunk_ids)
        wanted = np.asarray(chunk_ids, dtype=np.int64)
        pos = f.positions(wanted)
        held = pos[pos >= 0]
        f.prefetch(zip(f.offsets[held].tolist(), f.offsets[held + 1].tolist(), strict=True))
        out: dict[int, Vectors] = {}
        rest: list[int] = []
        stale = self.stale
        for cid, p in zip(wanted.tolist(), pos.tolist(), strict=True):
            if p < 0 or cid in stale:
                rest.append(cid)
                continue
            rows = f.rows(p)
            if len(rows):
                out[cid] = rows.astype(np.float32)
        return out, rest


def write_file(
    sidecar: Path,
    rows: Iterable[tuple[int, npt.NDArray[np.float16] | None]],
    *,
    collection_id: int,
    version: int,
    model: str,
    dim: int,
) -> SentenceFile:
    """Write ``rows`` (chunk id ascending, its vectors or None) to a new data file beside
    ``sidecar`` (temporary name, fsync, rename), publish the sidecar, and map the file."""
    folder = sidecar.parent
    folder.mkdir(parents=True, exist_ok=True)
    base = sidecar.name.removesuffix(".json")
    data = folder / f"{base}-v{version}-{secrets.token_hex(4)}.bin"
    tmp = folder / f".{data.name}.{os.getpid()}.tmp"
    whole = hashlib.sha256()
    ids: list[int] = []
    counts: list[int] = []
    try:
        with open(tmp, "wb") as f:
            pending: list[bytes] = []
            pending_size = 0
            last = -1
            for cid, vectors in rows:
                if cid <= last:
                    raise ValueError("sentence rows must come in ascending chunk id order")
                last = cid
                ids.append(cid)
                n = 0 if vectors is None else len(vectors)
                counts.append(n)
                if n:
                    blob = np.ascontiguousarray(vectors, dtype=_F16).tobytes()
                    pending.append(blob)
                    pending_size += len(blob)
                    if pending_size >= HASH_BLOCK:
                        _put(f, whole, b"".join(pending))
                        pending, pending_size = [], 0
            _put(f, whole, b"".join(pending))
            id_arr = np.asarray(ids, dtype=_I64)
            offsets = np.zeros(len(ids) + 1, dtype=_I64)
            np.cumsum(np.asarray(counts, dtype=_I64), out=offsets[1:])
            header = hashlib.sha256()
            for arr in (id_arr, offsets):
                blob = arr.tobytes()
                header.update(blob)
                _put(f, whole, blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    publish_json(
        sidecar,
        {
            "format": FORMAT,
            "collection_id": collection_id,
            "version": version,
            "model": model,
            "dim": dim,
            "file": data.name,
            "n": len(ids),
            "total": int(offsets[-1]),
            "size": data.stat().st_size,
            "index_sha256": header.hexdigest(),
            "sha256": whole.hexdigest(),
        },
    )
    fsync_dir(folder)
    return read_file(sidecar)


def _put(f: Any, digest: Any, blob: bytes) -> None:
    if blob:
        f.write(blob)
        digest.update(blob)


def read_file(sidecar: Path) -> SentenceFile:
    """The file a sidecar names, mapped; ValueError when it does not match the sidecar
    (its ids and offsets are checked whole, the vectors by size), OSError when missing."""
    side = json.loads(sidecar.read_text())
    try:
        if side["format"] != FORMAT:
            raise ValueError(f"format {side['format']}")
        data = sidecar.parent / str(side["file"])
        n, total, dim = int(side["n"]), int(side["total"]), int(side["dim"])
        size = int(side["size"])
        collection_id, version = int(side["collection_id"]), int(side["version"])
        model, index_digest, digest = (
            str(side["model"]),
            str(side["index_sha256"]),
            str(side["sha256"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"sentence file {sidecar} has an unreadable sidecar: {exc}") from exc
    vector_bytes = total * dim * _F16.itemsize
    if dim <= 0 or n < 0 or total < 0 or size != vector_bytes + (2 * n + 1) * _I64.itemsize:
        raise ValueError(f"sentence file {sidecar} has an inconsistent sidecar")
    if data.stat().st_size != size:
        raise ValueError(f"sentence file {data} is truncated or overwritten (size)")
    with open(data, "rb") as fh:
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    if _RANDOM is not None and vector_bytes >= _PAGE:
        # Searches read scattered rows: no 128 KB read-around per page fault. The ids and
        # offsets after the vectors keep the default (they are read whole).
        mapped.madvise(_RANDOM, 0, vector_bytes - vector_bytes % _PAGE)
    ids = np.frombuffer(mapped, dtype=_I64, count=n, offset=vector_bytes)
    offsets = np.frombuffer(mapped, dtype=_I64, count=n + 1, offset=vector_bytes + 8 * n)
    header = hashlib.sha256(ids.tobytes())
    header.update(offsets.tobytes())
    if header.hexdigest() != index_digest:
        raise ValueError(f"sentence file {data} is corrupt (checksum of its ids)")
    if n and (np.any(np.diff(ids) <= 0) or np.any(np.diff(offsets) < 0)):
        raise ValueError(f"sentence file {data} is corrupt (order)")
    if offsets[0] != 0 or offsets[-1] != total:
        raise ValueError(f"sentence file {data} is corrupt (offsets)")
    vectors = np.frombuffer(mapped, dtype=_F16, count=total * dim).reshape(total, dim)
    return SentenceFile(
        path=data,
        collection_id=collection_id,
        version=version,
        model=model,
        dim=dim,
        ids=ids,
        offsets=offsets,
        vectors=vectors,
        sha256=digest,
        mapping=mapped,
    )


def file_is_intact(f: SentenceFile) -> bool:
    """Whether the whole data file still has the sha256 it was written with."""
    try:
        return file_sha256(f.path)[0] == f.sha256
    except OSError:
        return False


def rows_for(
    session: Session,
    chunk_ids: npt.NDArray[np.int64],
    *,
    model: str,
    dim: int,
    old: SentenceFile | None,
    changed: frozenset[int] | set[int],
) -> Iterator[tuple[int, npt.NDArray[np.float16] | None]]:
    """The rows of a new file for ``chunk_ids`` (ascending): copied from ``old`` where
    it holds a chunk that is not in ``changed``, read from SQL for the rest."""
    usable = old is not None and (old.model, old.dim) == (model, dim)
    for start in range(0, len(chunk_ids), _FETCH_BATCH):
        batch = chunk_ids[start : start + _FETCH_BATCH]
        pos = (
            old.positions(batch)
            if usable and old is not None
            else np.full(len(batch), -1, np.int64)
        )
        held = pos[pos >= 0]
        if old is not None and len(held):  # ascending: one span, read ahead whole
            old.prefetch([(int(old.offsets[held[0]]), int(old.offsets[held[-1] + 1]))])
        need = [
            int(c)
            for c, p in zip(batch.tolist(), pos.tolist(), strict=True)
            if p < 0 or c in changed
        ]
        read = {cid: _from_blob(blob, dim) for cid, blob in _blobs(session, need, model)}
        wanted = set(need)
        for cid, p in zip(batch.tolist(), pos.tolist(), strict=True):
            if cid in wanted:
                yield cid, read.get(cid)
            else:
                assert old is not None
                yield cid, old.rows(p)
