"""Spreadsheets (.xlsx, .csv) -> blocks.

Each sheet of a workbook is a section headed by its name (a CSV file has one sheet and
no heading). Its first non-empty row is the header (a lone cell above it, such as a
merged caption "2024 年题库", is kept as a paragraph). Empty rows and columns are
skipped; merged cells repeat their value in every cell they cover; formulas give their
cached values (``data_only``); dates are written ISO-style.

* A sheet whose header names a question column and an answer or option columns
  (问题/题目/question/Q, 答案/answer/A, 选项/options or columns "A" "B" "C" "D" / "选项A",
  解析/explanation, 科目/subject, 题型/type, 难度/difficulty, in Chinese or English,
  case-insensitive) is an FAQ or a question bank: each row becomes one block marked a
  record (``BlockHint.kind``), which the chunker makes exactly one chunk of that kind
  with the row's question as its question. A bank with option or question-type columns
  gives ``question`` chunks, one without gives ``faq`` chunks. The row's text is its
  question, its options ("A. 北京"), then "header: value" lines for the answer, the
  explanation and every other column (subject and type included, so that search sees
  them).
* Any other sheet is one Markdown pipe table, which the chunker cuts between rows with
  the header row repeated atop every chunk (``BlockHint.header_lines``).

Rows are streamed (``read_only``), and a document is refused past ``SheetLimits``
rows or cells, so memory stays bounded.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.documents.models import ChunkKind
from app.text.titles import declared_title
from ingest.errors import IngestError, error_detail
from ingest.parse.detect import decode_text
from ingest.parse.office_table import pipe_table
from ingest.parse.zipsafe import check_office_zip
from ingest.types import Block, BlockHint, BlockKind, ParsedDocument

SHEET_EMPTY = "The spreadsheet contains no data: every sheet is empty. Upload a file with content."
SHEET_TOO_MANY_ROWS = (
    "The spreadsheet has more than {limit} rows of data; it was not indexed. Split it into "
    "smaller files (or remove unused rows) and upload them."
)
SHEET_TOO_MANY_CELLS = (
    "The spreadsheet has more than {limit} filled cells; it was not indexed. Split it into "
    "smaller files (or remove unused columns) and upload them."
)
SHEET_DAMAGED = (
    "The Excel file is damaged and cannot be read ({detail}). Open it in Excel, save it "
    "again as .xlsx and upload it."
)


@dataclass(frozen=True, slots=True)
class SheetLimits:
    max_rows: int = 50_000  # non-empty rows, all sheets together
    max_cells: int = 1_000_000  # non-empty cells, all sheets together
    max_columns: int = 256  # columns read per row (wider rows are cut)


LIMITS = SheetLimits()
# Consecutive empty rows after which a sheet is taken to have ended.
_MAX_BLANK_RUN = 100_000

# Header words by role, compared lower-cased without spaces, "_", "-", ":" or "*".
_ROLES: dict[str, frozenset[str]] = {
    "question": frozenset(
        [
            "问题",
            "问",
            "题目",
            "试题",
            "题干",
            "问题描述",
            "题目内容",
            "question",
            "questions",
            "q",
            "stem",
            "prompt",
            "常见问题",
            "faq",
        ]
    ),
    "answer": frozenset(
        [
            "答案",
            "答",
            "回答",
            "参考答案",
            "正确答案",
            "标准答案",
            "解答",
            "answer",
            "answers",
            "a",
            "correctanswer",
            "reply",
            "key",
        ]
    ),
    "options": frozenset(["选项", "备选项", "options", "option", "choices", "选项内容"]),
    "explanation": frozenset(
        [
            "解析",
            "答案解析",
            "试题解析",
            "解释",
            "说明",
            "分析",
            "explanation",
            "explanations",
            "analysis",
            "rationale",
        ]
    ),
    "subject": frozenset(
        ["科目", "学科", "课程", "subject", "course", "分类", "类别", "category", "topic"]
    ),
    "type": frozenset(
        ["题型", "类型", "题目类型", "试题类型", "type", "questiontype", "qtype", "kind"]
    ),
    "difficulty": frozenset(["难度", "难易度", "difficulty", "level"]),
}
# Option columns: "A", "选项A", "选项 a", "Option A", "option_a", "A选项".
_OPTION_HEADER = re.compile(r"^(?:选项|option|choice)?([a-h])(?:选项)?$", re.IGNORECASE)
_HEADER_NOISE = re.compile(r"[\s_\-:：*＊]+")
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff]")


class _Counter:
    def __init__(self, limits: SheetLimits) -> None:
        self.limits = limits
        self.rows = 0
        self.cells = 0

    def add(self, row: Sequence[str]) -> None:
        self.rows += 1
        self.cells += sum(1 for c in row if c)
        if self.rows > self.limits.max_rows:
            raise IngestError(SHEET_TOO_MANY_ROWS.format(limit=self.limits.max_rows))
        if self.cells > self.limits.max_cells:
            raise IngestError(SHEET_TOO_MANY_CELLS.format(limit=self.limits.max_cells))


def parse_sheet(path: Path, kind: str, *, limits: SheetLimits = LIMITS) -> ParsedDocument:
    """Parse an .xlsx workbook (``kind`` "xlsx") or a CSV file ("csv")."""
    counter = _Counter(limits)
    blocks: list[Block] = []
    notes: list[str] = []
    meta_title: str | None = None
    if kind == "csv":
        rows = _csv_rows(path, limits)
        blocks.extend(_sheet_blocks(None, rows, counter, notes))
    else:
        check_office_zip(path, suffix=".xlsx", label="Excel", main_part="xl/workbook.xml")
        meta_title = _read_xlsx(path, counter, blocks, notes, limits)
    if not any(b.kind is not BlockKind.HEADING for b in blocks):
        raise IngestError(SHEET_EMPTY)
    title = meta_title or next((b.text for b in blocks if b.kind is BlockKind.HEADING), None)
    return ParsedDocument(
        blocks=tuple(blocks), title=title, notes=tuple(dict.fromkeys(notes)), meta_title=meta_title
    )


# ---------------------------------------------------------------- reading


def _read_xlsx(
    path: Path, counter: _Counter, blocks: list[Block], notes: list[str], limits: SheetLimits
) -> str | None:
    import openpyxl  # imported on first use

    try:
        wb = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    except IngestError:
        raise
    except Exception as exc:  # openpyxl raises many kinds on a damaged workbook
        raise IngestError(SHEET_DAMAGED.format(detail=error_detail(exc))) from None
    try:
        title = wb.properties.title if wb.properties is not None else None
        for ws in wb.worksheets:
            if getattr(ws, "sheet_state", "visible") != "visible":
                continue  # hidden sheets hold lookups and scratch work
            merges = _merged_ranges(wb, ws)
            rows = _xlsx_rows(ws, merges, limits)
            blocks.extend(_sheet_blocks(str(ws.title), rows, counter, notes))
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(SHEET_DAMAGED.format(detail=error_detail(exc))) from None
    finally:
        wb.close()
    return declared_title(title)


def _merged_ranges(wb: Any, ws: Any) -> list[tuple[int, int, int, int]]:
    """(min_row, min_col, max_row, max_col) of each merged range of a read-only sheet,
    streamed from the sheet's XML (read-only sheets do not load them)."""
    from lxml import etree
    from openpyxl.utils.cell import range_boundaries

    archive = getattr(wb, "_archive", None)
    part = getattr(ws, "_worksheet_path", None)
    if archive is None or part is None:
        return []
    out: list[tuple[int, int, int, int]] = []
    with archive.open(part) as f:
        for _, el in etree.iterparse(f, events=("end",), resolve_entities=False, no_network=True):
            tag = el.tag if isinstance(el.tag, str) else ""
            if tag.endswith("}mergeCell") and el.get("ref"):
                try:
                    c1, r1, c2, r2 = range_boundaries(el.get("ref"))
                except ValueError:
                    continue
                if c1 and r1 and c2 and r2 and len(out) < 10_000:
                    out.append((r1, c1, r2, c2))
            if tag.endswith("}row") or tag.endswith("}mergeCell"):
                el.clear()
    return out


