"""The file types the knowledge base accepts: one table the upload checks, the upload
page lists, the CLI walks and the parsers dispatch on.

An extension only decides which parser is *tried*; the parser checks the content (a PDF
named ``.docx`` is refused with a reason, not parsed as whatever it claims to be).
"""

from __future__ import annotations

# Extension -> document type (``Document.doc_type``), in the order the pages list them.
ACCEPTED: dict[str, str] = {
    ".pdf": "pdf",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "markdown",
    ".docx": "docx",
    ".pptx": "pptx",
    ".html": "html",
    ".htm": "html",
    ".xlsx": "xlsx",
    ".csv": "csv",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".tif": "image",
    ".tiff": "image",
}

# Document types in the order the filters offer them.
DOC_TYPES: tuple[str, ...] = tuple(dict.fromkeys(ACCEPTED.values()))

# Types whose chunks hold Markdown-like text (headings, lists, pipe tables) that
# ``markdown_plain`` turns into readable text; PDF and OCR text are plain already.
MARKUP_DOC_TYPES = frozenset({"markdown", "docx", "pptx", "html", "xlsx", "csv"})


def accepted_list() -> str:
    """The accepted extensions for a person: ".csv, .docx, ..." (sorted)."""
    return ", ".join(sorted(ACCEPTED))


def accept_attribute() -> str:
    """The ``accept`` attribute of the upload form's file input."""
    return ",".join(ACCEPTED)
