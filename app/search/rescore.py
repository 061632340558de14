"""The search's second stage on the CPU: signals that need more than one vector per
passage, computed over the first stage's candidates only.

- **Best sentence.** A passage of fifteen lines that answers in one sentence has a single
  vector that is mostly about the other fourteen. Each candidate's score is blended with
  the cosine of its sentence closest to the question, from sentence vectors stored at
  ingest (``ChunkSentences``; embedding them per query would cost hundreds of
  milliseconds on a CPU).
- **Verbatim questions.** A query that is, word for word, an FAQ or exam question of the
  collection, or a phrase a passage contains as it stands, is ranked first: a person who
  pastes a question from the handbook wants that entry, however close its neighbours
  are in meaning. Equality is judged after normalising case, width, whitespace and
  punctuation, so a missing question mark or a full-width comma does not matter.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

Scored = tuple[int, float]

# Below this length (normalised; a CJK character counts as three letters, about a third
# of a word) a query is a few words, not a question or a phrase someone copied:
# containing it proves little.
MIN_VERBATIM_LENGTH = 16
_DROP = re.compile(r"[\W_]+")
# Up to this length (normalised) a query's key is found by a pattern (see _contains);
# a longer one costs more to compile than building the candidates' keys does, and a
# repetitive one backtracks through repetitive passages.
_PATTERN_MAX = 100


def blend_sentences(
    dense: Sequence[Scored],
    query_vector: npt.NDArray[np.float32],
    stored: Mapping[int, npt.NDArray[np.float32]],
    *,
    weight: float,
) -> list[Scored]:
    """``dense`` (chunk id, cosine) re-scored as ``(1 - weight) * cosine + weight *``
    the best sentence's cosine, best first, from the candidates' ``stored`` sentence
    vectors (``IndexManager.stored_sentences``). A chunk without any keeps its cosine."""
    if weight <= 0 or not dense:
        return list(dense)
    best = {cid: float(np.max(stored[cid] @ query_vector)) for cid, _ in dense if cid in stored}
    scored = [
        (cid, (1 - weight) * cos + weight * best[cid]) if cid in best else (cid, cos)
        for cid, cos in dense
    ]
    scored.sort(key=lambda item: item[1], reverse=True)
    return scored


def verbatim_key(text: str) -> str:
    """``text`` as compared for a verbatim match: NFKC, case-folded, with whitespace,
    punctuation and symbols removed (PDF extraction splits lines and CJK runs)."""
    return _DROP.sub("", _folded(text))


def _folded(text: str) -> str:
    # Most passages are NFKC already; the check is a tenth of the normalisation's cost.
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return text.casefold()


def _contains(key: str) -> Callable[[str], bool]:
    """Whether a text, as :func:`_folded` gives it, contains ``key`` (a
    :func:`verbatim_key`): ``key in verbatim_key(text)``. A short key is found by a
    pattern of its characters with anything ``verbatim_key`` drops between them, without
    building each candidate's key (that substitution over ~60 passages was a millisecond
    of every search under load)."""
    if len(key) > _PATTERN_MAX:
        return lambda folded: key in _DROP.sub("", folded)
    search = re.compile(r"[\W_]*".join(map(re.escape, key))).search
    return lambda folded: search(folded) is not None


def verbatim_applies(query: str) -> bool:
    """Whether ``query`` is long enough for a verbatim match to mean something."""
    key = verbatim_key(query)
    return len(key) + 2 * sum(not ch.isascii() for ch in key) >= MIN_VERBATIM_LENGTH


def verbatim_first(
    ranked: Sequence[Scored], query: str, texts: Mapping[int, tuple[str | None, str]]
) -> list[Scored]:
    """``ranked`` with the chunks the query matches verbatim moved to the front: first
    those whose question is the query, then those whose question or text contains it
    (each group in its previous order), from the chunks' ``texts`` (id -> question,
    text; the caller reads them with the hits' rows). Short queries are left as they
    are."""
    if not ranked or not verbatim_applies(query):
        return list(ranked)
    key = verbatim_key(query)
    found = _contains(key)
    equal: set[int] = set()
    contains: set[int] = set()
    for cid, (question, text) in texts.items():
        asked = verbatim_key(question) if question else ""
        if asked == key:
            equal.add(cid)
        elif key in asked or found(_folded(text)):
            contains.add(cid)
    if not equal and not contains:
        return list(ranked)
    top = ranked[0][1]
    first = [(cid, max(s, top)) for cid, s in ranked if cid in equal]
    second = [(cid, max(s, top)) for cid, s in ranked if cid in contains]
    rest = [(cid, s) for cid, s in ranked if cid not in equal and cid not in contains]
    return first + second + rest