def _xlsx_rows(
    ws: Any, merges: list[tuple[int, int, int, int]], limits: SheetLimits
) -> Iterator[list[str]]:
    # Values of merged ranges' top-left cells, filled into the rest of each range; only
    # the ranges covering the current row are looked at.
    pending = sorted(merges, reverse=True)  # popped from the end: by first row
    active: list[tuple[int, int, int, int, str]] = []
    blank_run = 0
    rows = ws.iter_rows(min_row=1, min_col=1, max_col=limits.max_columns, values_only=True)
    for r, row in enumerate(rows, start=1):
        cells = [_value(v) for v in row[: limits.max_columns]]
        blank_run = 0 if any(cells) else blank_run + 1
        if blank_run > _MAX_BLANK_RUN:
            return  # a stated size far past the data (openpyxl pads up to it)
        active = [m for m in active if m[2] >= r]
        while pending and pending[-1][0] <= r:
            r1, c1, r2, c2 = pending.pop()
            if r2 >= r:
                top = cells[c1 - 1] if r1 == r and c1 - 1 < len(cells) else ""
                active.append((r1, c1, r2, c2, top))
        for _, c1, _, c2, value in active:
            for c in range(c1, min(c2, limits.max_columns) + 1):
                while len(cells) < c:
                    cells.append("")
                if not cells[c - 1]:
                    cells[c - 1] = value
        yield cells


