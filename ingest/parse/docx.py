"""Word (.docx) documents -> blocks, in document order.

* Headings come from paragraph styles ("Heading 1".."Heading 9", "Title", localized
  names such as "标题 1", through the ``basedOn`` chain) and from outline levels
  (``w:outlineLvl`` in the paragraph or its styles). A document without any (many exam
  papers and FAQs) gets headings inferred as for PDFs without an outline: short lines
  numbered as sections ("一、选择题", "第一部分", "1.2 Scope") and short bold paragraphs.
  Bold paragraphs that ask a question are written ``**like this?**`` instead, so that
  ``ingest.structure`` sees the FAQ question they are.
* Numbered and bulleted paragraphs become list blocks with the markers Word shows,
  counted from the numbering part ("1." "2.", "A." "B.", "（一）"); bullets are "-".
* Tables become Markdown pipe tables (header row repeated when the chunker splits
  them, see ``BlockHint.header_lines``), except a table of exam options ("A. …" "B. …"
  cells), which becomes option lines so the question stays one unit, and a one-column
  table (a framed note), whose cells become paragraphs. Merged cells repeat the value
  above (vertical) or stay empty (horizontal).
* Options on one line separated by tabs ("A.北京\\tB.上海") are put on lines of their own.
* Text boxes keep their text (after their paragraph); footnotes and endnotes are marked
  "[1]" in the text and appended at the end; headers, footers and deleted revisions are
  dropped (they are not in the body).
* An answer key at the end ("参考答案 1.B 2.C …") is moved into its questions by
  ``ingest.structure.attach_answer_key``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.text.titles import declared_title
from ingest.errors import IngestError, error_detail
from ingest.parse.office_numbering import BULLET, Numbering, W
from ingest.parse.office_table import pipe_table
from ingest.parse.pdf_headings import numbering as heading_number
from ingest.parse.zipsafe import check_office_zip
from ingest.structure import attach_answer_key, is_answer_key_line
from ingest.types import Block, BlockKind, ParsedDocument

DOCX_DAMAGED = (
    "The Word file is damaged and cannot be read ({detail}). Open it in Word, save it "
    "again as .docx and upload it."
)
DOCX_NO_TEXT = (
    "The Word document contains no text (it may hold only images or scanned pages). "
    "Upload a document with text, or a PDF of the scan."
)

_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
_FOOTNOTES = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/footnotes"
_ENDNOTES = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/endnotes"

# Style names of headings, in English and the languages Word localizes them to.
_HEADING_STYLE = re.compile(
    r"^(?:heading|标题|標題|überschrift|titre|título|titolo|заголовок|見出し)\s*([1-9])$",
    re.IGNORECASE,
)
_TITLE_STYLE = re.compile(r"^(?:title|标题|標題|titel|titre|título|titolo)$", re.IGNORECASE)
# Subtrees whose text is not the paragraph's own: deleted revisions, field codes,
# drawings (text boxes are read separately), the fallback copy of alternate content.
_SKIP = frozenset(
    {
        W + "delText", W + "instrText", W + "del", W + "rPr", W + "pPr", W + "drawing",
        W + "pict", W + "object", W + "txbxContent", W + "fldData", W + "moveFrom",
        _MC + "Fallback",
    }
)  # fmt: skip
_OPTION_CELL = re.compile(r"^\s*(?:[（(]([A-H])[)）]|([A-H])\s*[.．、:：](?!\d))")
_OPTION_AFTER_TAB = re.compile(r"\t+(?=\s*(?:[（(][A-H][)）]|[A-H]\s*[.．、](?!\d)))")
_OPTION_START = re.compile(r"^\s*(?:[（(][A-H][)）]|[A-H]\s*[.．、](?!\d))")
# Lines that are never headings: items, options, Q/A lines.
_NOT_HEADING_START = re.compile(
    r"^\s*(?:\d{1,3}\s*[.．、)）]|[（(]\d{1,3}[)）]|[（(]?[A-H][)）.．、]|第\s*\d+\s*题"
    r"|(?:Q|A|问|答|问题|答案|解析)\s*\d*\s*[:：])",
    re.IGNORECASE,
)
_SENTENCE_END = tuple(".。．,，;；、!！")
_QUESTION_END = re.compile(r"(?:[?？]|[吗呢嘛][?？。]?)\s*$")
_MAX_HEADING_WIDTH = 60


@dataclass(slots=True)
class _Style:
    name: str
    based_on: str | None
    outline: int | None
    num: tuple[str, int] | None
    bold: bool | None


@dataclass(slots=True)
class _Para:
    """A body paragraph before headings are decided."""

    text: str
    heading: int = 0  # level from styles or outline levels
    marker: str | None = None  # list marker ("1.", "-")
    ilvl: int = 0
    list_id: str | None = None
    bold: bool = False
    boxes: list[str] = field(default_factory=list)  # text boxes' text


@dataclass(slots=True)
class _Table:
    rows: list[list[str]]


def parse_docx(path: Path) -> ParsedDocument:
    """Parse a Word document into blocks (see the module docstring)."""
    check_office_zip(path, suffix=".docx", label="Word", main_part="word/document.xml")
    import docx  # imported on first use: workers that never see Word skip loading it

    try:
        document = docx.Document(str(path))
        reader = _Reader(document)
        items = list(reader.body(document.element.body))
        notes_text = reader.notes()
        core_title = document.core_properties.title
    except IngestError:
        raise
    except Exception as exc:  # python-docx and lxml raise many kinds on damaged parts
        raise IngestError(DOCX_DAMAGED.format(detail=error_detail(exc))) from None
    styled = any(isinstance(it, _Para) and it.heading for it in items)
    blocks = _blocks(items, infer=not styled)
    blocks.extend(Block(BlockKind.PARAGRAPH, text) for text in notes_text)
    if not any(b.text.strip() for b in blocks):
        raise IngestError(DOCX_NO_TEXT)
    notes = ["docx-styles" if styled else "docx-inferred-headings"]
    blocks, keyed = attach_answer_key(blocks)
    if keyed:
        notes.append("answer-key")
    meta_title = declared_title(core_title)
    headings = [b for b in blocks if b.kind is BlockKind.HEADING]
    top = min((b.level for b in headings), default=0)
    first = next((b.text for b in headings if b.level == top), None)
    return ParsedDocument(
        blocks=tuple(blocks), title=meta_title or first, notes=tuple(notes), meta_title=meta_title
    )


# ---------------------------------------------------------------- reading the XML


class _Reader:
    def __init__(self, document: Any) -> None:
        self._styles = _read_styles(document.styles.element)
        self._default = next(
            (
                s.get(W + "styleId")
                for s in document.styles.element.iter(W + "style")
                if s.get(W + "type") == "paragraph" and s.get(W + "default") in ("1", "true", "on")
            ),
            None,
        )
        try:
            numbering_root = document.part.numbering_part.element
        except (KeyError, NotImplementedError, AttributeError):
            numbering_root = None
        self._numbering = Numbering(numbering_root)
        self._part = document.part

    # -- body

    def body(self, parent: Any) -> Iterator[_Para | _Table]:
        for child in parent:
            tag = child.tag
            if tag == W + "p":
                yield self._paragraph(child)
            elif tag == W + "tbl":
                yield _Table(self._table(child))
            elif tag in (W + "sdt", W + "customXml", W + "sdtContent", W + "ins"):
                content = child.find(W + "sdtContent") if tag == W + "sdt" else child
                if content is not None:
                    yield from self.body(content)

    def _paragraph(self, p: Any) -> _Para:
        ppr = p.find(W + "pPr")
        style_id = _val(ppr, "pStyle") or self._default
        chain = list(self._chain(style_id))
        para = _Para(text=text_of(p))
        outline = _int(_val(ppr, "outlineLvl"))
        if outline is None:
            outline = next((s.outline for s in chain if s.outline is not None), None)
        level = next((_style_level(s.name) for s in chain if _style_level(s.name)), 0)
        if outline is not None and outline < 9:
            level = level or outline + 1
        para.heading = level
        num_pr = ppr.find(W + "numPr") if ppr is not None else None
        num: tuple[str, int] | None = None
        if num_pr is not None:
            num_id = _val(num_pr, "numId")
            style_num = next((s.num for s in chain if s.num is not None), None)
            ilvl = _int(_val(num_pr, "ilvl"))
            if num_id is None and style_num is not None:
                num_id = style_num[0]
            if num_id is not None:
                num = (num_id, ilvl if ilvl is not None else (style_num[1] if style_num else 0))
        else:
            num = next((s.num for s in chain if s.num is not None), None)
        if num is not None and num[0] != "0" and para.text.strip():
            para.marker = self._numbering.marker(num[0], num[1])
            para.ilvl = num[1]
            para.list_id = num[0]
        style_bold = next((s.bold for s in chain if s.bold is not None), False)
        para.bold = _all_bold(p, style_bold)
        for box in p.iter(W + "txbxContent"):
            if any(a.tag == _MC + "Fallback" for a in box.iterancestors()):
                continue  # the same box again, for old readers
            if any(a.tag == W + "txbxContent" for a in box.iterancestors()):
                continue  # read with its outer box
            text = "\n".join(t for t in (text_of(q) for q in box.iter(W + "p")) if t.strip())
            if text.strip():
                para.boxes.append(text)
        return para

    def _chain(self, style_id: str | None) -> Iterator[_Style]:
        seen: set[str] = set()
        while style_id and style_id not in seen and len(seen) < 20:
            seen.add(style_id)
            style = self._styles.get(style_id)
            if style is None:
                return
            yield style
            style_id = style.based_on

    def _table(self, tbl: Any) -> list[list[str]]:
        rows: list[list[str]] = []
        above: dict[int, str] = {}
        for tr in _children(tbl, W + "tr"):
            row: list[str] = []
            for tc in _children(tr, W + "tc"):
                tcpr = tc.find(W + "tcPr")
                span = max(1, min(_int(_val(tcpr, "gridSpan")) or 1, 64))
                vmerge = tcpr.find(W + "vMerge") if tcpr is not None else None
                col = len(row)
                if vmerge is not None and vmerge.get(W + "val") not in ("restart",):
                    text = above.get(col, "")
                else:
                    parts = (text_of(q) for q in tc.iter(W + "p"))
                    text = " ".join(" ".join(t.split()) for t in parts if t.strip())
                above[col] = text
                row.append(text)
                row.extend("" for _ in range(span - 1))
            rows.append(row)
        return rows

    # -- notes

    def notes(self) -> list[str]:
        """Footnotes and endnotes as "[1] text" paragraphs."""
        out: list[str] = []
        for rel in self._part.rels.values():
            if rel.is_external or rel.reltype not in (_FOOTNOTES, _ENDNOTES):
                continue
            from docx.oxml.parser import parse_xml

            root = parse_xml(rel.target_part.blob)
            prefix = "" if rel.reltype == _FOOTNOTES else "e"
            tag = W + ("footnote" if rel.reltype == _FOOTNOTES else "endnote")
            for note in root.iter(tag):
                if note.get(W + "type") not in (None, "normal"):
                    continue  # separators
                text = " ".join(t for t in (text_of(p) for p in note.iter(W + "p")) if t.strip())
                if text.strip():
                    out.append(f"[{prefix}{note.get(W + 'id')}] {' '.join(text.split())}")
        return out


def _children(el: Any, tag: str) -> Iterator[Any]:
    """``tag`` children of ``el``, also inside content controls and custom XML."""
    for child in el:
        if child.tag == tag:
            yield child
        elif child.tag in (W + "sdt", W + "sdtContent", W + "customXml"):
            yield from _children(child, tag)


def text_of(p: Any) -> str:
    """A paragraph's text: runs, tabs, line breaks, footnote marks; not text boxes."""
    out: list[str] = []
    _walk(p, out)
    return "".join(out).strip("\n")


