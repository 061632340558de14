"""chunk change log: chunk_changes, written by triggers on chunks and collections

Every insert and delete of a chunk, and every change of its vector, adds a row to
``chunk_changes`` (collection, chunk id, "add"/"remove") in the same transaction, from
database triggers, so no code path that stores, replaces or deletes chunks (cascades from
documents and collections included) can forget it. The rows get the collection's new
version when the transaction bumps ``collections.version`` (a trigger stamps the rows
still NULL); serving processes then apply only the changes after the version their FAISS
index covers (app/vectors/index.py). Existing databases start with an empty log: a
snapshot written before it is older than the log and is brought up to date by a full
diff of the chunk ids once.

Note for later migrations on SQLite: a batch operation that recreates ``chunks`` or
``collections`` drops their triggers; recreate them (``create_sqlite_triggers``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LOG = "INSERT INTO chunk_changes(collection_id, chunk_id, op)"

SQLITE_TRIGGERS = {
    "chunk_changes_ai": f"""
        CREATE TRIGGER chunk_changes_ai AFTER INSERT ON chunks BEGIN
            {_LOG} VALUES (new.collection_id, new.id, 'add');
        END""",
    "chunk_changes_ad": f"""
        CREATE TRIGGER chunk_changes_ad AFTER DELETE ON chunks BEGIN
            {_LOG} VALUES (old.collection_id, old.id, 'remove');
        END""",
    "chunk_changes_au": f"""
        CREATE TRIGGER chunk_changes_au AFTER UPDATE OF id, collection_id, vector ON chunks
        WHEN old.vector IS NOT new.vector OR old.id != new.id
            OR old.collection_id != new.collection_id
        BEGIN
            {_LOG} VALUES (old.collection_id, old.id, 'remove');
            {_LOG} VALUES (new.collection_id, new.id, 'add');
        END""",
    "chunk_changes_stamp": """
        CREATE TRIGGER chunk_changes_stamp AFTER UPDATE OF version ON collections BEGIN
            UPDATE chunk_changes SET version = new.version
                WHERE collection_id = new.id AND version IS NULL;
        END""",
}

# PostgreSQL: statement-level triggers with transition tables for inserts and deletes
# (one INSERT ... SELECT per statement, however many chunks), a row-level one for a
# changed vector (it fires only when the vector column is set and differs).
PG_FUNCTIONS = {
    "chunk_changes_log_insert": f"""
        CREATE FUNCTION chunk_changes_log_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {_LOG} SELECT collection_id, id, 'add' FROM chunk_changes_new ORDER BY id;
            RETURN NULL;
        END $$""",
    "chunk_changes_log_delete": f"""
        CREATE FUNCTION chunk_changes_log_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {_LOG} SELECT collection_id, id, 'remove' FROM chunk_changes_old ORDER BY id;
            RETURN NULL;
        END $$""",
    "chunk_changes_log_update": f"""
        CREATE FUNCTION chunk_changes_log_update() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {_LOG} VALUES (OLD.collection_id, OLD.id, 'remove'), (NEW.collection_id, NEW.id, 'add');
            RETURN NULL;
        END $$""",
    "chunk_changes_stamp": """
        CREATE FUNCTION chunk_changes_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE chunk_changes SET version = NEW.version
                WHERE collection_id = NEW.id AND version IS NULL;
            RETURN NULL;
        END $$""",
}

PG_TRIGGERS = {
    "chunk_changes_ai": """
        CREATE TRIGGER chunk_changes_ai AFTER INSERT ON chunks
        REFERENCING NEW TABLE AS chunk_changes_new
        FOR EACH STATEMENT EXECUTE FUNCTION chunk_changes_log_insert()""",
    "chunk_changes_ad": """
        CREATE TRIGGER chunk_changes_ad AFTER DELETE ON chunks
        REFERENCING OLD TABLE AS chunk_changes_old
        FOR EACH STATEMENT EXECUTE FUNCTION chunk_changes_log_delete()""",
    "chunk_changes_au": """
        CREATE TRIGGER chunk_changes_au AFTER UPDATE OF id, collection_id, vector ON chunks
        FOR EACH ROW WHEN (OLD.vector IS DISTINCT FROM NEW.vector OR OLD.id <> NEW.id
            OR OLD.collection_id <> NEW.collection_id)
        EXECUTE FUNCTION chunk_changes_log_update()""",
    "chunk_changes_stamp": """
        CREATE TRIGGER chunk_changes_stamp AFTER UPDATE OF version ON collections
        FOR EACH ROW EXECUTE FUNCTION chunk_changes_stamp()""",
}
_PG_TRIGGER_TABLES = {
    "chunk_changes_ai": "chunks",
    "chunk_changes_ad": "chunks",
    "chunk_changes_au": "chunks",
    "chunk_changes_stamp": "collections",
}


def create_sqlite_triggers() -> None:
    for name, sql in SQLITE_TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(sql)


def upgrade() -> None:
    op.create_table(
        "chunk_changes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("chunk_id", sa.Integer(), nullable=False),
        sa.Column("op", sa.String(length=10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_chunk_changes")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("chunk_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_chunk_changes_collection_id_version", ["collection_id", "version"], unique=False
        )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        create_sqlite_triggers()
    elif dialect == "postgresql":
        for sql in PG_FUNCTIONS.values():
            op.execute(sql)
        for sql in PG_TRIGGERS.values():
            op.execute(sql)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    elif dialect == "postgresql":
        for name, table in _PG_TRIGGER_TABLES.items():
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        for name in PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    with op.batch_alter_table("chunk_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_chunk_changes_collection_id_version")
    op.drop_table("chunk_changes")