def _value(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    if isinstance(v, dt.datetime):
        return v.date().isoformat() if v.time() == dt.time() else v.isoformat(sep=" ")
    if isinstance(v, dt.date | dt.time):
        return v.isoformat()
    return str(v).strip()


def _csv_rows(path: Path, limits: SheetLimits) -> Iterator[list[str]]:
    text = decode_text(path.read_bytes()).removeprefix("\ufeff")
    if not text.strip():
        raise IngestError(SHEET_EMPTY)
    delimiter = _sniff(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            yield [c.strip() for c in row[: limits.max_columns]]
    except csv.Error:
        # A stray quote or NUL: read the rest without quoting rules.
        return


def _sniff(text: str) -> str:
    """The delimiter among comma, semicolon, tab and bar that splits the first lines into
    the most consistent number of fields (ties: the order given)."""
    sample = text[:20_000].splitlines()[:30]
    best, best_score = ",", (0, 0)
    for delimiter in (",", ";", "\t", "|"):
        try:
            widths = [len(r) for r in csv.reader(sample, delimiter=delimiter) if any(r)]
        except csv.Error:
            continue
        if not widths:
            continue
        common = max(set(widths), key=widths.count)
        score = (widths.count(common) if common > 1 else 0, common)
        if score > best_score:
            best, best_score = delimiter, score
    return best


# ---------------------------------------------------------------- blocks


def _sheet_blocks(
    name: str | None, rows: Iterable[list[str]], counter: _Counter, notes: list[str]
) -> list[Block]:
    kept: list[list[str]] = []
    for row in rows:
        if not any(row):
            continue
        while row and not row[-1]:
            row.pop()
        counter.add(row)
        kept.append(row)
    if not kept:
        return []
    width = max(len(r) for r in kept)
    cols = [k for k in range(width) if any(k < len(r) and r[k] for r in kept)]
    kept = [[r[k] if k < len(r) else "" for k in cols] for r in kept]
    blocks: list[Block] = []
    if name is not None:
        blocks.append(Block(BlockKind.HEADING, " ".join(name.split()) or "Sheet", level=1))
    # A caption above the header: one filled cell (often merged across the table).
    while len(kept) > 1 and _distinct(kept[0]) == 1 and _distinct(kept[1]) > 1:
        blocks.append(Block(BlockKind.PARAGRAPH, next(c for c in kept[0] if c)))
        kept = kept[1:]
    header, body = kept[0], kept[1:]
    roles = _roles(header)
    if roles is not None and body:
        kind = ChunkKind.QUESTION if ("options" in roles or "type" in roles) else ChunkKind.FAQ
        notes.append("sheet-question-bank" if kind is ChunkKind.QUESTION else "sheet-faq")
        blocks.extend(_record(header, roles, row, kind) for row in body)
    elif body:
        notes.append("sheet-table")
        blocks.append(pipe_table([header, *body]))
    else:
        blocks.append(Block(BlockKind.PARAGRAPH, "\n".join(c for c in header if c)))
    return blocks


def _distinct(row: Sequence[str]) -> int:
    return len({c for c in row if c})


def _roles(header: Sequence[str]) -> dict[str, list[int]] | None:
    """Columns by role when the header is an FAQ's or a question bank's, else None."""
    keys = [_HEADER_NOISE.sub("", h).lower() for h in header]
    letters = {k: m.group(1).upper() for k, h in enumerate(keys) if (m := _OPTION_HEADER.match(h))}
    # Columns "A" "B" ... are options when there are at least two in a row from A.
    option_cols: list[int] = []
    if {"A", "B"} <= set(letters.values()):
        option_cols = [k for k, letter in letters.items()]
    roles: dict[str, list[int]] = {}
    for k, key in enumerate(keys):
        if k in option_cols:
            roles.setdefault("letters", []).append(k)
            continue
        for role, words in _ROLES.items():
            if key in words:
                roles.setdefault(role, []).append(k)
                break
    if "letters" in roles:
        roles.setdefault("options", [])
    if "question" not in roles or not ({"answer", "options"} & roles.keys()):
        return None
    return roles


def _label(header: str, value: str) -> str:
    sep = "：" if _CJK.search(header) else ": "
    return f"{header.strip()}{sep}{value}" if header.strip() else value


def _record(
    header: Sequence[str], roles: dict[str, list[int]], row: list[str], kind: ChunkKind
) -> Block:
    question_col = roles["question"][0]
    question = row[question_col]
    used = {question_col}
    lines: list[str] = [question] if question else []
    for k in roles.get("letters", []):
        used.add(k)
        if row[k]:
            letter = _OPTION_HEADER.match(_HEADER_NOISE.sub("", header[k]).lower())
            lines.append(f"{letter.group(1).upper() if letter else header[k]}. {row[k]}")
    for k in roles.get("options", []):
        used.add(k)
        if row[k]:
            lines.append(row[k])
    order = ["answer", "explanation", "subject", "type", "difficulty"]
    for role in order:
        for k in roles.get(role, []):
            if k not in used:
                used.add(k)
                if row[k]:
                    lines.append(_label(header[k], row[k]))
    lines.extend(_label(header[k], row[k]) for k in range(len(row)) if k not in used and row[k])
    text = "\n".join(lines)
    if not question:
        return Block(BlockKind.PARAGRAPH, text)  # a row without a question: plain text
    return Block(BlockKind.PARAGRAPH, text, hint=BlockHint(kind=kind, question=question))