def _walk(el: Any, out: list[str]) -> None:
    for child in el:
        tag = child.tag
        if not isinstance(tag, str) or tag in _SKIP:
            continue
        if tag == W + "t":
            out.append(child.text or "")
        elif tag == W + "tab":
            out.append("\t")
        elif tag in (W + "br", W + "cr"):
            if child.get(W + "type") in (None, "textWrapping"):
                out.append("\n")
        elif tag == W + "noBreakHyphen":
            out.append("-")
        elif tag == W + "footnoteReference":
            out.append(f"[{child.get(W + 'id')}]")
        elif tag == W + "endnoteReference":
            out.append(f"[e{child.get(W + 'id')}]")
        else:
            _walk(child, out)


def _val(el: Any, name: str) -> str | None:
    child = el.find(W + name) if el is not None else None
    return None if child is None else child.get(W + "val")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _on(el: Any) -> bool:
    return el.get(W + "val") not in ("0", "false", "off")


def _read_styles(root: Any) -> dict[str, _Style]:
    styles: dict[str, _Style] = {}
    for s in root.iter(W + "style"):
        style_id = s.get(W + "styleId")
        if not style_id:
            continue
        ppr = s.find(W + "pPr")
        num_pr = ppr.find(W + "numPr") if ppr is not None else None
        num = None
        if num_pr is not None and _val(num_pr, "numId"):
            num = (_val(num_pr, "numId") or "0", _int(_val(num_pr, "ilvl")) or 0)
        rpr = s.find(W + "rPr")
        b = rpr.find(W + "b") if rpr is not None else None
        styles[style_id] = _Style(
            name=_val(s, "name") or style_id,
            based_on=_val(s, "basedOn"),
            outline=_int(_val(ppr, "outlineLvl")),
            num=num,
            bold=None if b is None else _on(b),
        )
    return styles


