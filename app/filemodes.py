"""Owner-only modes for what the server stores: the data folder holds password and token
hashes, the signing key and every document, so it is 700 and the SQLite files are 600,
whatever the umask. An existing folder or file that others may read is tightened at start
(with a log line), unless it is not ours or is a shared folder such as /tmp.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def _tighten(path: Path, mode: int) -> None:
    st = path.stat()
    current = stat.S_IMODE(st.st_mode)
    if not current & 0o077:
        return
    if st.st_uid != os.getuid() or st.st_mode & stat.S_ISVTX:
        log.warning("%s can be read by other users (mode %03o); not ours to change", path, current)
        return
    os.chmod(path, mode)
    log.warning(
        "%s could be read by other users (mode %03o); changed it to %03o", path, current, mode
    )


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) with mode 700, or tighten an existing one."""
    if path.is_dir():
        _tighten(path, DIR_MODE)
        return
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)  # mkdir's mode is cut by the umask; this is not


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 600 if it is missing, or tighten an existing one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        _tighten(path, FILE_MODE)
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def private_sqlite(path: Path) -> None:
    """The database file 600 before SQLite opens it: SQLite gives its -wal and -shm files
    the database file's mode, so they are 600 too (existing ones are tightened)."""
    if not path.parent.exists():
        private_dir(path.parent)
    private_file(path)
    for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if extra.exists():
            _tighten(extra, FILE_MODE)
