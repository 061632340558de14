"""stored search vector: a tsvector column with positions on PostgreSQL; fts5vocab on SQLite

PostgreSQL: ``chunks.search_vector``, a generated (STORED) tsvector of
``chunks.search_terms`` with each term's positions, so ``ts_rank`` counts how often a term
occurs; its GIN index replaces the expression index of 0005, which the planner did not
use (the expression was rebuilt per row). The terms are taken verbatim, as 0005 took them:
``to_tsvector('simple', ...)`` would split them again (``kb_embedding_url`` into ``kb``,
``embedding``, ``url``; ``orbit-notes`` into ``orbit``, ``notes``), so the function
``kb_search_vector`` writes the tsvector literal ``'term':1 'term':2 ...`` and casts it
(tsvector input, no parser).

SQLite: ``chunks_fts_vocab``, an ``fts5vocab`` table over ``chunks_fts`` (how many rows
hold each term), read by the lexical leg to leave out very common query terms.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 12:00:00
"""

from collections.abc import Sequence

from alembic import op

from app.search.lexical import (
    FTS_TABLE,
    FTS_VOCAB,
    PG_INDEX,
    PG_VECTOR_COLUMN,
    PG_VECTOR_FUNCTION,
    PG_VECTOR_INDEX,
    PG_VECTOR_SQL,
)

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Positions above 16383 are clipped by PostgreSQL (a term keeps at most 256 of them).
_FUNCTION = f"""
    CREATE OR REPLACE FUNCTION {PG_VECTOR_FUNCTION}(terms text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT COALESCE(string_agg(
            '''' || replace(replace(t.term, '\\', '\\\\'), '''', '''''') || ''':'
                || LEAST(t.i, 16383), ' '), '')::tsvector
        FROM unnest(string_to_array(COALESCE(terms, ''), ' ')) WITH ORDINALITY AS t(term, i)
        WHERE t.term <> ''
    $$"""


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_VOCAB} USING fts5vocab({FTS_TABLE}, row)"
        )
    elif dialect == "postgresql":
        op.execute(_FUNCTION)
        op.execute(
            f"ALTER TABLE chunks ADD COLUMN {PG_VECTOR_COLUMN} tsvector"
            f" GENERATED ALWAYS AS ({PG_VECTOR_FUNCTION}(search_terms)) STORED"
        )
        op.execute(f"CREATE INDEX {PG_VECTOR_INDEX} ON chunks USING gin ({PG_VECTOR_COLUMN})")
        op.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")
        op.execute("ANALYZE chunks")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(f"DROP TABLE IF EXISTS {FTS_VOCAB}")
    elif dialect == "postgresql":
        op.execute(f"CREATE INDEX IF NOT EXISTS {PG_INDEX} ON chunks USING gin (({PG_VECTOR_SQL}))")
        op.execute(f"DROP INDEX IF EXISTS {PG_VECTOR_INDEX}")
        op.execute(f"ALTER TABLE chunks DROP COLUMN IF EXISTS {PG_VECTOR_COLUMN}")
        op.execute(f"DROP FUNCTION IF EXISTS {PG_VECTOR_FUNCTION}(text)")
