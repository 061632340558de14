"""FAISS indexes derived from the vectors in SQL, one per collection.

SQL is the truth. Each serving process keeps its own copy in step by comparing the
collection's ``version`` with the version its index covers; when they differ it diffs
the chunk ids in SQL against the ids in the index and adds/removes the difference.
Snapshots on disk only make starting fast: a missing, stale or corrupt one is rebuilt
or brought up to date from SQL, never by re-embedding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.collections.models import Collection
from app.documents.models import Chunk

log = logging.getLogger(__name__)

_MAGIC = b"KBIDX1\n"
_FETCH_BATCH = 2000


@dataclass(frozen=True)
class IndexMeta:
    """What a snapshot covers; a snapshot whose model or dimension differs is discarded."""

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


class CollectionIndex:
    """Exact inner-product search over one collection's normalised vectors."""

    def __init__(self, meta: IndexMeta, index: faiss.Index | None = None) -> None:
        self.meta = meta
        # IndexIDMap2 keeps chunk ids (SQL primary keys) as FAISS ids and can list them.
        self.index: Any = (
            index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(meta.dim))
        )
        self.lock = threading.RLock()

    @property
    def version(self) -> int:
        return self.meta.version

    def count(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> set[int]:
        return set(faiss.vector_to_array(self.index.id_map).tolist())

    def add(self, ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32]) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, np.float32), ids)

    def remove(self, ids: Iterable[int]) -> None:
        arr = np.fromiter(ids, dtype=np.int64)
        if len(arr):
            self.index.remove_ids(faiss.IDSelectorBatch(arr))

    def search(
        self,
        query: npt.NDArray[np.float32],
        k: int,
        *,
        allowed: npt.NDArray[np.int64] | None = None,
    ) -> list[tuple[int, float]]:
        """Top-k (chunk id, cosine score) for one normalised query vector.

        ``allowed`` restricts the search to those chunk ids inside FAISS (an ID selector),
        so a filtered search still returns k results when k exist.
        """
        with self.lock:
            if self.count() == 0 or k <= 0 or (allowed is not None and len(allowed) == 0):
                return []
            params = None
            if allowed is not None:
                # The keyword form keeps the selector alive as long as the parameters.
                params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))  # type: ignore[call-arg]
            x = query.reshape(1, -1).astype(np.float32)
            scores, ids = self.index.search(x, k, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != -1]

    # Snapshot format: magic, header length, JSON header, FAISS bytes, sha256 of all before.
    def save(self, path: Path) -> None:
        """Write atomically: a temporary file in the same folder, then rename over."""
        with self.lock:
            blob = faiss.serialize_index(self.index).tobytes()
            header = json.dumps(self.meta.__dict__).encode()
        body = _MAGIC + struct.pack("<I", len(header)) + header + blob
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as f:
            f.write(body)
            f.write(hashlib.sha256(body).digest())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> CollectionIndex:
        """Read a snapshot; raises ValueError when it is corrupt."""
        data = path.read_bytes()
        body, digest = data[:-32], data[-32:]
        if not body.startswith(_MAGIC) or hashlib.sha256(body).digest() != digest:
            raise ValueError(f"index snapshot {path} is corrupt (checksum mismatch)")
        (hlen,) = struct.unpack("<I", body[len(_MAGIC) : len(_MAGIC) + 4])
        start = len(_MAGIC) + 4
        meta = IndexMeta(**json.loads(body[start : start + hlen]))
        blob = np.frombuffer(body[start + hlen :], dtype=np.uint8)
        index = faiss.deserialize_index(blob)
        return cls(meta, index)


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


