"""Page layout for PDFs without help from the file: headings from font size, weight and
numbering; running headers, footers and page numbers; line joining inside paragraphs.

The heading finder works on lines that PDFium measured (text, box, font size, weight);
everything else here works on plain page text, so it applies to whichever extractor
read the page.
"""

from __future__ import annotations

import ctypes
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from ingest.parse.outline import OutlineEntry

# --- Lines measured by PDFium ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """One text line as PDFium laid it out, in its reading order on the page.

    Coordinates are PDF points with y growing upwards; ``size`` and ``weight`` are those
    of most of the line's characters; ``bold_share`` is the share of bold characters.
    """

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    size: float
    weight: int
    bold_share: float

    @property
    def chars(self) -> int:
        return len("".join(self.text.split()))


# Font names that mean a heavy face even where the font declares no weight.
_BOLD_NAME = re.compile(r"bold|heavy|black|semibold|demi|[-_,]bd\b|cmbx|hei\b|heiti|黑", re.I)


def read_lines(textpage: Any) -> list[Line]:
    """The lines of a PDFium text page (``pypdfium2.raw`` FPDF_TEXTPAGE handle)."""
    import pypdfium2.raw as pdfium_c

    count = pdfium_c.FPDFText_CountChars(textpage)
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    boxes = (ctypes.byref(left), ctypes.byref(right), ctypes.byref(bottom), ctypes.byref(top))
    name_buffer = ctypes.create_string_buffer(128)
    flags = ctypes.c_int()
    lines: list[Line] = []
    chars: list[str] = []
    sizes: Counter[float] = Counter()
    weights: Counter[int] = Counter()
    bold = 0
    x0 = y0 = math.inf
    x1 = y1 = -math.inf
    name_bold: dict[int, bool] = {}

    def flush() -> None:
        nonlocal chars, sizes, weights, bold, x0, y0, x1, y1
        text = "".join(chars).strip()
        if text and sizes:
            total = sum(sizes.values())
            lines.append(
                Line(
                    text=text,
                    x0=x0,
                    y0=y0,
                    x1=x1,
                    y1=y1,
                    size=sizes.most_common(1)[0][0],
                    weight=weights.most_common(1)[0][0],
                    bold_share=bold / total,
                )
            )
        chars, sizes, weights, bold = [], Counter(), Counter(), 0
        x0 = y0 = math.inf
        x1 = y1 = -math.inf

    for i in range(count):
        code = pdfium_c.FPDFText_GetUnicode(textpage, i)
        if code in (10, 13):
            # PDFium ends each line it laid out with a generated CR LF.
            if code == 10:
                flush()
            continue
        ch = chr(code) if 0 < code < 0x110000 else "\ufffd"
        chars.append(ch)
        if ch.isspace() or code in (2, 0xFFFE):
            continue
        pdfium_c.FPDFText_GetCharBox(textpage, i, *boxes)
        x0, x1 = min(x0, left.value), max(x1, right.value)
        y0, y1 = min(y0, bottom.value), max(y1, top.value)
        size = round(pdfium_c.FPDFText_GetFontSize(textpage, i) * 2) / 2
        weight = int(pdfium_c.FPDFText_GetFontWeight(textpage, i))
        sizes[size] += 1
        weights[weight] += 1
        if weight >= 600:
            bold += 1
            continue
        # The font's name is asked once per weight value and font flags seen.
        pdfium_c.FPDFText_GetFontInfo(textpage, i, name_buffer, len(name_buffer), flags)
        key = hash((name_buffer.value, flags.value))
        if key not in name_bold:
            name = name_buffer.value.decode("utf-8", "replace")
            name_bold[key] = bool(_BOLD_NAME.search(name)) or bool(flags.value & 0x40000)
        bold += name_bold[key]
    flush()
    return lines


# --- Running headers, footers and page numbers ------------------------------------------

# How many lines at the top and at the bottom of a page can be page furniture.
EDGE_LINES = 3
# A line is a running header or footer when it (digits aside) sits at a page edge on at
# least this share of the pages (and on two pages at least).
RUNNING_SHARE = 0.4

_PAGE_NUMBER = re.compile(
    r"""
    [-–—~·•|\s]* \d{1,4} [-–—~·•|\s]*                       # 12, - 12 -, | 12 |
    | (?:page|p\.|seite|página|pagina)\s*\d{1,4}(?:\s*(?:of|/|von|de)\s*\d{1,4})?
    | \d{1,4}\s*(?:/|of)\s*\d{1,4}                          # 3 / 9, 3 of 9
    | 第\s*\d{1,4}\s*[页頁⻚](?:\s*[,，]?\s*共\s*\d{1,4}\s*[页頁⻚])?
    | 共\s*\d{1,4}\s*[页頁⻚]\s*[,，]?\s*第\s*\d{1,4}\s*[页頁⻚]
    | [ivxlc]{1,6}                                          # roman page numbers: iv, xii
    """,
    re.IGNORECASE | re.VERBOSE,
)


def is_page_number(line: str) -> bool:
    """True for a line that is a bare page number: ``12``, ``- 12 -``, ``第 12 页``,
    ``Page 3 of 9``."""
    return _PAGE_NUMBER.fullmatch(line.strip()) is not None


def _line_key(line: str) -> str:
    """A line with digits and whitespace removed, for matching running headers whose page
    number changes."""
    text = unicodedata.normalize("NFKC", line).casefold()
    return re.sub(r"\d+", "#", "".join(text.split()))


def _edges(lines: Sequence[str]) -> list[int]:
    """Indices of the non-blank lines at the top and bottom edges of a page."""
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return sorted(set(filled[:EDGE_LINES]) | set(filled[-EDGE_LINES:]))


def running_keys(pages: Sequence[Sequence[str]]) -> frozenset[str]:
    """Keys (see ``_line_key``) of lines that repeat at the edges of many pages."""
    if len(pages) < 2:
        return frozenset()
    seen: Counter[str] = Counter()
    for lines in pages:
        seen.update({_line_key(lines[i]) for i in _edges(lines)})
    need = max(2, math.ceil(RUNNING_SHARE * len(pages)))
    return frozenset(key for key, n in seen.items() if n >= need and key.strip("#"))


def furniture(lines: Sequence[str], keys: Iterable[str]) -> set[int]:
    """Indices of a page's lines that are running headers, footers or page numbers."""
    keys = frozenset(keys)
    return {i for i in _edges(lines) if is_page_number(lines[i]) or _line_key(lines[i]) in keys}


