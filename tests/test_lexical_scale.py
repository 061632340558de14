"""The lexical leg at scale: PostgreSQL's stored tsvector and its GIN index, pruning of
very common query terms, and the planner statistics search relies on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from app.documents.models import Chunk
from app.runtime import Runtime
from app.search import lexical
from app.search.lexical import (
    PG_VECTOR_INDEX,
    lexical_search,
    prune_terms,
    query_terms,
    refresh_statistics,
)
from ingest.worker import Worker
from tests.factories import store_upload
from tests.samples import GUIDE_MD, LEAVE_MD

TECH_MD = """\
# Error codes

Error E1234 means that KB_EMBEDDING_URL is not set. It was fixed in v1.2.3 of orbit-notes.
Set it and restart: the service reads it at start.

# Restart

To restart the service, run the restart script; the service reads the settings again.
"""


def _ingest(rt: Runtime) -> None:
    for name, data in (("guide.md", GUIDE_MD), ("leave.md", LEAVE_MD), ("tech.md", TECH_MD)):
        store_upload(rt, name, data.encode())
    assert {o.status for o in Worker(rt).run_until_idle()} == {"ready"}


@contextmanager
def _captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", grab)


def _pad_chunks(rt: Runtime, copies: int) -> None:
    """Copy the collection's chunks ``copies`` times with filler terms only, so that the
    table is large enough for the planner to weigh an index against a scan."""
    with rt.engine.begin() as conn:
        if rt.engine.dialect.name == "postgresql":
            series = "generate_series(1, :n) AS g(g)"
        else:
            series = (
                "(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < :n)"
                " SELECT g FROM s) AS g"
            )
        conn.execute(
            text(
                "INSERT INTO chunks (document_id, collection_id, ordinal, heading_path, text,"
                " token_count, language, kind, content_hash, vector, search_terms, created_at)"
                " SELECT c.document_id, c.collection_id, c.ordinal + 1000 * g.g, c.heading_path,"
                " 'filler', 1, c.language, c.kind, c.content_hash, c.vector,"
                " 'filler common word ' || CAST(g.g AS VARCHAR(10)), c.created_at"
                f" FROM chunks c, {series}"
            ),
            {"n": copies},
        )
    refresh_statistics(rt.engine)


# -- PostgreSQL: the stored tsvector --------------------------------------------------


def test_postgresql_lexical_query_uses_the_gin_index(rt: Runtime, backend: str) -> None:
    """The very statement lexical_search runs, EXPLAINed on a table of a few thousand
    rows (with statistics) where the term is rare: a Bitmap Index Scan on the stored
    column's GIN index, no sequential scan. No planner setting is changed."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL only")
    _ingest(rt)
    _pad_chunks(rt, 400)
    with rt.sessions() as s:
        assert int(s.scalar(text("SELECT count(*) FROM chunks")) or 0) > 3000
        cid = rt.collection(s).id
        with _captured(rt.engine) as seen:
            hits = lexical_search(s, cid, "orbit-notes", 5, prune=False)
        assert hits
        statement, params = next((q, p) for q, p in seen if "ts_rank" in q)
        # The DBAPI connection, so the captured statement runs with its own parameters.
        cursor = s.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("EXPLAIN " + statement, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        assert f"Bitmap Index Scan on {PG_VECTOR_INDEX}" in plan, plan
        assert "Seq Scan on chunks" not in plan, plan


def test_postgresql_vector_keeps_terms_verbatim_and_counts_them(rt: Runtime, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL only")
    with rt.sessions() as s:
        vec = s.scalar(
            text("SELECT CAST(kb_search_vector(:t) AS text)"),
            {"t": "kb_embedding_url orbit-notes v1.2.3 it's a\\b x:y|z 病假 restart restart"},
        )
        assert vec is not None
        for lexeme in (
            "'kb_embedding_url':1",
            "'orbit-notes':2",
            "'v1.2.3':3",
            "'it''s':4",
            "'a\\\\b':5",
            "'x:y|z':6",
            "'病假':7",
            "'restart':8,9",
        ):
            assert lexeme in vec, vec
        assert s.scalar(text("SELECT kb_search_vector('') = ''::tsvector"))
        assert s.scalar(text("SELECT kb_search_vector(NULL) = ''::tsvector"))
        # Frequencies count: the passage with the term twice ranks above the one with it once.
        twice, once = s.execute(
            text(
                "SELECT ts_rank(kb_search_vector('restart restart x'), 'restart'::tsquery),"
                " ts_rank(kb_search_vector('restart x y'), 'restart'::tsquery)"
            )
        ).one()
        assert twice > once


def test_stored_vector_follows_updates_of_the_terms(rt: Runtime, backend: str) -> None:
    _ingest(rt)
    with rt.sessions() as s:
        cid = rt.collection(s).id
        assert lexical_search(s, cid, "zyzzyva", 5) == []
        chunk = s.query(Chunk).order_by(Chunk.id).first()
        assert chunk is not None
        chunk.search_terms = "zyzzyva"
        s.commit()
        assert [c for c, _ in lexical_search(s, cid, "zyzzyva", 5)] == [chunk.id]


# -- pruning --------------------------------------------------------------------------


def test_prune_terms_drops_common_terms_and_keeps_the_rarest() -> None:
    terms = [("the", False), ("servic", False), ("restart", False), ("e1234", False), ("a", False)]
    df = {"the": 900, "servic": 400, "restart": 20, "e1234": 2, "a": 950}
    kept = prune_terms(terms, df, 1000)
    assert kept == [("servic", False), ("restart", False), ("e1234", False)]
    # The ceiling alone would keep two: the three rarest stay whatever their counts.
    df2 = {"the": 900, "servic": 400, "restart": 300, "e1234": 2, "a": 950}
    assert prune_terms(terms, df2, 1000) == [
        ("servic", False),
        ("restart", False),
        ("e1234", False),
    ]
    # A small collection is not pruned; nor is a short query.
    assert prune_terms(terms, df, 999) == terms
    assert prune_terms(terms[:3], df, 1000) == terms[:3]


def test_prune_terms_keeps_cjk_bigrams_and_prefix_terms() -> None:
    terms = [
        ("病假", False),
        ("假工", False),
        ("工资", False),
        ("the", False),
        ("a", False),
        ("资", True),
    ]
    df = {"病假": 400, "假工": 30, "工资": 500, "the": 900, "a": 950}
    assert prune_terms(terms, df, 1000) == [
        ("病假", False),
        ("假工", False),
        ("工资", False),
        ("资", True),
    ]
    # In 70% of the chunks: too common even for a bigram (and not among the rarest three).
    df.update({"工资": 700, "the": 100, "a": 120})
    kept = prune_terms(terms, df, 1000)
    assert ("工资", False) not in kept and ("病假", False) in kept


def test_pruned_query_still_finds_the_rare_word(
    rt: Runtime, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long question of common words and one rare one: the common words are left out
    and the passage with the rare word comes first, on both databases."""
    _ingest(rt)
    _pad_chunks(rt, 30)
    monkeypatch.setattr(lexical, "PRUNE_MIN_CHUNKS", 100)
    query = "filler common word: what does the error E1234 mean"
    with rt.sessions() as s:
        cid = rt.collection(s).id
        kept = [t for t, _ in query_terms(s, cid, query)]
        assert "filler" not in kept and "common" not in kept and "word" not in kept
        assert "e1234" in kept and "error" in kept
        hits = lexical_search(s, cid, query, 5)
        assert hits
        assert "E1234" in s.get_one(Chunk, hits[0][0]).text
        # Unpruned, the filler matches every copy; the passage is still among the hits.
        unpruned = [c for c, _ in lexical_search(s, cid, query, 500, prune=False)]
        assert hits[0][0] in unpruned


def _analysed(rt: Runtime) -> set[str]:
    with rt.engine.connect() as conn:
        if not conn.execute(
            text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")
        ).first():
            return set()
        return {str(r[0]) for r in conn.execute(text("SELECT tbl FROM sqlite_stat1"))}


def test_refresh_statistics_runs_on_both_databases(rt: Runtime, backend: str) -> None:
    """SQLite: no statistics while the database is nearly empty (they would mislead the
    planner as it fills), ANALYZE once it holds enough chunks, PRAGMA optimize after."""
    _ingest(rt)
    refresh_statistics(rt.engine)
    if backend == "sqlite":
        assert "chunks" not in _analysed(rt)
    _pad_chunks(rt, 150)  # refreshes the statistics
    refresh_statistics(rt.engine)
    if backend == "sqlite":
        assert "chunks" in _analysed(rt)