class IndexManager:
    """Holds this process's indexes and keeps each in step with SQL."""

    def __init__(self, index_dir: Path, *, snapshot_every_s: float = 30.0) -> None:
        self.index_dir = index_dir
        self.snapshot_every_s = snapshot_every_s
        self._indexes: dict[int, CollectionIndex] = {}
        self._last_saved: dict[int, float] = {}
        self._lock = threading.Lock()

    def snapshot_path(self, collection_id: int) -> Path:
        return self.index_dir / f"collection-{collection_id}.kbidx"

    def get(self, session: Session, collection: Collection) -> CollectionIndex:
        """The collection's index, brought up to date with SQL."""
        with self._lock:
            idx = self._indexes.get(collection.id)
            if idx is None:
                idx = self._open(collection)
                self._indexes[collection.id] = idx
        self.sync(session, collection, idx)
        return idx

    def _open(self, collection: Collection) -> CollectionIndex:
        path = self.snapshot_path(collection.id)
        fresh = CollectionIndex(_meta_for(collection, version=-1))
        if not path.exists():
            return fresh
        try:
            idx = CollectionIndex.load(path)
        except Exception as exc:  # any unreadable snapshot is only a lost cache
            log.warning("discarding index snapshot %s: %s", path, exc)
            return fresh
        want = _meta_for(collection, idx.meta.version)
        if idx.meta != want:
            log.warning("discarding index snapshot %s: built for %s", path, idx.meta)
            return fresh
        return idx

    def sync(self, session: Session, collection: Collection, idx: CollectionIndex) -> bool:
        """Bring ``idx`` to the collection's current version; True if anything changed."""
        # Read the version before the ids: the ids then cover at least that version, and a
        # change committed in between only makes the next sync diff again (idempotent).
        row = session.execute(
            select(Collection.version, Collection.embedder, Collection.model, Collection.dim).where(
                Collection.id == collection.id
            )
        ).first()
        if row is None or row.version == idx.version:
            return False
        version = row.version
        with idx.lock:
            if version == idx.version:
                return False
            if (idx.meta.embedder, idx.meta.model, idx.meta.dim) != (
                row.embedder,
                row.model,
                row.dim,
            ):
                # The collection switched models: this index holds the old vectors.
                idx.index = CollectionIndex(_meta_for_row(collection.id, row, -1)).index
                idx.meta = _meta_for_row(collection.id, row, -1)
            sql_ids = set(
                session.scalars(select(Chunk.id).where(Chunk.collection_id == collection.id))
            )
            have = idx.ids()
            idx.remove(have - sql_ids)
            missing = sorted(sql_ids - have)
            for start in range(0, len(missing), _FETCH_BATCH):
                batch = missing[start : start + _FETCH_BATCH]
                rows = session.execute(
                    select(Chunk.id, Chunk.vector).where(Chunk.id.in_(batch))
                ).all()
                ids = np.array([r[0] for r in rows], dtype=np.int64)
                idx.add(ids, bytes_to_vectors((r[1] for r in rows), idx.meta.dim))
            idx.meta = _meta_for_row(collection.id, row, version)
        self._maybe_save(idx)
        return True

    def _maybe_save(self, idx: CollectionIndex, *, force: bool = False) -> None:
        cid = idx.meta.collection_id
        now = time.monotonic()
        if force or now - self._last_saved.get(cid, 0.0) >= self.snapshot_every_s:
            try:
                idx.save(self.snapshot_path(cid))
                self._last_saved[cid] = now
            except OSError as exc:  # a snapshot is an optimisation; serving goes on
                log.warning("could not write index snapshot: %s", exc)

    def rebuild(self, session: Session, collection: Collection) -> CollectionIndex:
        """Drop this process's copy and the snapshot, rebuild from SQL, save a snapshot."""
        idx = CollectionIndex(_meta_for(collection, version=-1))
        with self._lock:
            self._indexes[collection.id] = idx
        self.sync(session, collection, idx)
        self._maybe_save(idx, force=True)
        return idx

    def save_all(self) -> None:
        with self._lock:
            indexes = list(self._indexes.values())
        for idx in indexes:
            self._maybe_save(idx, force=True)