def strip_furniture(text: str, keys: Iterable[str]) -> str:
    """A page's text without its running headers, footers and page numbers."""
    lines = text.split("\n")
    drop = furniture(lines, keys)
    return "\n".join(line for i, line in enumerate(lines) if i not in drop).strip("\n")


def strip_repeats(texts: Sequence[str], keys: frozenset[str]) -> list[str]:
    """Pages' texts with running headers and footers kept only where they first appear,
    and page numbers removed everywhere.

    A running header often names the document ("XX University exam paper, 2022"): once,
    it tells search what the document is; on every page it is noise in every chunk.
    """
    seen: set[str] = set()
    out = []
    for text in texts:
        lines = text.split("\n")
        first = {_line_key(lines[i]) for i in _edges(lines)} & keys - seen
        seen |= first
        out.append(strip_furniture(text, keys - first))
    return out


# --- Joining the lines of a paragraph -----------------------------------------------------

_CJK = (
    "\u2e80-\u2fdf\u3001-\u303f\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\ufe30-\ufe4f\uff01-\uff60\U00020000-\U0003ffff"
)
_IDEOGRAPH = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
# A line break between two CJK characters (or CJK punctuation) is only a wrap.
_CJK_BREAK = re.compile(rf"(?<=[{_CJK}])[ \t]*\n[ \t]*(?=[{_CJK}])")
# Justified CJK text is often extracted with a space between every two ideographs.
_CJK_SPACE = re.compile(rf"(?<=[{_IDEOGRAPH}]) (?=[{_IDEOGRAPH}])")
# A word hyphenated at a line end: "exam-\nple". A capital after the break ("Jean-\nPaul")
# or a digit keeps the hyphen.
_HYPHEN_BREAK = re.compile(r"(?<=[^\W\d_]{2})[-\u00ad\u2010]\n[ \t]*(?=[a-z])")
# PDFium's marks for a hyphen it joined itself (U+0002 or U+FFFE), with or without the
# line break it may keep.
_PDFIUM_HYPHEN = re.compile("[\u0002\ufffe]\n?")
# A Latin line that runs on: it ends inside a sentence and the next line starts lower-case.
_LATIN_BREAK = re.compile(r"(?<=[a-z,;)\]])[ \t]*\n[ \t]*(?=[a-z(])")
# Lines that look like code or math are left as they are.
_CODE = re.compile(r"[\\{}=<>]|^\s{2,}|[;{]$")


