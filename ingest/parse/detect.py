"""Recognise a file's type from its bytes and name, and decode text files."""

from __future__ import annotations

import codecs
import re
import unicodedata
from enum import StrEnum
from pathlib import PurePath

from ingest.errors import IngestError

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".txt"})
EMPTY_FILE = "The file is empty: it contains no text. Upload a file with content."
SUPPORTED = "PDF (.pdf) and Markdown or plain text (.md, .markdown, .txt)"

# The PDF spec lets the header start anywhere in the first 1024 bytes.
_PDF_MAGIC = b"%PDF-"
_SNIFF_BYTES = 1024
# Share of control / unassigned characters above which decoded "text" is really binary.
_MAX_ODD_SHARE = 0.01
# C0 and C1 controls other than the whitespace ones (tab, newline, form feed, CR).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")


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
    """Decode a text file: UTF-8 (BOM optional), UTF-16 (BOM optional), else GB18030."""
    if data.startswith(codecs.BOM_UTF8):
        text = _strict(data[len(codecs.BOM_UTF8) :], "utf-8")
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # The "utf-16" codec reads the BOM to pick the byte order and drops it.
        text = _strict(data, "utf-16")
    elif (bom_less := _utf16_without_bom(data)) is not None:
        text = _strict(data, bom_less)
    else:
        if b"\x00" in data:
            raise _binary()
        text = _strict(data, "utf-8")
        if text is None:
            text = _strict(data, "gb18030")
            if text is not None and _odd_share(text) > _MAX_ODD_SHARE:
                raise _binary()
    if text is None or _control_share(text) > _MAX_ODD_SHARE:
        raise _binary()
    return text


def _utf16_without_bom(data: bytes) -> str | None:
    """ "utf-16-le"/"utf-16-be" when the bytes look like UTF-16 saved without a BOM.

    Text in UTF-16 has a NUL in the high byte of every ASCII character (newlines,
    spaces, Markdown markup), so NULs sit at one parity; a binary file has them at both.
    """
    sample = data[:4096]
    if len(sample) < 4 or len(sample) % 2 or b"\x00" not in sample:
        return None
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    pairs = len(sample) // 2
    # Markup and line ends alone make ASCII at least a few percent of any real text; the
    # other parity has NULs only from the rare characters U+xx00 (such as 一, U+4E00).
    if odd >= pairs * 0.05 and even * 4 <= odd:
        return "utf-16-le"
    if even >= pairs * 0.05 and odd * 4 <= even:
        return "utf-16-be"
    return None


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _control_share(text: str) -> float:
    """Share of control characters that no text file has (NUL, backspace, ESC ...)."""
    return len(_CONTROL_RE.findall(text)) / max(1, len(text))


def _odd_share(text: str) -> float:
    """Share of unassigned, private-use or control characters."""
    # GB18030 maps almost every byte sequence to some code point, so a binary file can
    # decode "cleanly"; its characters then land in these categories, real text's do not.
    odd = sum(1 for ch in text if unicodedata.category(ch) in ("Cn", "Co", "Cs", "Cc"))
    odd -= text.count("\n") + text.count("\t") + text.count("\r") + text.count("\f")
    return odd / max(1, len(text))


def _binary() -> IngestError:
    return IngestError(
        "The file looks binary, not text: it is named like Markdown or text but contains "
        "bytes that are not UTF-8, UTF-16 or GB18030 text. Check that you uploaded the "
        "right file, or save it as UTF-8 text."
    )
