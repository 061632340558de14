"""Place PDF outline headings inside their page's text."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace

# A short section number before a heading title on its line: "2.1", "IV.", "B)", "第三章".
_NUMBERING = re.compile(
    r"(?:[0-9]+|[IVXivx]+|[A-Za-z]|第?[一二三四五六七八九十百零〇0-9]+[章节條条部]?)"
    r"(?:[.．、)）][0-9]*)*[.．、)）:：]?"
)


@dataclass(frozen=True, slots=True)
class OutlineEntry:
    """One outline (bookmark) entry: its title, nesting level (1 = top) and 1-based page."""

    title: str
    level: int
    page: int


def place_headings(
    text: str, entries: list[OutlineEntry], *, strict: bool = False
) -> list[str | OutlineEntry]:
    """Split a page's text at its outline headings (in outline order) into text and headings.

    With ``strict`` (headings guessed from the layout, not given by the file) a heading is
    placed only where its title starts a line, and one not found there is left out.
    """
    # A heading goes where its title occurs, ignoring case and whitespace, so text above
    # it stays with the previous section; the title's own text is consumed by the heading.
    # One whose title is not found goes right after the previous heading (or page start).
    if not entries:
        return [text]
    norm, origin = _normalise(text)
    out: list[str | OutlineEntry] = []
    cursor = 0  # in text
    norm_cursor = 0  # in norm
    for entry in entries:
        needle, _ = _normalise(entry.title)
        found = (
            _best_match(text, norm, origin, needle, norm_cursor, cursor, strict) if needle else None
        )
        if found is None:
            if not strict:
                out.append(entry)
            continue
        p, start, prefix = found
        out.append(text[cursor:start])
        out.append(replace(entry, title=f"{prefix} {entry.title}") if prefix else entry)
        norm_cursor = p + len(needle)
        cursor = origin[norm_cursor - 1] + 1
    out.append(text[cursor:])
    return [piece for piece in out if not isinstance(piece, str) or piece.strip()]


def _normalise(text: str) -> tuple[str, list[int]]:
    """Text without whitespace, NFKC-normalised and case-folded, with each character's
    index in ``text``."""
    # NFKC so that the outline's "fi" matches the page's ligature "ﬁ" (and full-width
    # forms their ASCII twins), whichever side has which.
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        if ch.isspace():
            continue
        if ch.isascii():
            chars.append(ch.lower())
            origin.append(i)
            continue
        for folded in unicodedata.normalize("NFKC", ch).casefold():
            if folded.isspace():
                continue
            chars.append(folded)
            origin.append(i)
    return "".join(chars), origin


def _best_match(
    text: str,
    norm: str,
    origin: list[int],
    needle: str,
    norm_from: int,
    text_from: int,
    strict: bool = False,
) -> tuple[int, int, str] | None:
    """The best occurrence of ``needle``: (index in norm, split index in text, numbering)."""
    # A title that fills its line beats one that starts a line, which beats one inside a
    # sentence: that is more likely a mention of the section than its heading.
    best: tuple[int, int, int, str] | None = None  # (rank, p, split, prefix)
    p = norm.find(needle, norm_from)
    while p != -1:
        start = origin[p]
        end = origin[p + len(needle) - 1] + 1
        line_start = max(text.rfind("\n", 0, start) + 1, text_from)
        line_end = text.find("\n", end)
        prefix = text[line_start:start].strip()
        at_line_start = not prefix or _NUMBERING.fullmatch(prefix) is not None
        fills_line = not text[end : len(text) if line_end == -1 else line_end].strip()
        rank = (0 if fills_line else 1) if at_line_start else 2
        if strict and rank > 0 and not (rank == 1 and not prefix):
            # A guessed heading must start its line, unnumbered ("1.2" before the
            # title would mean that the title found is a different line).
            p = norm.find(needle, p + 1)
            continue
        split = line_start if at_line_start else start
        if best is None or rank < best[0]:
            best = (rank, p, split, prefix if at_line_start else "")
        if rank == 0:
            break
        p = norm.find(needle, p + 1)
    if best is None:
        return None
    return best[1], best[2], best[3]