def join_lines(text: str) -> str:
    """Join lines the page only wrapped: CJK with no space, hyphenated words without the
    hyphen, Latin prose with a space; other line breaks stay."""
    text = _PDFIUM_HYPHEN.sub("", text)
    text = _CJK_BREAK.sub("", text)
    text = _CJK_SPACE.sub("", text)
    text = _HYPHEN_BREAK.sub("", text)
    if "\n" not in text:
        return text
    lines = text.split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        prev = out[-1]
        if (
            _LATIN_BREAK.search(prev[-1:] + "\n" + line[:1])
            and not _CODE.search(prev)
            and not _CODE.search(line)
        ):
            out[-1] = f"{prev.rstrip()} {line.lstrip()}"
        else:
            out.append(line)
    return "\n".join(out)


# --- Headings from fonts and numbering ---------------------------------------------------

# A heading's font is at least this much larger than the body's ...
LARGER = 1.15
# ... or bold where the body is not; PDFium reports 400 for regular and 700 for bold fonts
# that declare a weight, and estimates it from the stem width for TeX's Type 1 fonts.
BOLD_WEIGHT = 500
BOLD_OVER_BODY = 120
# The longest line that can be a heading (characters without spaces; CJK counts double).
MAX_HEADING_WIDTH = 80
# A heading in the body font needs this much space above it (times its font size).
GAP_ABOVE = 1.5

_CN_NUMBER = "一二三四五六七八九十百零〇两"
# (kind, pattern) in the order of their usual nesting; "decimal" nests by its depth.
_NUMBERING: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("part", re.compile(rf"第[{_CN_NUMBER}\d]+[编部篇]\s*\S|Part\s+[IVXLC\d]+\b", re.I)),
    (
        "chapter",
        re.compile(
            rf"第[{_CN_NUMBER}\d]+章|(?:Chapter|CHAPTER)\s+[\dIVXLC]+\b"
            r"|(?:Appendix|APPENDIX)\s+[A-Z]\b|附录\s*[A-Z{_CN_NUMBER}]?"
        ),
    ),
    ("section", re.compile(rf"第[{_CN_NUMBER}\d]+[节節]|(?:Section|SECTION)\s+\d+\b")),
    ("cn-enum", re.compile(rf"[{_CN_NUMBER}]+[、．]")),
    ("cn-paren", re.compile(rf"[（(][{_CN_NUMBER}]+[）)]")),
)
# "1", "1.2", "1.2.3", "A.1" followed by a title; "1." with a dot is a list item unless
# its font says otherwise.
_DECIMAL = re.compile(r"(?:[A-Z]|\d{1,3})(?:\.\d{1,3})*(?P<dot>\.)?(?=\s+\S)")

# Ends of lines that go on: sentence ends, commas, lead-ins ("as follows:").
_NOT_A_HEADING_END = tuple(".。．,，;；:：、!！")
# Table of contents lines: a title, dot leaders or spaces, a page number.
_TOC_LINE = re.compile(r"(?:\.\s*){3,}\s*\d+$|(?:[·…]\s*){2,}\s*\d+$|\S\s{3,}\d+$")
_CODE_OR_MATH = re.compile(r"[\\{}=_^$<>@#]|https?://")


@dataclass(frozen=True, slots=True)
class _Candidate:
    page: int  # 1-based
    line: Line
    numbering: tuple[str, int] | None  # (kind, depth)
    style: tuple[float, bool]  # (size, bold)
    lines: int = 1  # how many lines the heading spans


def numbering(text: str) -> tuple[str, int] | None:
    """The kind and depth of a heading number that starts ``text``, if any:
    ("chapter", 1) for "第三章 ..." or "Chapter 3", ("decimal", 2) for "1.2 Title",
    ("decimal-dot", 1) for "1. Title" (a list item unless its font says heading)."""
    text = text.strip()
    for kind, pattern in _NUMBERING:
        if pattern.match(text):
            return kind, 1
    m = _DECIMAL.match(text)
    if m is None:
        return None
    head = m.group().rstrip(".")
    depth = head.count(".") + 1
    if head[0].isalpha():
        if depth == 1:
            return None  # "A Title" is a word, not a number
    elif int(head.split(".")[0]) == 0 or len(head.split(".")[0]) > 2:
        return None  # "0 items", "2024 was" are not section numbers
    return ("decimal-dot" if m.group("dot") and depth == 1 else "decimal"), depth


