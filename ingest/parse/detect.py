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
from app.text.filetypes import ACCEPTED, accepted_list
from ingest.errors import IngestError

MARKDOWN_SUFFIXES = frozenset(ext for ext, kind in ACCEPTED.items() if kind == "markdown")
EMPTY_FILE = "The file is empty: it contains no text. Upload a file with content."
SUPPORTED = accepted_list()

# The PDF spec lets the header start anywhere in the first 1024 bytes.
_PDF_MAGIC = b"%PDF-"
_SNIFF_BYTES = 1024
# A PDF saved with one of these names is still read as the PDF it is (as before); any
# other accepted extension on a PDF is refused as mislabelled.
_TEXT_OR_PDF = frozenset({".pdf", *MARKDOWN_SUFFIXES})


class FileKind(StrEnum):
    """Which parser reads a file; the values are ``Document.doc_type`` values."""

    PDF = "pdf"
    MARKDOWN = "markdown"
    DOCX = "docx"
    PPTX = "pptx"
    HTML = "html"
    XLSX = "xlsx"
    CSV = "csv"
    IMAGE = "image"


def detect_kind(head: bytes, filename: str) -> FileKind:
    """Say which parser reads a file, from its first bytes and its name."""
    suffix = PurePath(filename).suffix.lower()
    if _PDF_MAGIC in head[:_SNIFF_BYTES] and (suffix not in ACCEPTED or suffix in _TEXT_OR_PDF):
        return FileKind.PDF
    if suffix == ".pdf":
        raise IngestError(
            "The file is named .pdf but is not a PDF (it does not start with %PDF-); "
            "it may be damaged or mislabelled. Export it again as PDF and re-upload it."
        )
    if suffix in MARKDOWN_SUFFIXES:
        return FileKind.MARKDOWN
    if suffix in ACCEPTED:
        kind = FileKind(ACCEPTED[suffix])
        if _PDF_MAGIC in head[:_SNIFF_BYTES]:
            raise IngestError(
                f"The file is named {suffix} but is a PDF. Rename it to .pdf and upload it again."
            )
        return kind
    shown = f"'{suffix}'" if suffix else "without an extension"
    raise IngestError(f"Unsupported file type ({shown}). Supported types are {SUPPORTED}.")


def decode_text(data: bytes) -> str:
    """Decode a text file (see :func:`app.text.decode.decode_text`, which the document
    page shares); bytes that are not text raise an :class:`IngestError`."""
    try:
        return _decode_text(data)
    except NotText as exc:
        raise IngestError(exc.reason) from None
