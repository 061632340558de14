"""chunk sentences: chunk_sentences, the vectors of each chunk's sentences per model

The search's second stage scores a passage also by its sentence closest to the question;
the vectors are computed at ingest (embedding sentences per query costs too much on a
CPU). Existing chunks have none until they are ingested again: the search then scores
them by their own vector alone, as before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chunk_sentences",
        sa.Column("chunk_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("vectors", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["chunk_id"], ["chunks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("chunk_id", "model"),
    )


def downgrade() -> None:
    op.drop_table("chunk_sentences")
