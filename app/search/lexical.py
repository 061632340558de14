"""The lexical leg of search: in the database's own full-text engine, or (a collection
from ``KB_LEXICAL_MEMORY_MIN_CHUNKS`` chunks, once built) over in-memory postings of the
same terms, ranked as FTS5 ranks (:func:`memory_search`, ``app/vectors/postings.py``).

Text is tokenised in Python (``app.text.terms``, which describes how), the same way for
passages and for queries, and the terms are stored space-separated in
``chunks.search_terms``. The database only splits that column on spaces and indexes the
terms as they are:

- SQLite: the FTS5 external-content table ``chunks_fts`` (kept in step with ``chunks``
  by triggers, see migration 0005), ranked with ``bm25()``;
- PostgreSQL: the stored column ``chunks.search_vector`` (generated from
  ``search_terms`` by ``kb_search_vector``, migration 0011: each term verbatim with its
  positions, no parser and no dictionary in between) and its GIN index, ranked with
  ``ts_rank``, which counts how often each term occurs.

Very common query terms are left out before the query runs (:func:`prune_terms`): a
term in more than :data:`DF_CEILING` of the chunks matches half the collection and only
adds work, since every match is scored. How many chunks hold a term comes from
``chunks_fts_vocab`` on SQLite (an ``fts5vocab`` table; counted over all collections)
and, on PostgreSQL, from a count through the GIN index kept per collection in
process memory (:class:`DocFreqCache`).

A change to the tokeniser needs a migration that refills ``search_terms`` (and, on
SQLite, rebuilds ``chunks_fts``), as 0005 does.
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    Engine,
    Float,
    Integer,
    Select,
    bindparam,
    cast,
    column,
    func,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import TSQUERY, TSVECTOR
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.documents.models import Chunk
from app.text.scripts import LEXICAL_CJK
from app.text.terms import match_terms
from app.vectors.postings import TermView

# The SQLite FTS5 table (migration 0005) and its fts5vocab table (0011).
FTS_TABLE = "chunks_fts"
FTS_VOCAB = "chunks_fts_vocab"
# PostgreSQL: 0005's expression index (dropped by 0011), and 0011's stored column, the
# function that fills it and its GIN index.
PG_INDEX = "ix_chunks_search_terms"
PG_VECTOR_COLUMN = "search_vector"
PG_VECTOR_FUNCTION = "kb_search_vector"
PG_VECTOR_INDEX = "ix_chunks_search_vector"
# FTS5 keeps "_", "-" and "." inside tokens, as the Python tokeniser does, and takes
# combining marks as part of words (a split would still match: see match_query).
FTS_TOKENIZE = "unicode61 remove_diacritics 0 categories 'L* N* Co M*' tokenchars '-_.'"
# 0005's index expression (kept for 0011's downgrade).
PG_VECTOR_SQL = "array_to_tsvector(string_to_array(COALESCE(search_terms, ''), ' '))"

# Pruning (prune_terms): a query term held by more than this share of the chunks is left
# out, a CJK bigram only above CJK_DF_CEILING (bigrams are discriminative); the
# MIN_KEPT_TERMS rarest terms are always kept; collections smaller than
# PRUNE_MIN_CHUNKS are not pruned (nothing to save there).
DF_CEILING = 0.25
CJK_DF_CEILING = 0.6
MIN_KEPT_TERMS = 3
PRUNE_MIN_CHUNKS = 1000
# PostgreSQL's per-term counts are reused while the collection's version is unchanged,
# or for this many seconds after it changed (a share moves slowly).
DF_MAX_AGE_S = 600.0
# SQLite: matches ranked inside FTS5 first, per hit wanted (see _fts_first).
FTS_FIRST_FACTOR = 4
# ts_rank's normalization flags (0: none; 1: divide by 1 + log of the passage's length).
PG_RANK_NORMALIZATION = 0


def _quote_fts5(term: str, prefix: bool) -> str:
    return '"' + term.replace('"', '""') + '"' + ("*" if prefix else "")


def _quote_tsquery(term: str, prefix: bool) -> str:
    lexeme = term.replace("\\", "\\\\").replace("'", "''")
    return f"'{lexeme}'" + (":*" if prefix else "")


def fts5_query(query: str) -> str:
    """An FTS5 MATCH expression: any of the query's terms, each a quoted string (so no
    term is read as an operator or column name; a term the FTS5 tokenizer splits becomes
    a phrase of its pieces, as the same term was split when indexed)."""
    return _join(match_terms(query), "sqlite")


def tsquery(query: str) -> str:
    """A PostgreSQL tsquery literal (for ``CAST(:q AS tsquery)``, no parser in between):
    any of the query's terms, each a quoted lexeme."""
    return _join(match_terms(query), "postgresql")


def _join(terms: list[tuple[str, bool]], dialect: str) -> str:
    if dialect == "postgresql":
        return " | ".join(_quote_tsquery(t, p) for t, p in terms)
    return " OR ".join(_quote_fts5(t, p) for t, p in terms)


def match_query(query: str, dialect: str) -> str:
    """The full-text query for ``dialect`` ("sqlite" or "postgresql"); "" when the query
    has no terms. Bind it as a parameter, never into the SQL text."""
    return _join(match_terms(query), dialect)


# A term with a Chinese, Japanese or Korean character (a bigram or a lone character).
CJK_RE = re.compile(f"[{LEXICAL_CJK}]")


def prune_terms(
    terms: list[tuple[str, bool]], df: dict[str, int], total: int
) -> list[tuple[str, bool]]:
    """``terms`` without the very common ones: a term held by more than
    :data:`DF_CEILING` of ``total`` chunks (a CJK bigram: :data:`CJK_DF_CEILING`) is
    left out, but the :data:`MIN_KEPT_TERMS` rarest terms always stay, and prefix terms
    (lone CJK characters, whose count is unknown) always stay. Order is kept."""
    if total < PRUNE_MIN_CHUNKS:
        return terms
    counted = [(t, p) for t, p in terms if not p]
    if len(counted) <= MIN_KEPT_TERMS:
        return terms
    rarest = {
        t for t, _ in sorted(counted, key=lambda tp: (df.get(tp[0], 0), tp[0]))[:MIN_KEPT_TERMS]
    }

    def keep(term: str, prefix: bool) -> bool:
        if prefix or term in rarest:
            return True
        ceiling = CJK_DF_CEILING if CJK_RE.search(term) else DF_CEILING
        return df.get(term, 0) <= ceiling * total

    return [(t, p) for t, p in terms if keep(t, p)]


@dataclass
class _CollectionCounts:
    version: int
    at: float
    total: int
    df: dict[str, int] = field(default_factory=dict)


class DocFreqCache:
    """PostgreSQL: per collection, how many of its chunks hold each term asked about
    (counted through the GIN index, once per term) and how many chunks it has; reused
    while the collection's version is unchanged, or for :data:`DF_MAX_AGE_S` after."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_engine: weakref.WeakKeyDictionary[Engine, dict[int, _CollectionCounts]] = (
            weakref.WeakKeyDictionary()
        )

    def clear(self) -> None:
        with self._lock:
            self._by_engine.clear()

    def counts(
        self, session: Session, collection_id: int, terms: list[str]
    ) -> tuple[dict[str, int], int]:
        engine = session.get_bind().engine
        version = session.execute(
            text("SELECT version FROM collections WHERE id = :c"), {"c": collection_id}
        ).scalar()
        now = time.monotonic()
        with self._lock:
            per = self._by_engine.setdefault(engine, {})
            entry = per.get(collection_id)
            if entry is None or (entry.version != version and now - entry.at > DF_MAX_AGE_S):
                entry = None
            missing = [t for t in terms if entry is None or t not in entry.df]
        if entry is None:
            total = int(
                session.scalar(
                    select(func.count())
                    .select_from(Chunk)
                    .where(Chunk.collection_id == collection_id)
                )
                or 0
            )
            entry = _CollectionCounts(version=int(version or 0), at=now, total=total)
        if entry.total >= PRUNE_MIN_CHUNKS:
            vec = literal_column(PG_VECTOR_COLUMN, TSVECTOR)
            for term in missing:
                entry.df[term] = int(
                    session.scalar(
                        select(func.count())
                        .select_from(Chunk)
                        .where(
                            Chunk.collection_id == collection_id,
                            vec.op("@@")(cast(_quote_tsquery(term, False), TSQUERY)),
                        )
                    )
                    or 0
                )
        with self._lock:
            self._by_engine.setdefault(engine, {})[collection_id] = entry
            return {t: entry.df.get(t, 0) for t in terms}, entry.total


DOC_FREQ = DocFreqCache()


class _Totals:
    """SQLite: the number of chunks (all collections) per engine, counted again after
    DF_MAX_AGE_S (a count reads a whole index; a share moves slowly)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_engine: weakref.WeakKeyDictionary[Engine, tuple[float, int]] = (
            weakref.WeakKeyDictionary()
        )

    def total(self, session: Session) -> int:
        engine = session.get_bind().engine
        now = time.monotonic()
        with self._lock:
            cached = self._by_engine.get(engine)
        if cached is not None and now - cached[0] <= DF_MAX_AGE_S:
            return cached[1]
        total = int(session.execute(text("SELECT count(*) FROM chunks")).scalar() or 0)
        with self._lock:
            self._by_engine[engine] = (now, total)
        return total


