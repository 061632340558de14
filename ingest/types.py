"""Typed values passed between the ingest stages: parse -> chunk -> embed -> store.

Each stage takes and returns frozen dataclasses so it can be tested alone and so
provenance (heading path, pages) is explicit rather than hidden in a metadata dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from app.documents.models import ChunkKind
from app.text.embed import embed_text_for


@dataclass(frozen=True, slots=True)
class BlockHint:
    """What a parser that knows a block's structure tells the chunker about it.

    ``kind`` set: the block is a record of its own (a spreadsheet row of an FAQ or a
    question bank) and becomes one unit of that kind, whatever the text looks like, with
    ``question`` as the unit's question. ``header_lines`` > 0 (a Markdown pipe table a
    parser wrote): when the block is over budget it is cut between rows and those first
    lines (header row and ``|---|`` rule) start every piece.
    """

    kind: ChunkKind | None = None
    question: str | None = None
    header_lines: int = 0


class BlockKind(StrEnum):
    HEADING = "heading"
    PARAGRAPH = "paragraph"
    CODE = "code"
    LIST = "list"
    TABLE = "table"
    QUOTE = "quote"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Block:
    """One unit of a parsed document, in reading order.

    A heading block has ``level`` >= 1 (1 = top); other blocks have level 0.
    ``page`` is the 1-based page number for PDFs, None for Markdown.
    ``extractor`` names the PDF text extractor that read the block's page ("pypdf", or
    "pdfium" where pypdf's text was unreadable, "ocr" for text read from a scan); None
    for Markdown. ``ocr_confidence`` is the OCR engine's mean confidence (0-1) for the
    block's text (for a scanned PDF page: the page's), None for text not read by OCR.
    """

    kind: BlockKind
    text: str
    level: int = 0
    page: int | None = None
    extractor: str | None = None
    ocr_confidence: float | None = None
    # Structure the parser knows for sure (a spreadsheet row's kind, a table's header).
    hint: BlockHint | None = None


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """What a parser extracts from one file."""

    blocks: tuple[Block, ...]
    # The parser's title: ``meta_title`` if there is one, else the first heading.
    title: str | None = None
    page_count: int | None = None
    # Extra per-document facts a parser knows (e.g. "pdf-outline", "pdf-font-headings").
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Labels from the document itself (Markdown front matter ``tags``/``keywords``),
    # normalised: stripped, unique, in their first order.
    tags: tuple[str, ...] = field(default_factory=tuple)
    # The title the file declares: Markdown front matter ``title``, a PDF's meaningful
    # metadata title. It wins over headings when ingest picks the stored title.
    meta_title: str | None = None

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A section of a document (or a token-bounded piece of a long one).

    ``text`` is the passage as stored and shown; ``embed_text`` is what the embedder
    sees (the heading path followed by the passage).
    """

    ordinal: int
    heading_path: tuple[str, ...]
    text: str
    page_start: int | None
    page_end: int | None
    token_count: int
    kind: ChunkKind = ChunkKind.SECTION
    # For FAQ and exam chunks: the question alone (its first line or heading), so it can
    # be shown, matched and deduplicated without the answer.
    question: str | None = None

    @property
    def heading_path_str(self) -> str:
        return " > ".join(self.heading_path)

    @property
    def embed_text(self) -> str:
        return embed_text_for(self.heading_path, self.text)
