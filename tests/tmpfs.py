"""Real small filesystems for tests: a tmpfs that fills up, or turns read-only.

Mounting needs root (the tests and CI run as root); a test that needs one is skipped
otherwise, and also where the kernel refuses the mount (an unprivileged container).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@contextmanager
def tmpfs(path: Path, size: int) -> Iterator[Path]:
    """A tmpfs of ``size`` bytes mounted at ``path`` (created), unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        assert os.path.ismount(path), f"{path} is not a mount point after mount"
        st = os.statvfs(path)
        assert st.f_blocks * st.f_frsize <= size + 4096, "the tmpfs is not the size asked"
        yield path
    finally:
        # Lazily: a database file may still be open in a pool that closes later.
        subprocess.run(["umount", "--lazy", str(path)], check=False)


def remount(path: Path, mode: str) -> None:
    """``mode``: "ro" or "rw"."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def fill(path: Path) -> Path:
    """Write a file in ``path`` until the filesystem is full; returns it (delete to free)."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        block = b"\0" * 4096
        while True:
            os.write(fd, block)
    except OSError as exc:
        assert exc.errno == 28, exc  # ENOSPC
    finally:
        os.close(fd)
    assert os.statvfs(path).f_bavail == 0
    return filler


def used_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize
