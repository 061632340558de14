"""The lexical leg of search, in the database's own full-text engine.

Text is tokenised here, in Python, the same way for passages and for queries, and the
terms are stored space-separated in ``chunks.search_terms``. The database only splits
that column on spaces and indexes the terms as they are:

- SQLite: the FTS5 external-content table ``chunks_fts`` (kept in step with ``chunks``
  by triggers, see migration 0005), ranked with ``bm25()``;
- PostgreSQL: a GIN index on ``array_to_tsvector(string_to_array(search_terms, ' '))``
  (lexemes taken verbatim, no parser and no dictionary in between), ranked with
  ``ts_rank``.

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
from sqlalchemy import (
    Float,
    Integer,
    Select,
    cast,
    column,
    func,
    literal_column,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.documents.models import Chunk

# The SQLite FTS5 table and the PostgreSQL index (created by migration 0005).
FTS_TABLE = "chunks_fts"
PG_INDEX = "ix_chunks_search_terms"
# FTS5 keeps "_", "-" and "." inside tokens, as the Python tokeniser does, and takes
# combining marks as part of words (a split would still match: see match_query).
FTS_TOKENIZE = "unicode61 remove_diacritics 0 categories 'L* N* Co M*' tokenchars '-_.'"
# The GIN index's expression; a query must use the very same one to use the index.
PG_VECTOR_SQL = "array_to_tsvector(string_to_array(COALESCE(search_terms, ''), ' '))"

# Terms longer than this are cut (a base64 blob is no search term; tsvector lexemes are
# limited to 2 KiB).
MAX_TERM_CHARS = 64
# At most this many distinct terms of a query are searched for.
MAX_QUERY_TERMS = 64

_CJK_RANGES = (
    "\u1100-\u11ff"  # Hangul Jamo
    "\u2e80-\u2fdf"  # CJK radicals, Kangxi radicals
    "\u3005\u3007\u3021-\u3029\u3038-\u303b"  # 々, 〇, Hangzhou numerals
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3100-\u312f\u3130-\u318f\u31a0-\u31bf\u31f0-\u31ff"  # Bopomofo, Jamo, Katakana ext.
    "\u3400-\u4dbf\u4e00-\u9fff"  # CJK unified ideographs (+ extension A)
    "\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff"  # Hangul
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\U00020000-\U0003ffff"  # CJK extensions B and later
)
_CJK_RUN = re.compile(f"[{_CJK_RANGES}]+")
# A word: letters, digits, marks and "_" (\w), possibly joined by "-" or "." to more.
_WORD = re.compile(r"\w+(?:[-.]\w+)*")
_PARTS = re.compile(r"[-._]+")


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return str(_stemmer().stemWord(word))


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _cut(term: str) -> str:
    return term[:MAX_TERM_CHARS]


def _part(word: str) -> str:
    if word.isascii() and word.isalpha():
        return _cut(_stem(word))
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


def query_terms(query: str) -> list[tuple[str, bool]]:
    """The distinct terms of a query, each with whether to match it as a prefix (a lone
    CJK character, which the index holds only at the start of bigrams or at run ends)."""
    seen: dict[str, bool] = {}
    for term, single_cjk in _tokens(query):
        if term not in seen:
            seen[term] = single_cjk
    # A lone character that some bigram of the query already covers adds nothing.
    out = [(t, p) for t, p in seen.items() if not (p and any(len(o) == 2 and t in o for o in seen))]
    return out[:MAX_QUERY_TERMS]


def fts5_query(query: str) -> str:
    """An FTS5 MATCH expression: any of the query's terms, each a quoted string (so no
    term is read as an operator or column name; a term the FTS5 tokenizer splits becomes
    a phrase of its pieces, as the same term was split when indexed)."""
    quoted = ['"' + t.replace('"', '""') + '"' + ("*" if p else "") for t, p in query_terms(query)]
    return " OR ".join(quoted)


def tsquery(query: str) -> str:
    """A PostgreSQL tsquery literal (for ``CAST(:q AS tsquery)``, no parser in between):
    any of the query's terms, each a quoted lexeme."""
    quoted = []
    for t, p in query_terms(query):
        lexeme = t.replace("\\", "\\\\").replace("'", "''")
        quoted.append(f"'{lexeme}'" + (":*" if p else ""))
    return " | ".join(quoted)


def match_query(query: str, dialect: str) -> str:
    """The full-text query for ``dialect`` ("sqlite" or "postgresql"); "" when the query
    has no terms. Bind it as a parameter, never into the SQL text."""
    return tsquery(query) if dialect == "postgresql" else fts5_query(query)


def pg_vector() -> ColumnElement[Any]:
    """``array_to_tsvector(string_to_array(COALESCE(chunks.search_terms, ''), ' '))`` with
    the constants inline, so that PostgreSQL matches it to the GIN index's expression."""
    return func.array_to_tsvector(
        func.string_to_array(
            func.coalesce(Chunk.search_terms, literal_column("''")), literal_column("' '")
        )
    )


def lexical_search(
    session: Session,
    collection_id: int,
    query: str,
    k: int,
    allowed_ids: Select[Any] | None = None,
) -> list[tuple[int, float]]:
    """The ``k`` chunks of the collection that match ``query`` best, as (chunk id, score),
    best first, higher scores better. ``allowed_ids``, a select of chunk ids, restricts
    the search inside the query, so that k hits come back when k allowed chunks match."""
    if k <= 0:
        return []
    dialect = session.get_bind().dialect.name
    q = match_query(query, dialect)
    if not q:
        return []
    if dialect == "postgresql":
        tsq = cast(q, TSQUERY)
        vec = pg_vector()
        score = func.ts_rank(vec, tsq, type_=Float)
        stmt = (
            select(Chunk.id, score.label("score"))
            .where(Chunk.collection_id == collection_id, vec.op("@@")(tsq))
            .order_by(score.desc(), Chunk.id)
            .limit(k)
        )
    else:
        fts = table(FTS_TABLE, column("rowid", Integer))
        fts_ref: ColumnElement[Any] = literal_column(FTS_TABLE)
        rank = func.bm25(fts_ref, type_=Float)
        stmt = (
            select(Chunk.id, (-rank).label("score"))
            .select_from(fts)
            .join(Chunk, Chunk.id == fts.c.rowid)
            .where(fts_ref.op("MATCH")(q), Chunk.collection_id == collection_id)
            .order_by(rank, Chunk.id)
            .limit(k)
        )
    if allowed_ids is not None:
        stmt = stmt.where(Chunk.id.in_(allowed_ids))
    return [(int(cid), float(score)) for cid, score in session.execute(stmt)]


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's ``include_object``: leave out the full-text index, which the models do
    not describe (the FTS5 table and its shadow tables, the PostgreSQL GIN index)."""
    if type_ == "table" and name is not None:
        return not (name == FTS_TABLE or name.startswith(FTS_TABLE + "_"))
    if type_ == "index":
        return name != PG_INDEX
    return True
