#!/usr/bin/env python3
"""Fetch the web UI's vendored front-end assets (run by scripts/bootstrap.sh; stdlib only).

htmx comes from the npm registry as one pinned tarball: its sha512 integrity (the npm
`dist.integrity` of that version) is checked before anything is extracted, and only
`package/dist/htmx.min.js` is written, to `web/static/vendor/htmx.min.js` (gitignored).
When that file is already there with the expected sha256 nothing is downloaded and
nothing is printed. No node or npm is needed.

To move to another htmx 2.0.x: `npm view htmx.org@2 version`, then
`npm view htmx.org@2.0.X dist.integrity`, and set HTMX_VERSION, HTMX_INTEGRITY and
HTMX_MIN_SHA256 below (a run with a stale HTMX_MIN_SHA256 fails and prints the new one).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

HTMX_VERSION = "2.0.11"
HTMX_TARBALL = f"https://registry.npmjs.org/htmx.org/-/htmx.org-{HTMX_VERSION}.tgz"
# npm view htmx.org@2.0.11 dist.integrity
HTMX_INTEGRITY = "sha512-Thx/WtpeOQqSrqBCw/A1cwGJGg4UrVa3+sW0GmrM3p4gJgO89ecH4qtbnyzDDWFvBTqjnIMCgELTNt636dtamA=="
HTMX_MEMBER = "package/dist/htmx.min.js"
# sha256 of package/dist/htmx.min.js inside that tarball (52,182 bytes)
HTMX_MIN_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"

ROOT = Path(__file__).resolve().parent.parent
VENDOR_DIR = ROOT / "web" / "static" / "vendor"
TIMEOUT_S = 60


class FetchError(Exception):
    """A failure with a message meant for a person."""


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def _download(url: str) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "kb-fetch-assets/1"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            return bytes(resp.read())
    except urllib.error.HTTPError as e:
        raise FetchError(f"the npm registry answered {e.code} {e.reason} for {url}") from e
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise FetchError(
            f"cannot reach the npm registry ({url}): {reason}\n"
            "  The web UI needs htmx; allow access to registry.npmjs.org (or an HTTPS proxy via\n"
            f"  HTTPS_PROXY), or place htmx {HTMX_VERSION}'s dist/htmx.min.js at\n"
            f"  {VENDOR_DIR / 'htmx.min.js'} by hand (sha256 {HTMX_MIN_SHA256})."
        ) from e


def _check_integrity(data: bytes, integrity: str, what: str) -> None:
    algo, _, expected = integrity.partition("-")
    if algo != "sha512":
        raise FetchError(f"unsupported integrity algorithm {algo!r} for {what}")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise FetchError(
            f"integrity mismatch for {what}: expected sha512-{expected}, got sha512-{actual}; "
            "refusing to use it"
        )


def _write_atomically(dest: Path, data: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fetch_htmx(force: bool = False) -> bool:
    """Make sure web/static/vendor/htmx.min.js is the pinned file; True if it was fetched."""
    dest = VENDOR_DIR / "htmx.min.js"
    if not force and _sha256(dest) == HTMX_MIN_SHA256:
        return False
    print(f"fetching htmx {HTMX_VERSION} from the npm registry", file=sys.stderr)
    tgz = _download(HTMX_TARBALL)
    _check_integrity(tgz, HTMX_INTEGRITY, HTMX_TARBALL)
    try:
        with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
            member = tar.getmember(HTMX_MEMBER)
            f = tar.extractfile(member) if member.isfile() else None
            if f is None:
                raise FetchError(f"{HTMX_MEMBER} in {HTMX_TARBALL} is not a regular file")
            data = f.read()
    except (tarfile.TarError, KeyError) as e:
        raise FetchError(f"cannot read {HTMX_MEMBER} from {HTMX_TARBALL}: {e}") from e
    actual = hashlib.sha256(data).hexdigest()
    if actual != HTMX_MIN_SHA256:
        raise FetchError(
            f"{HTMX_MEMBER} has sha256 {actual}, expected {HTMX_MIN_SHA256} "
            "(update HTMX_MIN_SHA256 if the pinned version was changed on purpose)"
        )
    _write_atomically(dest, data)
    print(f"wrote {dest.relative_to(ROOT)} ({len(data):,} bytes)", file=sys.stderr)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--force", action="store_true", help="download even if present")
    args = parser.parse_args(argv)
    try:
        fetch_htmx(force=args.force)
    except FetchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
