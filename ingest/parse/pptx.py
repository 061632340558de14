"""PowerPoint (.pptx) decks -> blocks: one section per slide.

Each slide becomes a level-1 heading (its title placeholder, else "Slide N"), then its
body in reading order (shapes sorted top to bottom, left to right; grouped shapes
opened; tables as Markdown pipe tables; bulleted paragraphs as nested list items), then
its speaker notes as one paragraph that starts with "Notes:". Every block carries the
slide number as its ``page``, so a hit says "slide N" and the chunker never joins two
slides (each is its own section).

Hidden slides are kept, like any other text of the file: a person who opens the deck
sees them in the editor, and a search should find what the file holds. Their number
is noted in ``ParsedDocument.notes`` ("pptx-hidden-slides:N").

The package is checked by ``check_office_zip`` first (zip bombs, encrypted and old
binary files, a zip that is not a deck); python-pptx parses its XML with
``resolve_entities=False``, so entity tricks neither expand nor read files.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from lxml import etree

from ingest.errors import IngestError, error_detail
from ingest.parse.htmlpage import TABLE_HINT, escape_line, pipe_table
from ingest.parse.zipsafe import check_office_zip
from ingest.types import Block, BlockKind, ParsedDocument

DAMAGED_DECK = (
    "The PowerPoint file is damaged and could not be read ({detail}). "
    "Open it in PowerPoint, save it again as .pptx and upload it."
)
NO_TEXT_DECK = (
    "The presentation contains no text (its slides hold only pictures or shapes). "
    "Add the text, or upload it as a PDF of images to be read by OCR."
)

_NS_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_NS_P = "http://schemas.openxmlformats.org/presentationml/2006/main"
# Placeholder types (ST_PlaceholderType) whose text is the slide's furniture, not its
# content: date, footer, slide number.
_FURNITURE = frozenset({"dt", "ftr", "sldNum", "hdr"})
_TITLE_TYPES = frozenset({"title", "ctrTitle"})
# Placeholders whose paragraphs are bulleted unless a paragraph says <a:buNone/>.
_BULLETED_TYPES = frozenset({"body", "obj", None})
# Shapes grouped deeper than this are read as flat text (a real deck nests a few levels).
_MAX_GROUP_DEPTH = 32
# Shapes in the same band of this height (EMU, a quarter inch) count as one row when
# ordering them for reading.
_BAND_EMU = 228_600
# Core-property titles that are only the template's default.
_DEFAULT_TITLES = frozenset({"powerpoint presentation", "presentation", "slide 1"})


def parse_pptx(path: Path) -> ParsedDocument:
    """Parse a .pptx deck into one section per slide."""
    check_office_zip(path, suffix=".pptx", label="PowerPoint", main_part="ppt/presentation.xml")
    # Imported here: a worker that never sees a deck never loads python-pptx.
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    try:
        deck = Presentation(str(path))
        return _read(deck)
    except IngestError:
        raise
    except (
        PackageNotFoundError,
        KeyError,
        ValueError,
        AttributeError,
        TypeError,
        zipfile.BadZipFile,
        etree.LxmlError,
    ) as exc:
        detail = f"{type(exc).__name__}: {error_detail(exc)}"[:200]
        raise IngestError(DAMAGED_DECK.format(detail=detail)) from None


def _read(deck: Any) -> ParsedDocument:
    blocks: list[Block] = []
    first_title: str | None = None
    hidden = 0
    count = 0
    for number, slide in enumerate(deck.slides, start=1):
        count = number
        if slide.element.get("show") in ("0", "false"):
            hidden += 1
        title_shape, title = _slide_title(slide)
        body = list(_body_blocks(slide, title_shape, number))
        notes = _notes(slide, number)
        if not title and not body and notes is None:
            continue
        if first_title is None and title:
            first_title = title
        blocks.append(Block(BlockKind.HEADING, title or f"Slide {number}", level=1, page=number))
        blocks.extend(body)
        if notes is not None:
            blocks.append(notes)
    if not any(b.kind is not BlockKind.HEADING for b in blocks) and first_title is None:
        raise IngestError(NO_TEXT_DECK)
    meta_title = _core_title(deck)
    return ParsedDocument(
        blocks=tuple(blocks),
        title=meta_title or first_title,
        page_count=count,
        notes=(f"pptx-hidden-slides:{hidden}",) if hidden else (),
        meta_title=meta_title,
    )


def _core_title(deck: Any) -> str | None:
    try:
        title = deck.core_properties.title
    except (KeyError, ValueError, AttributeError):
        return None
    title = " ".join((title or "").split())
    if not title or title.lower() in _DEFAULT_TITLES:
        return None
    return title[:300]


def _placeholder_type(shape: Any) -> str | None:
    """The ``type`` of a placeholder shape (``None`` for a placeholder without one, which
    is a body placeholder); ``"-"`` for a shape that is not a placeholder."""
    # Only the shape's own properties (nvSpPr, nvGraphicFramePr, ...): not a group's shapes.
    ph = shape.element.find(f"./*/{{{_NS_P}}}nvPr/{{{_NS_P}}}ph")
    if ph is None:
        return "-"
    return ph.get("type")


def _slide_title(slide: Any) -> tuple[Any, str]:
    for shape in slide.shapes:
        if _placeholder_type(shape) in _TITLE_TYPES and shape.has_text_frame:
            return shape, _one_line(shape.text_frame.text)
    return None, ""


def _one_line(text: str) -> str:
    return " ".join(text.replace("\v", " ").split())


def _reading_order(shapes: Iterable[Any]) -> list[Any]:
    def key(shape: Any) -> tuple[int, int]:
        top, left = shape.top, shape.left
        return (int(top or 0) // _BAND_EMU, int(left or 0))

    return sorted(shapes, key=key)


def _body_blocks(slide: Any, title_shape: Any, number: int) -> Iterator[Block]:
    # (shapes, depth) to read, iteratively: a group's shapes replace it in place.
    pending: list[tuple[Any, int]] = [(s, 0) for s in reversed(_reading_order(slide.shapes))]
    while pending:
        shape, depth = pending.pop()
        if title_shape is not None and shape.shape_id == title_shape.shape_id and depth == 0:
            continue
        kind = _placeholder_type(shape)
        if kind in _FURNITURE:
            continue
        if _is_group(shape):
            if depth < _MAX_GROUP_DEPTH:
                children = _reading_order(shape.shapes)
                pending.extend((s, depth + 1) for s in reversed(children))
            else:
                text = _flat_text(shape.element)
                if text:
                    yield Block(BlockKind.PARAGRAPH, escape_line(text), page=number)
            continue
        if getattr(shape, "has_table", False) and shape.has_table:
            table = _table(shape.table)
            if table:
                yield Block(BlockKind.TABLE, table, page=number, hint=TABLE_HINT)
            continue
        if shape.has_text_frame:
            yield from _text_frame_blocks(shape.text_frame, kind in _BULLETED_TYPES, number)


def _is_group(shape: Any) -> bool:
    return shape.element.tag == f"{{{_NS_P}}}grpSp"


def _flat_text(element: Any) -> str:
    return " ".join(t for t in (el.text for el in element.iter(f"{_NS_A}t")) if t and t.strip())


def _bullet(paragraph: Any, bulleted: bool) -> str | None:
    """The list marker of a paragraph ("-" or "1."), or None for a plain paragraph."""
    ppr = paragraph._p.pPr
    if ppr is not None:
        if ppr.find(f"{_NS_A}buNone") is not None:
            return None
        if ppr.find(f"{_NS_A}buAutoNum") is not None:
            return "1."
        if ppr.find(f"{_NS_A}buChar") is not None or ppr.find(f"{_NS_A}buBlip") is not None:
            return "-"
    return "-" if bulleted else None


def _text_frame_blocks(frame: Any, bulleted: bool, number: int) -> Iterator[Block]:
    items: list[str] = []
    counters: dict[int, int] = {}
    for paragraph in frame.paragraphs:
        text = paragraph.text.replace("\v", "\n")
        marker = _bullet(paragraph, bulleted) if text.strip() else None
        if marker is None:
            if items:
                yield Block(BlockKind.LIST, "\n".join(items), page=number)
                items, counters = [], {}
            lines = [escape_line(" ".join(line.split())) for line in text.splitlines()]
            para = "\n".join(line for line in lines if line)
            if para:
                yield Block(BlockKind.PARAGRAPH, para, page=number)
            continue
        level = min(max(int(paragraph.level or 0), 0), 8)
        # A level deeper than the item before it nests one level only (Markdown cannot skip).
        depth = min(level, (max(counters) + 1) if counters else 0)
        for deeper in [k for k in counters if k > depth]:
            del counters[deeper]
        if marker == "1.":
            counters[depth] = counters.get(depth, 0) + 1
            marker = f"{counters[depth]}."
        else:
            counters[depth] = counters.get(depth, 0)
        item = escape_line(_one_line(text))
        items.append("   " * depth + f"{marker} {item}")
    if items:
        yield Block(BlockKind.LIST, "\n".join(items), page=number)


def _table(table: Any) -> str:
    rows: list[list[str]] = []
    for row in table.rows:
        cells = []
        for cell in row.cells:
            # A cell covered by a merge repeats nothing: the merged text sits in its origin.
            cells.append("" if cell.is_spanned else _one_line(cell.text))
        rows.append(cells)
    return pipe_table(rows)


def _notes(slide: Any, number: int) -> Block | None:
    if not slide.has_notes_slide:
        return None
    frame = slide.notes_slide.notes_text_frame
    if frame is None:
        return None
    paragraphs = [" ".join(p.text.replace("\v", " ").split()) for p in frame.paragraphs]
    paragraphs = [p for p in paragraphs if p]
    if not paragraphs:
        return None
    # The first paragraph follows "Notes: ", so only the others can start a line as markup.
    text = "\n\n".join([paragraphs[0], *(escape_line(p) for p in paragraphs[1:])])
    return Block(BlockKind.PARAGRAPH, f"Notes: {text}", page=number)
