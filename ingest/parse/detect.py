"""Recognise a file's type from its bytes and name, and decode text files.

The decoding itself lives in the leaf text package (``app.text.decode``) so that the
document page reads a file exactly as ingest did; ``decode_text`` is kept here for the
parsers and other callers, raising ``IngestError``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import PurePath

from app.text.decode import NotText
from app.text.decode import decode_text as _decode_text
from ingest.errors import IngestError

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".txt"})
EMPTY_FILE = "The file is empty: it contains no text. Upload a file with content."
SUPPORTED = "PDF (.pdf) and Markdown or plain text (.md, .markdown, .txt)"

# The PDF spec lets the header start anywhere in the first 1024 bytes.
_PDF_MAGIC = b"%PDF-"
_SNIFF_BYTES = 1024


class FileKind(StrEnum):
    PDF = "pdf"
    MARKDOWN = "markdown"


def detect_kind(head: bytes, filename: str) -> FileKind:
    """Say which parser reads a file, from its first bytes and its name."""
    if _PDF_MAGIC in head[:_SNIFF_BYTES]:
        return FileKind.PDF
    suffix = PurePath(filename).suffix.lower()
    if suffix == ".pdf":
        raise IngestError(
            "The file is named .pdf but is not a PDF (it does not start with %PDF-); "
            "it may be damaged or mislabelled. Export it again as PDF and re-upload it."
        )
    if suffix in MARKDOWN_SUFFIXES:
        return FileKind.MARKDOWN
    shown = f"'{suffix}'" if suffix else "without an extension"
    raise IngestError(f"Unsupported file type ({shown}). Supported types are {SUPPORTED}.")


def decode_text(data: bytes) -> str:
    """Decode a text file (see :func:`app.text.decode.decode_text`, which the document
    page shares); bytes that are not text raise an :class:`IngestError`."""
    try:
        return _decode_text(data)
    except NotText as exc:
        raise IngestError(exc.reason) from None