def _style_level(name: str) -> int:
    name = " ".join(name.split())
    m = _HEADING_STYLE.match(name)
    if m:
        return int(m.group(1))
    return 1 if _TITLE_STYLE.match(name) else 0


def _all_bold(p: Any, style_bold: bool) -> bool:
    """Whether every run with text in the paragraph is bold."""
    seen = False
    for run in p.iter(W + "r"):
        if any(a.tag in _SKIP for a in run.iterancestors()):
            continue
        texts = "".join(t.text or "" for t in run.findall(W + "t"))
        if not texts.strip():
            continue
        seen = True
        rpr = run.find(W + "rPr")
        b = rpr.find(W + "b") if rpr is not None else None
        if not (_on(b) if b is not None else style_bold):
            return False
    return seen


# ---------------------------------------------------------------- blocks


def _blocks(items: list[_Para | _Table], *, infer: bool) -> list[Block]:
    inferred = _inferred_levels(items) if infer else {}
    blocks: list[Block] = []
    list_lines: list[str] = []
    list_id: str | None = None

    def flush() -> None:
        if list_lines:
            blocks.append(Block(BlockKind.LIST, "\n".join(list_lines)))
            list_lines.clear()

    for i, item in enumerate(items):
        if isinstance(item, _Table):
            flush()
            blocks.extend(_table_blocks(item.rows))
            continue
        text = _tidy(item.text)
        level = item.heading or inferred.get(i, 0)
        if text.strip() and level:
            flush()
            marker = f"{item.marker} " if item.marker and item.marker != BULLET else ""
            blocks.append(
                Block(BlockKind.HEADING, " ".join(f"{marker}{text}".split()), level=level)
            )
        elif text.strip() and item.marker:
            if item.list_id != list_id and item.ilvl == 0:
                flush()  # another list begins
            list_id = item.list_id
            indent = "  " * min(item.ilvl, 8)
            list_lines.append(f"{indent}{item.marker} {_options_split(text)}")
        elif text.strip():
            flush()
            if item.bold and _is_question_line(text):
                text = f"**{text.strip()}**"
            blocks.append(Block(BlockKind.PARAGRAPH, _options_split(text)))
        for box in item.boxes:
            flush()
            blocks.append(Block(BlockKind.PARAGRAPH, _options_split(_tidy(box))))
    flush()
    return blocks


