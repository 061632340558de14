"""Merge the dense (meaning) and lexical (words) result lists into one ranking.

Plain reciprocal rank fusion hurts cross-lingual search: the lexical leg only matches text
in the query's own language, so for an English question whose answer is Chinese it
pushes English near-misses above the Chinese answer. Two guards keep it honest:

* the lexical leg is weighted by how much of the collection is in the query's language
  (a Chinese question over an English-only collection gets no lexical say at all); and
* a chunk only the lexical leg found joins the list only from the lexical leg's very top,
  unless the query looks like something typed verbatim (an identifier, an error code, a
  command, a LaTeX macro), where exact words are the best evidence there is.

Within the dense leg's candidates the lexical leg re-orders freely: that is where it
helps monolingual questions most (names, numbers, rare words the embedder blurs).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

Scored = tuple[int, float]

# Tokens people type verbatim: macros (\usepackage), snake_case or SCREAMING_CASE names,
# letters mixed with digits (E1234, utf8, v1.2.3), braces ({ctex}), command-line options
# (--force), paths and code quotes. Hyphenated words (Python-Markdown, multiple-choice)
# are ordinary language and do not count.
_LITERAL = re.compile(
    r"\\[A-Za-z]+|[A-Za-z]+_[A-Za-z0-9_]+|\b[A-Za-z]*\d+[A-Za-z]+\d*\b|\b[A-Za-z]+\d+"
    r"|[{}]|(?:^|\s)--?[A-Za-z]|/\w+/|`"
)


@dataclass(frozen=True, slots=True)
class FusionWeights:
    """How the two legs are merged (tuned on dev-eval; see the README's table).

    ``method`` "score": the dense cosine plus ``lexical`` times the lexical score relative
    to the best lexical score (so the dense leg's margins count); "rrf": reciprocal rank
    fusion, which only sees ranks.
    """

    method: str = "score"
    rrf_k: float = 60.0
    # The lexical leg's weight before the language share scales it (0.05 before the
    # second stage; with it, 0.08 to 0.12 score alike on dev-eval and 0.1 sits between).
    lexical: float = 0.1
    # A chunk only the lexical leg found joins the list from this lexical rank or better.
    lexical_only_top: int = 3
    # For verbatim queries: lexical weight multiplier and how deep lexical-only may go.
    literal_boost: float = 2.0
    literal_only_top: int = 10
    # The lexical leg of the query's dictionary translation (app.text.dictionary): its
    # score relative to its best, times this, is added to chunks already among the
    # candidates. Below the dense leg's margins, above the direct lexical weight: a
    # translated term that occurs in a passage of the other language is good evidence,
    # and the dictionary's noise (wrong senses) rarely lines up on one passage.
    translated: float = 0.15
    # The weight of a candidate's best sentence against its passage's cosine (the second
    # stage, app/search/rescore.py).
    sentences: float = 0.3
    # Whether a verbatim question or copied phrase goes first (app/search/rescore.py).
    verbatim: bool = True


def looks_literal(query: str) -> bool:
    """True when the query contains something typed verbatim (see ``_LITERAL``)."""
    return bool(_LITERAL.search(query))


def fuse(
    dense: Sequence[Scored],
    lexical: Sequence[Scored],
    *,
    k: int,
    language_share: float = 1.0,
    literal: bool = False,
    weights: FusionWeights | None = None,
    translated: Sequence[Scored] = (),
) -> list[Scored]:
    """The top ``k`` chunk ids by weighted reciprocal rank fusion, best first.

    ``dense`` and ``lexical`` are (chunk id, score) lists, best first. ``language_share``
    is the share (0..1) of the collection written in the query's language.
    ``translated``: the lexical leg of the query's translation, which only re-orders
    candidates the other legs found (a dictionary's wrong sense must not bring in new
    ones).
    """
    w = weights or FusionWeights()
    weight = w.lexical * max(0.0, min(1.0, language_share))
    only_top = w.lexical_only_top
    if literal:
        weight *= w.literal_boost
        only_top = w.literal_only_top
    if w.method == "rrf":
        dense_part = {cid: 1.0 / (w.rrf_k + rank) for rank, (cid, _) in enumerate(dense, 1)}
        lexical_part = {cid: 1.0 / (w.rrf_k + rank) for rank, (cid, _) in enumerate(lexical, 1)}
        floor = 0.0
    else:
        dense_part = dict(dense)
        best = max((score for _, score in lexical), default=0.0)
        lexical_part = {cid: score / best for cid, score in lexical} if best > 0 else {}
        # A chunk the dense leg did not return scores as its last candidate would; for a
        # verbatim query an exact match is the best evidence there is: it starts level
        # with the dense leg's best.
        pick = max if literal else min
        floor = pick(dense_part.values(), default=0.0)
    scores = dict(dense_part)
    if weight > 0:
        for rank, (cid, _score) in enumerate(lexical, start=1):
            bonus = weight * lexical_part.get(cid, 0.0)
            if cid in scores:
                scores[cid] += bonus
            elif rank <= only_top:
                scores[cid] = floor + bonus
    best_translated = max((score for _, score in translated), default=0.0)
    if w.translated > 0 and best_translated > 0:
        for cid, score in translated:
            if cid in scores:
                scores[cid] += w.translated * score / best_translated
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    return ranked[:k]
