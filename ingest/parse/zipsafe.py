"""Check an Office file (a zip of XML parts) before any library opens it.

DOCX, PPTX and XLSX are zip archives, so a hostile one can be a zip bomb: millions of
entries, or parts that inflate to gigabytes. The central directory states every entry's
sizes, so the checks here read only that directory (``zipfile.ZipFile.infolist``),
inflate nothing, and refuse the file before python-docx, python-pptx or openpyxl
start. A directory that lies about sizes is caught later by the sandbox's memory and
time limits; ``read_part`` also stops at the stated size.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import IngestError

# OLE2 compound files: what Office writes for a password-protected document (an
# "EncryptedPackage" stream) and for the old binary .doc/.ppt/.xls formats.
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")

PASSWORD_PROTECTED = (
    "The file is password-protected: remove the password (save an unprotected copy) "
    "and upload it again."
)
OLD_BINARY_FORMAT = (
    "The file is in the old binary Office format (.doc, .ppt or .xls): save it as "
    ".docx, .pptx or .xlsx and upload it again."
)
NOT_AN_OFFICE_FILE = (
    "The file is named {suffix} but is not a {label} file (it is not an Office Open XML "
    "package); it may be damaged or mislabelled. Save it again as {suffix} and upload it."
)
TOO_MANY_PARTS = "The file has too many parts ({count}) to be a real document; it was not read."
TOO_LARGE_UNPACKED = (
    "The file unpacks to more than {limit_mb} MB; it was not read (it may be a zip bomb)."
)
SUSPICIOUS_RATIO = (
    "A part of the file is compressed more than {ratio}:1, as only zip bombs are; it was not read."
)


@dataclass(frozen=True, slots=True)
class ZipLimits:
    max_entries: int = 10_000
    max_total_bytes: int = 1024 * 1024 * 1024
    max_entry_bytes: int = 512 * 1024 * 1024
    # Real XML compresses 10-30:1; a part of zeros compresses ~1000:1.
    max_ratio: int = 200
    # Tiny parts can have large ratios by accident; only check ratios above this size.
    ratio_floor_bytes: int = 1024 * 1024


LIMITS = ZipLimits()


def check_office_zip(
    path: Path, *, suffix: str, label: str, main_part: str, limits: ZipLimits = LIMITS
) -> None:
    """Refuse ``path`` with a reason unless it is a plausible Office zip whose
    ``main_part`` (e.g. ``word/document.xml``) exists and whose sizes are within limits."""
    with path.open("rb") as f:
        head = f.read(8)
        if head == _OLE_MAGIC:
            # The stream name sits in the directory sectors; scanning the first MiB finds it.
            body = f.read(1024 * 1024)
            raise IngestError(
                PASSWORD_PROTECTED if _ENCRYPTED_PACKAGE in body else OLD_BINARY_FORMAT
            )
    if not zipfile.is_zipfile(path):
        raise IngestError(NOT_AN_OFFICE_FILE.format(suffix=suffix, label=label))
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise IngestError(NOT_AN_OFFICE_FILE.format(suffix=suffix, label=label)) from None
    if len(entries) > limits.max_entries:
        raise IngestError(TOO_MANY_PARTS.format(count=len(entries)))
    total = 0
    for info in entries:
        size = info.file_size
        total += size
        # The limit the reason names is the one passed: one part, or all of them.
        over = (
            limits.max_entry_bytes
            if size > limits.max_entry_bytes
            else limits.max_total_bytes
            if total > limits.max_total_bytes
            else None
        )
        if over is not None:
            raise IngestError(TOO_LARGE_UNPACKED.format(limit_mb=over // (1024 * 1024)))
        if size > limits.ratio_floor_bytes and size > limits.max_ratio * max(info.compress_size, 1):
            raise IngestError(SUSPICIOUS_RATIO.format(ratio=limits.max_ratio))
    names = {info.filename for info in entries}
    if main_part not in names:
        raise IngestError(NOT_AN_OFFICE_FILE.format(suffix=suffix, label=label))
