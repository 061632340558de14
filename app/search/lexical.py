"""The lexical leg of search, in the database's own full-text engine.

Text is tokenised in Python (``app.text.terms``, which describes how), the same way for
passages and for queries, and the terms are stored space-separated in
``chunks.search_terms``. The database only splits that column on spaces and indexes the
terms as they are:

- SQLite: the FTS5 external-content table ``chunks_fts`` (kept in step with ``chunks``
  by triggers, see migration 0005), ranked with ``bm25()``;
- PostgreSQL: a GIN index on ``array_to_tsvector(string_to_array(search_terms, ' '))``
  (lexemes taken verbatim, no parser and no dictionary in between), ranked with
  ``ts_rank``.

A change to the tokeniser needs a migration that refills ``search_terms`` (and, on
SQLite, rebuilds ``chunks_fts``), as 0005 does.
"""

from __future__ import annotations

from typing import Any

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
from app.text.terms import match_terms

# The SQLite FTS5 table and the PostgreSQL index (created by migration 0005).
FTS_TABLE = "chunks_fts"
PG_INDEX = "ix_chunks_search_terms"
# FTS5 keeps "_", "-" and "." inside tokens, as the Python tokeniser does, and takes
# combining marks as part of words (a split would still match: see match_query).
FTS_TOKENIZE = "unicode61 remove_diacritics 0 categories 'L* N* Co M*' tokenchars '-_.'"
# The GIN index's expression; a query must use the very same one to use the index.
PG_VECTOR_SQL = "array_to_tsvector(string_to_array(COALESCE(search_terms, ''), ' '))"


def fts5_query(query: str) -> str:
    """An FTS5 MATCH expression: any of the query's terms, each a quoted string (so no
    term is read as an operator or column name; a term the FTS5 tokenizer splits becomes
    a phrase of its pieces, as the same term was split when indexed)."""
    quoted = ['"' + t.replace('"', '""') + '"' + ("*" if p else "") for t, p in match_terms(query)]
    return " OR ".join(quoted)


def tsquery(query: str) -> str:
    """A PostgreSQL tsquery literal (for ``CAST(:q AS tsquery)``, no parser in between):
    any of the query's terms, each a quoted lexeme."""
    quoted = []
    for t, p in match_terms(query):
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
