"""Parsers: a file on disk -> ``ParsedDocument`` (blocks with heading levels and pages)."""

from __future__ import annotations

from pathlib import Path

from ingest.errors import IngestError
from ingest.parse.detect import EMPTY_FILE, SUPPORTED, FileKind, decode_text, detect_kind
from ingest.parse.markdown import parse_markdown, parse_markdown_bytes
from ingest.parse.pdf import parse_pdf
from ingest.types import ParsedDocument

__all__ = [
    "SUPPORTED",
    "FileKind",
    "decode_text",
    "detect_kind",
    "parse",
    "parse_markdown",
    "parse_markdown_bytes",
    "parse_pdf",
]


def parse(path: Path, *, filename: str | None = None) -> ParsedDocument:
    """Parse the file at ``path``; ``filename`` (the uploaded name) decides text types."""
    # OSError (missing file, permissions) propagates: that is not the input's fault.
    with path.open("rb") as f:
        head = f.read(1024)
    # Only whitespace so far: read the rest to tell empty files from padded ones.
    if not head.strip() and not path.read_bytes().strip():
        raise IngestError(EMPTY_FILE)
    kind = detect_kind(head, filename or path.name)
    # The Office, HTML, sheet and OCR parsers are imported on first use: a worker that
    # never sees such a file never loads their libraries.
    match kind:
        case FileKind.PDF:
            return parse_pdf(path)
        case FileKind.MARKDOWN:
            return parse_markdown_bytes(path.read_bytes())
        case FileKind.DOCX:
            from ingest.parse.docx import parse_docx

            return parse_docx(path)
        case FileKind.PPTX:
            from ingest.parse.pptx import parse_pptx

            return parse_pptx(path)
        case FileKind.HTML:
            from ingest.parse.htmlpage import parse_html

            return parse_html(path)
        case FileKind.XLSX | FileKind.CSV:
            from ingest.parse.sheet import parse_sheet

            return parse_sheet(path, kind.value)
        case FileKind.IMAGE:
            from ingest.parse.ocr import parse_image

            return parse_image(path)