def _tidy(text: str) -> str:
    """Line ends normalised, trailing spaces dropped; tabs inside lines kept."""
    lines = [line.rstrip() for line in text.replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip("\n")


def _options_split(text: str) -> str:
    """Options parted by tabs ("A.北京\\tB.上海\\tC.广州") -> one option per line."""
    lines: list[str] = []
    for line in text.split("\n"):
        if "\t" in line and _OPTION_AFTER_TAB.search(line):
            parts = [p.strip() for p in _OPTION_AFTER_TAB.split(line)]
            lines.extend(p for p in parts if p)
        else:
            lines.append(line)
    return "\n".join(lines)


def _is_question_line(text: str) -> bool:
    return "\n" not in text.strip() and bool(_QUESTION_END.search(text))


def _table_blocks(rows: list[list[str]]) -> list[Block]:
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        return []
    width = max(len(r) for r in rows)
    cols = [k for k in range(width) if any(k < len(r) and r[k].strip() for r in rows)]
    rows = [[r[k] if k < len(r) else "" for k in cols] for r in rows]
    cells = [c for r in rows for c in r if c.strip()]
    letters = [_option_letter(c) for c in cells]
    if len(cells) >= 2 and all(letters) and {"A", "B"} <= set(letters):
        # Exam options laid out in a grid: one option per line, in reading order.
        return [Block(BlockKind.PARAGRAPH, "\n".join(cells))]
    if len(cols) == 1:
        return [Block(BlockKind.PARAGRAPH, r[0]) for r in rows if r[0].strip()]
    return [pipe_table(rows)]


def _option_letter(cell: str) -> str | None:
    m = _OPTION_CELL.match(cell)
    return (m.group(1) or m.group(2)) if m else None


# ---------------------------------------------------------------- inferred headings


def _inferred_levels(items: list[_Para | _Table]) -> dict[int, int]:
    """Heading levels of paragraphs that look like headings, in a document without
    heading styles: section numbering first (ranked as for PDFs), then short bold lines
    one level below the numbered ones."""
    numbered: dict[int, tuple[int, int]] = {}
    bold: list[int] = []
    for i, item in enumerate(items):
        if not isinstance(item, _Para) or item.marker or "\n" in item.text.strip():
            continue
        text = " ".join(item.text.split())
        if not _heading_shape(text) or is_answer_key_line(text):
            continue
        number = heading_number(text)
        if number is not None and number[0] != "decimal-dot":
            if number[0] == "decimal" and number[1] < 2:
                continue  # "3 apples": a number, not a section
            numbered[i] = _NUMBER_RANK[number[0]] if number[0] != "decimal" else (1, number[1])
        elif item.bold and not _is_question_line(text) and len(text) <= 40:
            bold.append(i)
    ranks = sorted(set(numbered.values()))
    levels = {i: ranks.index(key) + 1 for i, key in numbered.items()}
    below = len(ranks) + 1
    levels.update({i: below for i in bold})
    return levels


_NUMBER_RANK = {
    "part": (0, 1),
    "chapter": (1, 1),
    "section": (1, 2),
    "cn-enum": (2, 1),
    "cn-paren": (2, 2),
}


def _heading_shape(text: str) -> bool:
    """Short, no sentence end, not an item, option or Q/A line."""
    if not text or _NOT_HEADING_START.match(text) or _OPTION_START.match(text):
        return False
    stripped = text.rstrip(":：")
    if stripped.endswith(_SENTENCE_END) or _QUESTION_END.search(stripped):
        return False
    width = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text if c != " ")
    return width <= _MAX_HEADING_WIDTH
