"""lexical search: chunks.search_terms and its full-text index

SQLite: the FTS5 external-content table ``chunks_fts`` over ``chunks.search_terms`` and
triggers that keep it in step with inserts, updates and deletes of chunks (cascades from
documents and collections included). PostgreSQL: a GIN index on the terms as a tsvector.
Existing chunks are filled in batches with ``app.search.lexical.index_text``.

Note for later migrations on SQLite: a batch operation that recreates ``chunks`` drops
its triggers; recreate them (``create_sqlite_triggers``) and rebuild ``chunks_fts``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 12:00:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.search.lexical import FTS_TABLE, FTS_TOKENIZE, PG_INDEX, PG_VECTOR_SQL
from app.text.terms import index_text

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500

_TRIGGERS = {
    "chunks_fts_ai": f"""
        CREATE TRIGGER chunks_fts_ai AFTER INSERT ON chunks BEGIN
            INSERT INTO {FTS_TABLE}(rowid, search_terms) VALUES (new.id, new.search_terms);
        END""",
    "chunks_fts_ad": f"""
        CREATE TRIGGER chunks_fts_ad AFTER DELETE ON chunks BEGIN
            INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, search_terms)
                VALUES ('delete', old.id, old.search_terms);
        END""",
    "chunks_fts_au": f"""
        CREATE TRIGGER chunks_fts_au AFTER UPDATE OF id, search_terms ON chunks BEGIN
            INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, search_terms)
                VALUES ('delete', old.id, old.search_terms);
            INSERT INTO {FTS_TABLE}(rowid, search_terms) VALUES (new.id, new.search_terms);
        END""",
}


def create_sqlite_triggers() -> None:
    for name, sql in _TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(sql)


def _backfill() -> None:
    chunks = sa.table(
        "chunks",
        sa.column("id", sa.Integer),
        sa.column("heading_path", sa.JSON),
        sa.column("text", sa.Text),
        sa.column("search_terms", sa.Text),
    )
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.select(chunks.c.id, chunks.c.heading_path, chunks.c.text)
            .where(chunks.c.id > last, chunks.c.search_terms.is_(None))
            .order_by(chunks.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        values = []
        for cid, heading_path, text in rows:
            if isinstance(heading_path, str):
                heading_path = json.loads(heading_path)
            values.append(
                {"cid": cid, "terms": index_text([str(h) for h in heading_path or []], text or "")}
            )
        bind.execute(
            chunks.update()
            .where(chunks.c.id == sa.bindparam("cid"))
            .values(search_terms=sa.bindparam("terms")),
            values,
        )
        last = rows[-1][0]


def upgrade() -> None:
    op.add_column("chunks", sa.Column("search_terms", sa.Text(), nullable=True))
    _backfill()
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        # Filled from the backfilled column; the triggers come after, as an FTS5 'delete'
        # of a row the table never indexed would corrupt it.
        op.execute(
            f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(search_terms, content='chunks',"
            f" content_rowid='id', tokenize=\"{FTS_TOKENIZE}\")"
        )
        op.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")
        create_sqlite_triggers()
    elif dialect == "postgresql":
        op.execute(f"CREATE INDEX {PG_INDEX} ON chunks USING gin (({PG_VECTOR_SQL}))")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in _TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    elif dialect == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")
    with op.batch_alter_table("chunks", schema=None) as batch_op:
        batch_op.drop_column("search_terms")
