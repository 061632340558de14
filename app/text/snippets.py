"""A hit's snippet: the sentences of a passage that match best, short, highlights kept.

:func:`best_snippet` picks whole sentences (``app.text.sentences``): the one holding the
most highlighted text, then others that hold highlights, then the sentences around them,
while the whole stays within ``max_chars``. Runs of whitespace (a PDF's hard line breaks,
a list's new lines) become one space; "…" marks text left out at either end, " … "
between sentences that are apart. A sentence too long for the budget is cut around its
highlights (``app.text.highlight.snippet``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from app.text.highlight import ELLIPSIS, snippet
from app.text.sentences import split_sentences

Span = tuple[int, int]

SNIPPET_CHARS = 300
_GAP = f" {ELLIPSIS} "
_SPACE_RUN = re.compile(r"\s+")
_LONG_SPACE_RUN = re.compile(r"\s{2,}")
_STOPS = frozenset(".!?。！？;；")


def best_snippet(
    text: str,
    spans: Sequence[Span],
    *,
    sentences: Sequence[Span] | None = None,
    max_chars: int = SNIPPET_CHARS,
) -> tuple[str, list[Span]]:
    """At most ``max_chars`` characters of ``text`` around its best sentences, and the
    highlight ``spans`` that fall inside, as offsets into the snippet."""
    if max_chars < 20:
        raise ValueError("max_chars must be at least 20")
    squashed, where = _squash(text)
    marks = _merge([(where[s], where[e]) for s, e in spans if 0 <= s < e <= len(text)])
    if len(squashed) <= max_chars:
        return squashed, marks
    if sentences is None:
        sentences = split_sentences(text)
    sents = [(where[s], where[e]) for s, e in sentences if where[s] < where[e]]
    if not sents:
        return snippet(squashed, marks, max_chars=max_chars)
    scores = [_score(squashed, a, b, marks) for a, b in sents]
    order = sorted(range(len(sents)), key=lambda i: (-scores[i][0], -scores[i][1], i))
    best = order[0]
    a, b = sents[best]
    if _length(squashed, sents, {best}) > max_chars:
        return _cut_sentence(squashed, a, b, marks, max_chars)
    chosen = {best}
    # Other sentences with highlights, best first, where they fit ...
    for i in order[1:]:
        if scores[i][0] and _length(squashed, sents, chosen | {i}) <= max_chars:
            chosen.add(i)
    # ... then context around what was chosen, the sentence after before the one before.
    grown = True
    while grown:
        grown = False
        for i in sorted(chosen):
            for j in (i + 1, i - 1):
                fits = 0 <= j < len(sents) and j not in chosen
                if fits and _length(squashed, sents, chosen | {j}) <= max_chars:
                    chosen.add(j)
                    grown = True
    return _render(squashed, sents, chosen, marks)


def _squash(text: str) -> tuple[str, list[int]]:
    """``text`` with each whitespace run as one space, and where each offset went.

    Offsets move only at runs of two or more characters (a passage has a handful; a lone
    new line becomes a space in place), so the map is built a run at a time from ranges,
    not a loop per character: the API and the Search page squash every hit's passage."""
    squashed = _SPACE_RUN.sub(" ", text)
    where: list[int] = []
    shift = done = 0
    for run in _LONG_SPACE_RUN.finditer(text):
        start, end = run.span()
        where.extend(range(done - shift, start + 1 - shift))
        # An offset inside a run lands at the run's end (its space is before it).
        where.extend([start + 1 - shift] * (end - start - 1))
        shift += end - start - 1
        done = end
    where.extend(range(done - shift, len(text) + 1 - shift))
    # Leading and trailing space go; offsets shift with them.
    body = squashed.strip()
    lead = len(squashed) - len(squashed.lstrip())
    if lead or len(body) != len(squashed):
        where = [min(max(w - lead, 0), len(body)) for w in where]
    return body, where


def _merge(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for s, e in sorted(spans):
        if s >= e:
            continue
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(e, out[-1][1]))
        else:
            out.append((s, e))
    return out


def _score(text: str, a: int, b: int, marks: list[Span]) -> tuple[int, int]:
    """Distinct highlighted strings in ``text[a:b]``, then highlighted characters."""
    inside = [(max(s, a), min(e, b)) for s, e in marks if max(s, a) < min(e, b)]
    return len({text[s:e].casefold() for s, e in inside}), sum(e - s for s, e in inside)


def _groups(sents: list[Span], chosen: set[int]) -> list[Span]:
    """The chosen sentences as runs of neighbours: ``(start, end)`` in the text."""
    runs: list[Span] = []
    last = -2
    for i in sorted(chosen):
        a, b = sents[i]
        if runs and i == last + 1:
            runs[-1] = (runs[-1][0], b)
        else:
            runs.append((a, b))
        last = i
    return runs


def _length(text: str, sents: list[Span], chosen: set[int]) -> int:
    """The length :func:`_render` gives: the runs, the gaps, and "…" at either end (with
    its space after a full stop)."""
    runs = _groups(sents, chosen)
    size = sum(b - a for a, b in runs) + len(_GAP) * (len(runs) - 1)
    end = runs[-1][1]
    tail = (1 + (text[end - 1] in _STOPS)) if end < len(text) else 0
    return size + (runs[0][0] > 0) + tail


def _render(
    text: str, sents: list[Span], chosen: set[int], marks: list[Span]
) -> tuple[str, list[Span]]:
    runs = _groups(sents, chosen)
    parts: list[str] = [ELLIPSIS] if runs[0][0] > 0 else []
    pos = len(parts)
    shifted: list[Span] = []
    for k, (a, b) in enumerate(runs):
        if k:
            parts.append(_GAP)
            pos += len(_GAP)
        parts.append(text[a:b])
        shifted += [
            (max(s, a) - a + pos, min(e, b) - a + pos) for s, e in marks if max(s, a) < min(e, b)
        ]
        pos += b - a
    if runs[-1][1] < len(text):
        # After a full stop "…" reads as part of it (".…"): set it apart.
        parts.append((" " if text[runs[-1][1] - 1] in _STOPS else "") + ELLIPSIS)
    return "".join(parts), shifted


def _cut_sentence(
    text: str, a: int, b: int, marks: list[Span], max_chars: int
) -> tuple[str, list[Span]]:
    """A window of one long sentence around its highlights, "…" where text goes on."""
    local = [(max(s, a) - a, min(e, b) - a) for s, e in marks if max(s, a) < min(e, b)]
    lead, tail = a > 0, b < len(text)
    body, spans = snippet(text[a:b], local, max_chars=max_chars - lead - tail)
    if lead and not body.startswith(ELLIPSIS):
        body = ELLIPSIS + body
        spans = [(s + 1, e + 1) for s, e in spans]
    if tail and not body.endswith(ELLIPSIS):
        body += ELLIPSIS
    return body, spans
