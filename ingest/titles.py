"""The title ingest stores for a document (pure; the rules are in ``app.text.titles``)."""

from __future__ import annotations

from app.text.titles import is_generic_heading, man_page_title, title_from_filename
from ingest.types import BlockKind, ParsedDocument


def document_title(parsed: ParsedDocument, filename: str) -> str:
    """The title stored for a document; never empty.

    In order: the title the file declares (front matter, meaningful PDF metadata); for
    a man page (first heading NAME), the command and section, "find(1)"; the parser's
    first heading unless it is generic ("FAQ", "Introduction", "NAME"); else a title
    made of the file name.
    """
    if parsed.meta_title and parsed.meta_title.strip():
        return parsed.meta_title.strip()
    first = next((i for i, b in enumerate(parsed.blocks) if b.kind is BlockKind.HEADING), None)
    if first is not None and parsed.blocks[first].page is None:  # Markdown or text
        paragraph = next(
            (b.text for b in parsed.blocks[first + 1 :] if b.kind is not BlockKind.HEADING), None
        )
        man = man_page_title(filename, parsed.blocks[first].text, paragraph)
        if man:
            return man
    if parsed.title and not is_generic_heading(parsed.title):
        return parsed.title.strip()
    return title_from_filename(filename)
