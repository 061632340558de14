"""Two-column pages drawn out of reading order (left line, right line, ...): finding the
gutter from PDFium's text rectangles, reading the page's text in runs that stay on one
side of it, and putting the runs in column order."""

from __future__ import annotations

import ctypes
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from ingest.parse.pdf_lines import HYPHEN_MARKS, drop_hyphen_marks

# A box on the page: x0, y0, x1, y1 in PDF points (y grows upwards).
Box = tuple[float, float, float, float]

# Each column has at least this many text runs ...
COLUMN_MIN_LINES = 6
# ... spread over at least this share of the height of both columns together ...
COLUMN_MIN_HEIGHT = 0.5
# ... and its lines fill on median at least this share of the column's width (a table's
# cells do not).
COLUMN_MIN_FILL = 0.5
# A line is "long" (counts for finding the gutter) from this share of the text's width.
LONG_LINE = 0.2
# The drawing order goes back to an earlier column at least this many times: the page
# is drawn interleaved (left line, right line, ...), not column by column.
OUT_OF_ORDER_MIN = 3
# ... and at least this share of the shorter column's lines (a form's header fields
# drawn left, right, left over columns in order are not enough).
OUT_OF_ORDER_SHARE = 0.2
# A blank line (new paragraph) where the line pitch grows beyond this factor.
PARAGRAPH_GAP = 1.5