_SQLITE_TOTALS = _Totals()


def _sqlite_counts(session: Session, terms: list[str]) -> tuple[dict[str, int], int]:
    """SQLite: how many rows of ``chunks_fts`` (all collections) hold each term, and how
    many rows it has."""
    total = _SQLITE_TOTALS.total(session)
    if total < PRUNE_MIN_CHUNKS or not terms:
        return {}, total
    rows = session.execute(
        text(f"SELECT term, doc FROM {FTS_VOCAB} WHERE term IN :terms").bindparams(
            bindparam("terms", expanding=True)
        ),
        {"terms": terms},
    )
    return {str(t): int(n) for t, n in rows}, total


def query_terms(
    session: Session, collection_id: int, query: str, *, prune: bool = True
) -> list[tuple[str, bool]]:
    """The terms ``query`` is matched by, very common ones left out (:func:`prune_terms`)."""
    terms = match_terms(query)
    counted = [t for t, p in terms if not p]
    if not prune or len(counted) <= MIN_KEPT_TERMS:
        return terms
    if session.get_bind().dialect.name == "postgresql":
        df, total = DOC_FREQ.counts(session, collection_id, counted)
    else:
        df, total = _sqlite_counts(session, counted)
    return prune_terms(terms, df, total)


def pg_vector() -> ColumnElement[Any]:
    """``chunks.search_vector``, the stored tsvector its GIN index covers (PostgreSQL)."""
    return literal_column(f"chunks.{PG_VECTOR_COLUMN}", TSVECTOR)


def lexical_search(
    session: Session,
    collection_ids: int | Sequence[int],
    query: str,
    k: int,
    allowed_ids: Select[Any] | None = None,
    *,
    prune: bool = True,
) -> list[tuple[int, float]]:
    """The ``k`` chunks of the collection that match ``query`` best, as (chunk id, score),
    best first, higher scores better. ``allowed_ids``, a select of chunk ids, restricts
    the search inside the query, so that k hits come back when k allowed chunks match.
    ``prune``: leave out very common query terms (:func:`prune_terms`)."""
    ids = [collection_ids] if isinstance(collection_ids, int) else sorted(collection_ids)
    if k <= 0 or not ids:
        return []
    dialect = session.get_bind().dialect.name
    # Pruning reads the first collection's term counts (PostgreSQL; SQLite's are global):
    # a share, and the rarest terms are kept whatever it says.
    q = _join(query_terms(session, ids[0], query, prune=prune), dialect)
    if not q:
        return []
    if dialect == "postgresql":
        tsq = cast(q, TSQUERY)
        vec = pg_vector()
        score = func.ts_rank(vec, tsq, literal_column(str(PG_RANK_NORMALIZATION)), type_=Float)
        stmt = (
            select(Chunk.id, score.label("score"))
            .where(vec.op("@@")(tsq), Chunk.collection_id.in_(ids), Chunk.disabled.is_(False))
            .order_by(score.desc(), Chunk.id)
            .limit(k)
        )
    else:
        if allowed_ids is None:
            found = _fts_first(session, ids, q, k)
            if found is not None:
                return found
        fts = table(FTS_TABLE, column("rowid", Integer))
        fts_ref: ColumnElement[Any] = literal_column(FTS_TABLE)
        rank = func.bm25(fts_ref, type_=Float)
        stmt = (
            select(Chunk.id, (-rank).label("score"))
            .select_from(fts)
            .join(Chunk, Chunk.id == fts.c.rowid)
            .where(fts_ref.op("MATCH")(q), Chunk.collection_id.in_(ids), Chunk.disabled.is_(False))
            .order_by(rank, Chunk.id)
            .limit(k)
        )
    if allowed_ids is not None:
        stmt = stmt.where(Chunk.id.in_(allowed_ids))
    return [(int(cid), float(score)) for cid, score in session.execute(stmt)]


