"""Page furniture: running headers, footers and page numbers.

They repeat at the edges of many pages and belong to no section: they are found on the
pages' plain text lines (so they work for whichever extractor read a page) and removed
before the text is split into sections and before headings are looked for.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

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
