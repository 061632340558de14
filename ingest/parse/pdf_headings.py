"""Headings of a PDF without an outline, guessed from the lines PDFium measured: their
font size and weight against the body text's, the space around them and their numbering
("1.2", "第三章", "一、", "Chapter 3")."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from ingest.parse.outline import OutlineEntry
from ingest.parse.pdf_lines import Line

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