def memory_search(
    views: Sequence[tuple[TermView, npt.NDArray[np.int64] | None]],
    query: str,
    k: int,
    *,
    prune: bool = True,
) -> list[tuple[int, float]]:
    """The lexical leg over in-memory postings (``app/vectors/postings.py``), one view per
    collection with the chunk ids its filters allow (None: all): each collection's best
    ``k`` by bm25 over its own counts, after the same pruning as :func:`lexical_search`,
    merged best first (ties by chunk id)."""
    terms = match_terms(query)
    if k <= 0 or not terms:
        return []
    found: list[tuple[int, float]] = []
    for view, allowed in views:
        got = {tp: view.postings(*tp) for tp in terms}
        kept = terms
        if prune:
            counts = {t: len(got[(t, p)]) for t, p in terms if not p}
            kept = prune_terms(terms, counts, view.live)
        found.extend(view.top([got[tp] for tp in kept], k, allowed))
    return sorted(found, key=lambda h: (-h[1], h[0]))[:k]


def _fts_first(
    session: Session, collection_ids: list[int], q: str, k: int
) -> list[tuple[int, float]] | None:
    """SQLite, unfiltered: the best ``FTS_FIRST_FACTOR * k`` matches ranked inside FTS5
    (``ORDER BY rank``: no join per match), then kept if they are the collection's; None
    when fewer than ``k`` of them are (other collections' chunks ranked higher) and the
    joined query must decide. The joined form looks up every match's chunk row before
    ranking: at 100k chunks, with a median of 26k matches, 1.7x the time."""
    wanted = k * FTS_FIRST_FACTOR
    top = session.execute(
        text(
            f"SELECT rowid, rank FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :q ORDER BY rank LIMIT :n"
        ),
        {"q": q, "n": wanted},
    ).all()
    if not top:
        return []
    mine = set(
        session.scalars(
            select(Chunk.id).where(
                Chunk.id.in_([int(r[0]) for r in top]),
                Chunk.collection_id.in_(collection_ids),
                Chunk.disabled.is_(False),
            )
        )
    )
    hits = sorted(
        ((int(r), -float(s)) for r, s in top if int(r) in mine), key=lambda h: (-h[1], h[0])
    )
    if len(hits) >= k or len(top) < wanted:
        return hits[:k]
    return None


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's ``include_object``: leave out the full-text index, which the models do
    not describe (the FTS5 table, its shadow and vocabulary tables, the PostgreSQL
    stored tsvector column and its GIN index)."""
    if type_ == "table" and name is not None:
        return not (name == FTS_TABLE or name.startswith(FTS_TABLE + "_"))
    if type_ == "index":
        return name not in (PG_INDEX, PG_VECTOR_INDEX)
    if type_ == "column":
        return name != PG_VECTOR_COLUMN
    return True


# Planner statistics (see refresh_statistics): at most this many rows sampled per index
# on SQLite; refreshed this often by a Runtime's maintenance thread (cheap when nothing
# changed much).
SQLITE_ANALYSIS_LIMIT = 1000
STATISTICS_INTERVAL_S = 600.0


def refresh_statistics(engine: Engine) -> None:
    """Refresh the planner's statistics, cheaply: on SQLite ``ANALYZE`` the first time,
    ``PRAGMA optimize`` after (it analyses the tables whose row counts changed much
    since), sampled (SQLITE_ANALYSIS_LIMIT rows per index); PostgreSQL's ``ANALYZE`` of the tables search
    reads (sampled too; autovacuum does the same when it gets round to it). Without
    statistics SQLite starts a hit fetch from the documents' status index and a tag
    filter from every chunk of the collection."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(f"PRAGMA analysis_limit={SQLITE_ANALYSIS_LIMIT}")
            analysed = (
                conn.exec_driver_sql(
                    "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
                ).first()
                and conn.exec_driver_sql("SELECT 1 FROM sqlite_stat1 WHERE tbl = 'chunks'").first()
            )
            if analysed:
                conn.exec_driver_sql("PRAGMA optimize=0x10002")
            elif (
                conn.exec_driver_sql(
                    f"SELECT count(*) FROM (SELECT 1 FROM chunks LIMIT {PRUNE_MIN_CHUNKS})"
                ).scalar_one()
                >= PRUNE_MIN_CHUNKS
            ):
                # optimize (SQLite < 3.46) leaves a never-analysed table alone unless this
                # connection's queries wanted its statistics: the first time, ANALYZE; not
                # while the database is nearly empty (statistics of empty tables mislead
                # the planner as the tables fill: ingest slowed down several times).
                conn.exec_driver_sql("ANALYZE")
        elif engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE chunks, documents, document_tags")
        conn.commit()


class StatisticsThread:
    """Calls :func:`refresh_statistics` every ``interval`` seconds in a daemon thread,
    off the request path; a failure (the database busy or away) waits for the next turn."""

    def __init__(self, engine: Engine, interval: float = STATISTICS_INTERVAL_S) -> None:
        self._engine = engine
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kb-statistics", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                refresh_statistics(self._engine)
            except Exception:  # statistics are an optimisation only
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
