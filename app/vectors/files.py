"""Snapshot files: checksums and durable, atomic publication (shared by the vector index
and the lexical postings)."""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

HASH_BLOCK = 1 << 20


def release_freed_memory() -> None:
    """Give the heap memory freed by a large temporary (the whole index a snapshot
    writes) back to the system. glibc keeps freed blocks of a few MB (an IVF list each)
    for reuse, so a process that wrote a 2 GB snapshot kept ~1.2 GB of private memory
    it no longer used, beside the mapped index the other processes share. A no-op where
    there is no glibc."""
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return
    trim.argtypes = [ctypes.c_size_t]
    trim(0)


def file_sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(HASH_BLOCK):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def check_data_file(data: Path, size: int, digest: str, *, verify: bool, what: str) -> None:
    """Raise ValueError unless ``data`` has the size (and, with ``verify``, the sha256)
    its sidecar recorded; OSError when it is missing."""
    if data.stat().st_size != size:
        raise ValueError(f"{what} {data} is truncated or overwritten (size)")
    if verify and file_sha256(data)[0] != digest:
        raise ValueError(f"{what} {data} is corrupt (checksum mismatch)")


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def publish_json(path: Path, content: dict[str, Any]) -> None:
    """Write ``content`` to ``path`` by a temporary file, fsync and rename: a reader sees
    the previous sidecar or this one, whole."""
    tmp = path.parent / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(content, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
