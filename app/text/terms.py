"""Lexical terms: how passages and queries become the terms of the full-text index.

Text is tokenised here, in Python, the same way for passages and for queries; the terms
are stored space-separated in ``chunks.search_terms``, which the database indexes as they
are (see ``app.search.lexical``).

Tokenisation:

- NFKC and case folding (full-width letters and digits become ASCII, ``ß`` = ``ss``);
- Chinese, Japanese and Korean runs become overlapping character bigrams, plus the last
  character of each run on its own (so that a one-character query, matched as a prefix,
  finds the character wherever it stands, and a one-character run is indexed at all);
- other words are split on anything but letters, digits, ``_``, ``-`` and ``.``; a word
  joined by ``_``, ``-`` or ``.`` (``orbit-notes``, ``kb_embedding_url``, ``v1.2.3``) is
  kept whole and also split into its parts; alphabetic ASCII words are stemmed with the
  English Snowball stemmer (``backups`` -> ``backup``, ``running`` -> ``run``), words with
  digits (``e1234``) are kept as they are.

A change to the tokeniser needs a migration that refills ``search_terms`` (and, on
SQLite, rebuilds ``chunks_fts``), as 0005 does.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import snowballstemmer

from app.text.scripts import LEXICAL_CJK

# Terms longer than this are cut (a base64 blob is no search term; tsvector lexemes are
# limited to 2 KiB).
MAX_TERM_CHARS = 64
# At most this many distinct terms of a query are searched for.
MAX_QUERY_TERMS = 64

_CJK_RUN = re.compile(f"[{LEXICAL_CJK}]+")
# A word: letters, digits, marks and "_" (\w), possibly joined by "-" or "." to more.
_WORD = re.compile(r"\w+(?:[-.]\w+)*")
_PARTS = re.compile(r"[-._]+")


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def stem_word(word: str) -> str:
    """The English Snowball stem of a lower-case word."""
    return str(_stemmer().stemWord(word))


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _cut(term: str) -> str:
    return term[:MAX_TERM_CHARS]


def _part(word: str) -> str:
    if word.isascii() and word.isalpha():
        return _cut(stem_word(word))
    return _cut(word)


def _word_terms(word: str) -> list[str]:
    parts = [p for p in _PARTS.split(word) if p]
    if not parts:  # only "_"
        return []
    if len(parts) == 1 and parts[0] == word:
        return [_part(word)]
    return [_cut(word), *(_part(p) for p in parts)]


def _cjk_terms(run: str) -> list[str]:
    out = [run[i : i + 2] for i in range(len(run) - 1)]
    out.append(run[-1])
    return out


def _tokens(text: str) -> Iterable[tuple[str, bool]]:
    """(term, is a single CJK character) in text order."""
    text = normalize(text)
    pos = 0
    for m in _CJK_RUN.finditer(text):
        for w in _WORD.findall(text[pos : m.start()]):
            yield from ((t, False) for t in _word_terms(w))
        run = m.group()
        yield from ((t, len(t) == 1) for t in _cjk_terms(run))
        pos = m.end()
    for w in _WORD.findall(text[pos:]):
        yield from ((t, False) for t in _word_terms(w))


def terms(text: str) -> list[str]:
    """The index terms of ``text``, in order, repeats kept (they count for ranking)."""
    return [t for t, _ in _tokens(text)]


def index_text(heading_path: Sequence[str], text: str) -> str:
    """The value of ``chunks.search_terms``: the terms of the headings and the text."""
    return " ".join([*terms(" ".join(heading_path)), *terms(text)])


def match_terms(query: str) -> list[tuple[str, bool]]:
    """The distinct index terms a query is matched by, each with whether to match it as a
    prefix (a lone CJK character, which the index holds only at the start of bigrams or at
    run ends). Not what a hit highlights: see ``app.text.highlight.highlight_terms``."""
    seen: dict[str, bool] = {}
    for term, single_cjk in _tokens(query):
        if term not in seen:
            seen[term] = single_cjk
    # A lone character that some bigram of the query already covers adds nothing.
    out = [(t, p) for t, p in seen.items() if not (p and any(len(o) == 2 and t in o for o in seen))]
    return out[:MAX_QUERY_TERMS]
