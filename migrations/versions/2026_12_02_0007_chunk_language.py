"""chunk language: chunks.language, the language of a chunk's own prose

A bilingual document (an English README with its Chinese translation below) has chunks
in two languages; the language filter and the language share of search read the chunk's.
Existing chunks keep NULL, which readers take as their document's language; a re-ingest
fills it in. The index lets search count chunks per document and language (the language
share of every query) without reading the chunks.

A plain ADD COLUMN and CREATE INDEX, not a batch operation: on SQLite a batch that
recreates ``chunks`` would drop the full-text triggers of 0005.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_chunks_collection_id_document_id_language"


def upgrade() -> None:
    op.add_column("chunks", sa.Column("language", sa.String(length=10), nullable=True))
    op.create_index(INDEX, "chunks", ["collection_id", "document_id", "language"], unique=False)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="chunks")
    # SQLite (3.35+) and PostgreSQL both drop a column in place, keeping the triggers.
    op.execute("ALTER TABLE chunks DROP COLUMN language")