def _width(text: str) -> int:
    """Characters without spaces, where a CJK character counts as two."""
    return sum(2 if _is_wide(ch) else 1 for ch in text if not ch.isspace())


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def body_style(pages: dict[int, list[Line]]) -> tuple[float, int]:
    """The body text's font size (the most common by characters) and its usual weight."""
    sizes: Counter[float] = Counter()
    for lines in pages.values():
        for line in lines:
            sizes[line.size] += line.chars
    if not sizes:
        return 0.0, 400
    size = sizes.most_common(1)[0][0]
    weights: Counter[int] = Counter()
    for lines in pages.values():
        for line in lines:
            if line.size == size:
                weights[line.weight] += line.chars
    return size, weights.most_common(1)[0][0]


def find_headings(pages: dict[int, list[Line]]) -> list[OutlineEntry]:
    """Headings of a document without an outline, in reading order, with levels.

    ``pages`` maps 1-based page numbers to their lines (running headers and footers
    already removed). A heading is a short line that is set noticeably larger than the
    body text, or bold with space above it, or (in the body font) starts with a section
    number such as "1.2", "第三章", "一、", "（一）", "Chapter 3" and has space above it.
    """
    body_size, body_weight = body_style(pages)
    if not body_size:
        return []
    body_bold = _body_bold(pages, body_size)
    candidates: list[_Candidate] = []
    for page, lines in sorted(pages.items()):
        found: list[_Candidate] = []
        last = -2  # index of the line that ended the previous candidate
        for i, line in enumerate(lines):
            candidate = _candidate(lines, i, page, body_size, body_weight, body_bold)
            if candidate is None:
                continue
            if found and last == i - 1 and _continues(found[-1], candidate):
                # A heading wrapped over two lines is one heading.
                previous = found[-1]
                merged = Line(
                    f"{previous.line.text} {line.text}",
                    min(previous.line.x0, line.x0),
                    min(previous.line.y0, line.y0),
                    max(previous.line.x1, line.x1),
                    max(previous.line.y1, line.y1),
                    previous.line.size,
                    previous.line.weight,
                    previous.line.bold_share,
                )
                found[-1] = _Candidate(
                    page, merged, previous.numbering, previous.style, previous.lines + 1
                )
            else:
                found.append(candidate)
            last = i
        # Three or more lines in one large font are a title page's block (authors,
        # addresses), not a heading.
        candidates.extend(c for c in found if c.lines <= 2)
    return _with_levels(candidates)


def _body_bold(pages: dict[int, list[Line]], body_size: float) -> bool:
    """True when most body text is bold: then bold marks nothing."""
    bold = total = 0.0
    for lines in pages.values():
        for line in lines:
            if line.size == body_size:
                bold += line.bold_share * line.chars
                total += line.chars
    return bool(total) and bold / total > 0.5


def _candidate(
    lines: list[Line], i: int, page: int, body_size: float, body_weight: int, body_bold: bool
) -> _Candidate | None:
    line = lines[i]
    text = " ".join(line.text.split())
    letters = sum(ch.isalpha() for ch in text)
    if letters < 2 or letters * 2 < len("".join(text.split())) or _width(text) > MAX_HEADING_WIDTH:
        return None  # index letters ("A"), table rows of numbers
    if text.endswith(_NOT_A_HEADING_END) or _TOC_LINE.search(text) or _CODE_OR_MATH.search(text):
        return None
    if len(text.split()) > 14:
        return None
    larger = line.size >= body_size * LARGER and line.size >= body_size + 1
    heavy = line.bold_share >= 0.8 or line.weight >= max(BOLD_WEIGHT, body_weight + BOLD_OVER_BODY)
    bold = heavy and not body_bold and line.size >= body_size * 0.85
    number = numbering(text)
    spaced = _space_above(lines, i) >= GAP_ABOVE * line.size
    if larger:
        ok = True
    elif bold:
        ok = spaced and _body_follows(lines, i)
    elif number is not None and number[0] != "decimal-dot":
        # In the body font only strong numbering counts, and only standing apart:
        # "1.2 Title" with a capital or CJK title, "第三章", "一、", "Chapter 3".
        ok = (
            spaced
            and line.size >= body_size * 0.95
            and _body_follows(lines, i)
            and _plain_numbered_ok(text, number)
        )
    else:
        ok = False
    if not ok:
        return None
    return _Candidate(page, line, number, (line.size, bold))


