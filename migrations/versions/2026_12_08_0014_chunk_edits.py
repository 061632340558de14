"""chunk edits: chunks.disabled and the chunk_edits history

``chunks.disabled`` (existing chunks stay enabled) leaves a chunk out of every search
until it is enabled again; a trigger logs a change of it in ``chunk_changes`` as a change
of the vector is logged (a remove and an add: the index sync then leaves a disabled
chunk's vector out, app/vectors/index.py). ``chunk_edits`` keeps who edited, disabled or
enabled which chunk, with the old and new text of an edit; a row outlives its chunk (a
re-ingest replaces a document's chunks: ``chunk_id`` becomes NULL) and goes with its
document.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TRIGGER = "chunk_changes_au_disabled"
_LOG = "INSERT INTO chunk_changes(collection_id, chunk_id, op)"

SQLITE_TRIGGER = f"""
    CREATE TRIGGER {_TRIGGER} AFTER UPDATE OF disabled ON chunks
    WHEN old.disabled IS NOT new.disabled
    BEGIN
        {_LOG} VALUES (old.collection_id, old.id, 'remove');
        {_LOG} VALUES (new.collection_id, new.id, 'add');
    END"""

# chunk_changes_log_update is migration 0010's (a remove and an add of the row).
PG_TRIGGER = f"""
    CREATE TRIGGER {_TRIGGER} AFTER UPDATE OF disabled ON chunks
    FOR EACH ROW WHEN (OLD.disabled IS DISTINCT FROM NEW.disabled)
    EXECUTE FUNCTION chunk_changes_log_update()"""


def create_sqlite_triggers() -> None:
    op.execute(f"DROP TRIGGER IF EXISTS {_TRIGGER}")
    op.execute(SQLITE_TRIGGER)


def upgrade() -> None:
    # A plain ADD COLUMN (no batch copy of ``chunks``: that would drop its triggers).
    op.add_column(
        "chunks",
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "chunk_edits",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "chunk_id",
            sa.Integer(),
            sa.ForeignKey("chunks.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column(
            "document_id",
            sa.Integer(),
            sa.ForeignKey("documents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("old_text", sa.Text(), nullable=True),
        sa.Column("new_text", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_chunk_edits_chunk_id", "chunk_edits", ["chunk_id"])
    op.create_index("ix_chunk_edits_document_id", "chunk_edits", ["document_id"])
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        create_sqlite_triggers()
    elif dialect == "postgresql":
        op.execute(PG_TRIGGER)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(f"DROP TRIGGER IF EXISTS {_TRIGGER}")
    elif dialect == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {_TRIGGER} ON chunks")
    op.drop_index("ix_chunk_edits_document_id", table_name="chunk_edits")
    op.drop_index("ix_chunk_edits_chunk_id", table_name="chunk_edits")
    op.drop_table("chunk_edits")
    # SQLite 3.35+ drops a column in place (a batch copy would drop the triggers).
    op.execute("ALTER TABLE chunks DROP COLUMN disabled")
