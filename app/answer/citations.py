"""Citations that hold: every ``[n]`` in a written answer names a passage that was given.

The model cites with ``[1]``; it may also write ``[1, 2]``, ``[1][2]``, ``[1，2]`` or the
full-width ``【1】`` / ``［1］``. Each group is rewritten as ``[a][b]`` with only the numbers
of passages given (1..n); a number outside them is dropped and counted, and a group left
empty disappears with the space before it. ``[text](url)`` (a Markdown link) is left
alone, as is any bracket that is not a list of numbers.

:class:`CitationFilter` does the same to a stream, holding back only a tail that could
still become a citation, so the streamed text and the final answer always agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NUMS = r"\d{1,4}(?:\s*[,，、;；]\s*\d{1,4})*"
CITATION = re.compile(rf"[ \t]*[\[【［]\s*(?P<nums>{_NUMS})\s*[\]】］](?!\()")
# A tail that may still grow into a citation (or into the space before one).
_PARTIAL = re.compile(r"[ \t]*(?:[\[【［]\s*(?:\d{1,4}(?:\s*[,，、;；]\s*\d{0,4})*)?\s*)?\Z")
MAX_HELD = 48  # characters; a longer "partial citation" is not one


@dataclass
class CitationFilter:
    """Keeps the citations of passages 1..``count``; feed chunks, then ``flush()``."""

    count: int
    cited: list[int] = field(default_factory=list)  # valid numbers, first use first
    invalid: int = 0  # numbers dropped
    _held: str = ""

    def feed(self, text: str) -> str:
        buf = self._held + text
        m = _PARTIAL.search(buf)
        cut = m.start() if m and len(buf) - m.start() <= MAX_HELD else len(buf)
        self._held = buf[cut:]
        return self._rewrite(buf[:cut])

    def flush(self) -> str:
        rest, self._held = self._held, ""
        return self._rewrite(rest)

    def _rewrite(self, text: str) -> str:
        return CITATION.sub(self._replace, text)

    def _replace(self, m: re.Match[str]) -> str:
        kept: list[int] = []
        for part in re.split(r"\s*[,，、;；]\s*", m.group("nums")):
            n = int(part)
            if 1 <= n <= self.count:
                if n not in kept:
                    kept.append(n)
            else:
                self.invalid += 1
        for n in kept:
            if n not in self.cited:
                self.cited.append(n)
        if not kept:
            return ""
        lead = m.group(0)[: len(m.group(0)) - len(m.group(0).lstrip(" \t"))]
        return lead + "".join(f"[{n}]" for n in kept)


def check_citations(text: str, count: int) -> tuple[str, list[int], int]:
    """``text`` with only valid citations, the numbers cited (first use first) and how
    many invalid ones were dropped."""
    f = CitationFilter(count)
    out = f.feed(text) + f.flush()
    return out, f.cited, f.invalid
