"""Cut a long Markdown text into parts that render on their own, and find passages in it.

A document page shows one part at a time, so that one request never renders more than
``max_bytes`` of source however long the document is. The cut is found with a few
regular-expression scans (no Markdown parse of the whole text), at the best seam near
the budget:

1. a heading (so a section starts a part), else any line that starts a new top-level
   block: unindented, after a blank line;
2. a new item of a top-level list (a tight list of 280k lines has no blank line);
3. any line end (a paragraph, table or quote cut in two), then a space, then anywhere.

Seams inside a fenced code block or the front matter are not used; when a part must end
inside a code block (a pasted log larger than a part), the next part starts with the
fence's opening line again, so its lines still render as code.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

PART_BYTES = 64 * 1024
# A part's HTML (its text and its chunks) is kept under about this many times its budget.
HTML_FACTOR = 2
# What a piece of source can add to the page at most, roughly: a line end a list item or
# a paragraph (<li>, </li>), a pipe a table cell, an escaped character its entity, and a
# heading a section, which is also a chunk shown with its heading path and links.
_HTML_GROWTH = (
    ("\n", 12),
    ("|", 10),
    ("&", 4),
    ("<", 3),
    (">", 3),
    ('"', 5),
    ("*", 4),
    ("_", 4),
    ("\n#", 400),
)

# An ATX heading after a blank line; an unindented line after a blank one; a list marker
# at the start of a line.
_HEADING_SEAM = re.compile(r"\n[ \t]*\n(?=#{1,6}(?:[ \t]|$))", re.MULTILINE)
_BLOCK_SEAM = re.compile(r"\n[ \t]*\n(?=\S)")
_ITEM_SEAM = re.compile(r"\n(?=(?:[-+*]|\d{1,9}[.)])[ \t])")
_ITEM_LINE = re.compile(r"(?:[-+*]|\d{1,9}[.)])[ \t]|[ \t]")
_FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})([^\n]*)$", re.MULTILINE)
# A GFM table's first two lines: a header row, then a delimiter row (| :--- | ---: |).
_TABLE_HEAD = re.compile(
    r" {0,3}[^\n]*\|[^\n]*\n {0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*\n"
)
_FRONT_MATTER_OPEN = re.compile(r"-{3,}[ \t]*(?:\n|\Z)")
_FRONT_MATTER_CLOSE = re.compile(r"^(?: {0,3}-{3,}|\.\.\.)[ \t]*$", re.MULTILINE)
# A passage is looked for this far past where the previous one started (plus its length).
_LOCATE_SLACK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Part:
    """``text[start:end]``, rendered after ``prefix`` (a code fence's opening line or "")."""

    start: int
    end: int
    prefix: str = ""


def normalise_newlines(text: str) -> str:
    """``\\n`` line ends only (what markdown-it and the ingest parser count as lines)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def split_parts(text: str, *, max_bytes: int = PART_BYTES) -> list[Part]:
    """Cut ``text`` into consecutive parts of at most about ``max_bytes`` UTF-8 bytes."""
    if max_bytes < 64:
        raise ValueError("max_bytes must be at least 64")
    fences = _Fences(text)
    closed = _front_matter_end(text, max_bytes)
    parts: list[Part] = []
    pos, prefix, table = 0, "", ""
    while pos < len(text):
        target = _target(text, pos, max_bytes - len(prefix.encode()))
        if target >= len(text):
            end, seam = len(text), True
        else:
            end, seam = _seam(text, pos, target, max(pos + 1, closed), fences)
        parts.append(Part(pos, end, prefix))
        fence = fences.at(end)
        if fence is not None:
            # A cut inside a code block's body opens it again; one on its opening line not.
            prefix = fence.opener + "\n" if end >= fence.body else ""
            table = ""
        else:
            # A table cut between rows: the next part repeats its header and delimiter row.
            table = "" if seam else _table_head(text, pos, end, table)
            prefix = table
        pos = end
    return parts


def locate(text: str, passages: Sequence[str]) -> list[int]:
    """Where each passage (in reading order) starts in ``text``, by its first line.

    Chunk texts are slices of the source (trimmed, joined); a passage whose first line is
    not found near the previous one (a heading with inline markup) gets the previous
    passage's position.
    """
    found: list[int] = []
    pos, prev_len = 0, 0
    for passage in passages:
        line = passage.lstrip("\n").split("\n", 1)[0][:200].rstrip()
        at = -1
        if line:
            at = text.find(line, pos, pos + prev_len + _LOCATE_SLACK + len(line))
            if at < 0 and len(line) >= 24:  # far on, but too specific to be found by chance
                at = text.find(line, pos)
        if at >= 0:
            found.append(at)
            pos, prev_len = at + 1, len(passage)
        else:
            found.append(found[-1] if found else 0)
    return found


def part_of(parts: Sequence[Part], offset: int) -> int:
    """Index of the part that holds character ``offset``."""
    return max(0, bisect.bisect_right([p.start for p in parts], offset) - 1)


def _target(text: str, pos: int, max_bytes: int) -> int:
    """The furthest offset such that ``text[pos:target]`` is about ``max_bytes`` of UTF-8
    and renders to about ``HTML_FACTOR * max_bytes`` of HTML at most."""
    max_bytes = max(64, max_bytes)
    window = text[pos : pos + max_bytes]
    size = len(window.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        window = window[: max(1, len(window) * max_bytes // size)]
        size = max_bytes
    # Markup-dense text (a table of short cells, a list of one-word items) grows most.
    html = size + sum(window.count(s) * extra for s, extra in _HTML_GROWTH)
    if html > HTML_FACTOR * max_bytes:
        window = window[: max(1, len(window) * HTML_FACTOR * max_bytes // html)]
    return pos + len(window)


def _seam(
    text: str,
    pos: int,
    target: int,
    earliest: int,
    fences: _Fences,
) -> tuple[int, bool]:
    """The best place to end the part that starts at ``pos`` at or before ``target``, and
    whether it is a seam between blocks (else a cut through one)."""
    if earliest >= target:
        return earliest, True  # the front matter is not cut
    # Best before a heading, so that a section starts a part, if that keeps half a part.
    cut = _last_seam(text, _HEADING_SEAM, max(earliest, (pos + target) // 2), target, fences)
    if cut is not None:
        return cut, True
    low = max(earliest, pos + (target - pos) // 4)
    if low < target:
        for pattern in (_BLOCK_SEAM, _ITEM_SEAM):
            cut = _last_seam(text, pattern, low, target, fences)
            if cut is not None:
                return cut, True
        newline = text.rfind("\n", low, target)
        if newline >= 0:
            return newline + 1, False
        space = text.rfind(" ", low, target)
        if space >= 0:
            return space + 1, False
    return target, False


def _last_seam(
    text: str,
    pattern: re.Pattern[str],
    low: int,
    high: int,
    fences: _Fences,
) -> int | None:
    # Look in a short window before the target first: usually one is there.
    for start in (max(low, high - 4096), low):
        best = None
        # One past ``high``: the seam's lookahead must see the line it starts.
        for m in pattern.finditer(text, start - 1, min(len(text), high + 1)):
            cut = m.end()
            if not start < cut <= high or fences.at(cut) is not None:
                continue
            if pattern is _ITEM_SEAM and not _after_item(text, cut):
                continue
            best = cut
        if best is not None:
            return best
    return None


def _after_item(text: str, cut: int) -> bool:
    """The line before ``cut`` is a list item or its continuation, not a paragraph.

    (``2024. was a year`` after a paragraph line continues the paragraph; after an item
    it is the next item.)
    """
    line_start = text.rfind("\n", 0, cut - 1) + 1
    return _ITEM_LINE.match(text, line_start) is not None


def _table_head(text: str, pos: int, end: int, carried: str) -> str:
    """The header and delimiter rows of the table that a cut at ``end`` splits, if any.

    The block being cut starts after the last blank line before ``end``; when that is
    before this part (``pos``), the block is the one the part itself continued.
    """
    blank = text.rfind("\n\n", pos, end)
    if blank < 0 and pos > 0:
        return carried
    head = _TABLE_HEAD.match(text, 0 if blank < 0 else blank + 2)
    return head.group(0) if head is not None and head.end() <= end else ""


@dataclass(frozen=True, slots=True)
class _Fence:
    start: int  # the opening line
    body: int  # after the opening line
    end: int  # after the closing line, or the end of the text
    opener: str


class _Fences:
    """The fenced code blocks of a text, found line by line as CommonMark opens and
    closes them (outside lists and quotes, which is where long ones are)."""

    def __init__(self, text: str) -> None:
        self.spans: list[_Fence] = []
        opened: re.Match[str] | None = None
        for m in _FENCE_LINE.finditer(text):
            marker, rest = m.group(1), m.group(2)
            if opened is None:
                if not (marker[0] == "`" and "`" in rest):  # else an inline code span
                    opened = m
                continue
            mark = opened.group(1)
            if marker[0] == mark[0] and len(marker) >= len(mark) and not rest.strip():
                self.spans.append(_Fence(opened.start(), opened.end(), m.end(), opened.group(0)))
                opened = None
        if opened is not None:
            self.spans.append(_Fence(opened.start(), opened.end(), len(text), opened.group(0)))
        self._starts = [f.start for f in self.spans]

    def at(self, offset: int) -> _Fence | None:
        """The fence whose lines hold ``offset`` (a cut there would split it)."""
        i = bisect.bisect_right(self._starts, offset) - 1
        if i >= 0 and self.spans[i].start < offset < self.spans[i].end:
            return self.spans[i]
        return None


def _front_matter_end(text: str, max_bytes: int) -> int:
    """Offset after the front matter (no seam inside it), or 0 when there is none."""
    if not _FRONT_MATTER_OPEN.match(text):
        return 0
    first_line_end = text.find("\n") + 1
    if first_line_end <= 0:
        return 0
    close = _FRONT_MATTER_CLOSE.search(text, first_line_end)
    if close is None or close.end() > 4 * max_bytes:
        return 0  # not front matter, or too large to keep in one part
    return close.end() + 1 if text.startswith("\n", close.end()) else close.end()