def _plain_numbered_ok(text: str, number: tuple[str, int]) -> bool:
    kind, depth = number
    if kind != "decimal":
        return _width(text) <= 60
    if depth < 2:
        return False  # "3 apples" in a sentence that wrapped
    title = text.split(None, 1)[1] if len(text.split(None, 1)) > 1 else ""
    first = title[:1]
    return bool(first) and (first.isupper() or _is_wide(first)) and len(title.split()) <= 10


def _body_follows(lines: list[Line], i: int) -> bool:
    """True when the next line is below this one in the same column and not bold: a
    heading in the body size leads into text, where a table cell leads anywhere."""
    if i + 1 >= len(lines):
        return False
    line, below = lines[i], lines[i + 1]
    same_column = below.x0 <= line.x1 and line.x0 <= below.x1
    return same_column and below.y1 <= line.y0 + 1 and below.bold_share < 0.5


def _space_above(lines: list[Line], i: int) -> float:
    """Vertical distance from the line above (baseline to baseline); infinite at the top
    of a page or a column."""
    if i == 0:
        return math.inf
    above, line = lines[i - 1], lines[i]
    if above.x1 < line.x0 or line.x1 < above.x0 or above.y0 < line.y0:
        return math.inf  # another column, or a line further down: a new block
    return above.y0 - line.y0 + (line.y1 - line.y0) - (above.y1 - above.y0)


def _continues(previous: _Candidate, candidate: _Candidate) -> bool:
    """True when ``candidate`` (on the line after ``previous``) is the second line of the
    heading ``previous``."""
    if candidate.numbering is not None or previous.style != candidate.style:
        return False
    gap = previous.line.y0 - candidate.line.y1
    return -0.1 * candidate.line.size <= gap <= 0.6 * candidate.line.size


def _with_levels(candidates: list[_Candidate]) -> list[OutlineEntry]:
    """Give each heading a level: by its number's kind and depth where it has one, else
    by its font among the numbered headings' fonts, else by font size rank."""
    numbered = sorted(
        {_number_key(c) for c in candidates if c.numbering is not None},
    )
    level_of_number = {key: i + 1 for i, key in enumerate(numbered)}
    style_levels: dict[tuple[float, bool], Counter[int]] = {}
    numbered_sizes: list[tuple[float, int]] = []
    for c in candidates:
        if c.numbering is not None:
            level = level_of_number[_number_key(c)]
            style_levels.setdefault(c.style, Counter())[level] += 1
            numbered_sizes.append((c.style[0], level))
    plain_styles = sorted(
        {c.style for c in candidates if c.numbering is None}, key=lambda s: (-s[0], not s[1])
    )
    entries: list[OutlineEntry] = []
    for c in candidates:
        if c.numbering is not None:
            level = level_of_number[_number_key(c)]
        elif c.style in style_levels:
            level = style_levels[c.style].most_common(1)[0][0]
        elif numbered_sizes:
            # Below every numbered level set in a larger font.
            larger = {lvl for size, lvl in numbered_sizes if size > c.style[0]}
            level = max(larger) + 1 if larger else 1
        else:
            level = plain_styles.index(c.style) + 1
        title = " ".join(c.line.text.split())
        entries.append(OutlineEntry(title=title, level=min(level, 6), page=c.page))
    return entries


def _number_key(c: _Candidate) -> tuple[int, int]:
    assert c.numbering is not None
    kind, depth = c.numbering
    # Chapters and "1" are one rank and sections and "1.2" the next, whichever a document
    # mixes; Chinese enumerations ("一、", "（一）") nest below them.
    return {
        "part": (0, 1),
        "chapter": (1, 1),
        "section": (1, 2),
        "decimal": (1, depth),
        "decimal-dot": (1, depth),
        "cn-enum": (2, 1),
        "cn-paren": (2, 2),
    }[kind]


# --- Two-column pages drawn out of reading order -------------------------------------------

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
        if code in (2, 0xFFFE):
            chars.append("-")  # PDFium's mark for a hyphen at a line end
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
    return "\n".join(out)


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