def find_gutter(boxes: Sequence[Box]) -> tuple[float, float] | None:
    """The free band (x0, x1) between the two columns of a page whose text runs
    ``boxes`` (in drawing order) are drawn out of column order; None for any other page:
    one column, a table, or two columns drawn column by column."""
    boxes = _runs(boxes)
    if len(boxes) < 2 * COLUMN_MIN_LINES:
        return None
    lo = min(b[0] for b in boxes)
    hi = max(b[2] for b in boxes)
    width = hi - lo
    if width <= 0:
        return None
    mid = (lo + hi) / 2
    # Cheap first look: how often the drawing order switches halves of the page.
    sides = [b[2] <= mid for b in boxes if b[2] <= mid or b[0] >= mid]
    if sum(a != b for a, b in pairwise(sides)) < 2 * OUT_OF_ORDER_MIN:
        return None
    long = [b for b in boxes if b[2] - b[0] >= LONG_LINE * width]
    # The gutter: the widest band near the middle that (almost) no long line crosses;
    # a few may (a title, a wide caption).
    xs = sorted(
        {lo + 0.3 * width, lo + 0.7 * width}
        | {x for b in long for x in (b[0], b[2]) if lo + 0.3 * width < x < lo + 0.7 * width}
    )
    allowed = max(1, len(long) // 8)
    band: tuple[float, float] | None = None
    start: float | None = None
    for a, b in pairwise(xs):
        if sum(box[0] < b and box[2] > a for box in long) <= allowed:
            start = a if start is None else start
            if band is None or b - start > band[1] - band[0]:
                band = (start, b)
        else:
            start = None
    if band is None or band[1] - band[0] < 1:
        return None
    return band if _two_columns_out_of_order(boxes, band) else None


def _runs(boxes: Sequence[Box]) -> list[Box]:
    """Boxes drawn one after another on one line, close together, merged: PDFium starts a
    new rectangle at every change of font, a gutter is wider than a word space."""
    out: list[Box] = []
    for b in boxes:
        if out:
            a = out[-1]
            gap = b[0] - a[2]
            if _same_row(a, b) and -1 <= gap <= max(a[3] - a[1], b[3] - b[1]):
                out[-1] = (a[0], min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                continue
        out.append(b)
    return out


def _side(box: Box, band: tuple[float, float]) -> int:
    """0 for the left column, 1 for the right, -1 for a box across the gutter."""
    if box[2] <= band[0] + 0.5:
        return 0
    if box[0] >= band[1] - 0.5:
        return 1
    return -1


def _two_columns_out_of_order(boxes: Sequence[Box], band: tuple[float, float]) -> bool:
    sides = [_side(b, band) for b in boxes]
    columns = [[b for b, s in zip(boxes, sides, strict=True) if s == side] for side in (0, 1)]
    across = [b for b, s in zip(boxes, sides, strict=True) if s == -1]
    if min(len(c) for c in columns) < COLUMN_MIN_LINES:
        return False
    if len(across) * 4 > len(columns[0]) + len(columns[1]):
        return False
    both = columns[0] + columns[1]
    height = max(b[3] for b in both) - min(b[1] for b in both)
    for side, column in enumerate(columns):
        if max(b[3] for b in column) - min(b[1] for b in column) < COLUMN_MIN_HEIGHT * height:
            return False
        rows = _rows(column)
        start = band[1] if side else min(r[0] for r in rows)
        end = max(r[2] for r in rows) if side else band[0]
        if end - start <= 0:
            return False
        fills = sorted((r[2] - r[0]) / (end - start) for r in rows)
        if fills[len(fills) // 2] < COLUMN_MIN_FILL:
            return False
    # Drawing order against reading order: segments between the lines across the
    # gutter, top to bottom; in each, the left column before the right one.
    cuts = sorted((b[1] + b[3]) / 2 for b in across)
    back = 0
    last: tuple[int, int] | None = None
    for box, side in zip(boxes, sides, strict=True):
        if side == -1:
            continue
        centre = (box[1] + box[3]) / 2
        key = (sum(c > centre for c in cuts), side)
        back += last is not None and key < last
        last = key
    return back >= max(OUT_OF_ORDER_MIN, OUT_OF_ORDER_SHARE * min(len(c) for c in columns))


def _rows(boxes: Sequence[Box]) -> list[Box]:
    """Boxes on one baseline merged (runs of one line split by a font change)."""
    rows: list[list[float]] = []
    for b in sorted(boxes, key=lambda b: -b[1]):
        if rows and _same_row(rows[-1], b):
            row = rows[-1]
            row[0], row[1] = min(row[0], b[0]), min(row[1], b[1])
            row[2], row[3] = max(row[2], b[2]), max(row[3], b[3])
        else:
            rows.append(list(b))
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def _same_row(row: Sequence[float], b: Box) -> bool:
    overlap = min(row[3], b[3]) - max(row[1], b[1])
    return overlap > 0.5 * min(row[3] - row[1], b[3] - b[1])


@dataclass(frozen=True, slots=True)
class Piece:
    """A run of text on one line and on one side of the gutter."""

    text: str
    box: Box


def read_pieces(textpage: Any, band: tuple[float, float]) -> list[Piece]:
    """The text of a PDFium text page as runs that never cross from one column to the
    other (PDFium joins a left and a right line that share a baseline into one line)."""
    import pypdfium2.raw as pdfium_c

    count = pdfium_c.FPDFText_CountChars(textpage)
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    boxes = (ctypes.byref(left), ctypes.byref(right), ctypes.byref(bottom), ctypes.byref(top))
    pieces: list[Piece] = []
    chars: list[str] = []
    box = [math.inf, math.inf, -math.inf, -math.inf]

    def flush() -> None:
        nonlocal chars, box
        text = "".join(chars).strip()
        if text and box[0] < math.inf:
            pieces.append(Piece(text, (box[0], box[1], box[2], box[3])))
        chars, box = [], [math.inf, math.inf, -math.inf, -math.inf]

    for i in range(count):
        code = pdfium_c.FPDFText_GetUnicode(textpage, i)
        if code in (10, 13):
            if code == 10:
                flush()
            continue
        if code in HYPHEN_MARKS:
            # Kept, unmeasured, for ``column_text`` to join the word's halves.
            chars.append(chr(code))
            continue
        ch = chr(code) if 0 < code < 0x110000 else "\ufffd"
        if ch.isspace():
            chars.append(ch)
            continue
        pdfium_c.FPDFText_GetCharBox(textpage, i, *boxes)
        if box[0] < math.inf:
            jumped = (box[2] <= band[0] + 0.5 and left.value >= band[1] - 0.5) or (
                left.value < box[0] - 0.5 and box[0] >= band[1] - 0.5
            )
            lower = top.value < box[1]  # wholly below the run so far: a new line
            if jumped or lower:
                flush()
        chars.append(ch)
        box[0], box[1] = min(box[0], left.value), min(box[1], bottom.value)
        box[2], box[3] = max(box[2], right.value), max(box[3], top.value)
    flush()
    return pieces


def column_text(pieces: Sequence[Piece], band: tuple[float, float]) -> str:
    """Page text in reading order: the lines across the gutter (title, abstract, wide
    captions, page numbers) where they stand, and between them the left column's lines
    top to bottom, then the right column's."""
    across = sorted((p for p in pieces if _side(p.box, band) == -1), key=lambda p: -p.box[3])
    segments: list[list[list[Piece]]] = [[[], []] for _ in range(len(across) + 1)]
    for p in pieces:
        side = _side(p.box, band)
        if side == -1:
            continue
        centre = (p.box[1] + p.box[3]) / 2
        segments[sum((a.box[1] + a.box[3]) / 2 > centre for a in across)][side].append(p)
    blocks: list[tuple[bool, list[tuple[str, float]]]] = []  # (across, lines)
    for k, segment in enumerate(segments):
        blocks.extend((False, lines) for column in segment if (lines := _column_lines(column)))
        if k < len(across):
            line = _column_lines([across[k]])
            if blocks and blocks[-1][0]:
                blocks[-1][1].extend(line)  # lines across the gutter one after another
            else:
                blocks.append((True, line))
    pitches = sorted(a[1] - b[1] for _, lines in blocks for a, b in pairwise(lines) if a[1] > b[1])
    pitch = pitches[len(pitches) // 2] if pitches else math.inf
    out: list[str] = []
    apart = False
    for is_across, lines in blocks:
        if out and (is_across or apart):
            out.append("")  # a line across the gutter stands apart
        apart = is_across
        for i, (text, baseline) in enumerate(lines):
            if i and lines[i - 1][1] - baseline > PARAGRAPH_GAP * pitch:
                out.append("")
            out.append(text)
    # A run that ends in PDFium's hyphen mark goes on in the column's next line.
    return drop_hyphen_marks("\n".join(out))


def _column_lines(pieces: Sequence[Piece]) -> list[tuple[str, float]]:
    """The pieces of one column as lines top to bottom: (text, baseline)."""
    rows: list[tuple[Box, list[Piece]]] = []
    for p in sorted(pieces, key=lambda p: -p.box[1]):
        if rows and _same_row(rows[-1][0], p.box):
            box, row = rows[-1]
            merged = (
                min(box[0], p.box[0]),
                min(box[1], p.box[1]),
                max(box[2], p.box[2]),
                max(box[3], p.box[3]),
            )
            rows[-1] = (merged, [*row, p])
        else:
            rows.append((p.box, [p]))
    return [
        (" ".join(p.text for p in sorted(row, key=lambda p: p.box[0])), box[1]) for box, row in rows
    ]
