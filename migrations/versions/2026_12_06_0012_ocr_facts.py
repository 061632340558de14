"""ocr facts: documents.ocr_pages and documents.ocr_low_confidence_pages

How many pages of a document were read by OCR (scanned PDF pages, images), and which of
them OCR read with a low mean confidence, so the document page can say where its text
may be wrong. Existing documents keep NULL (no OCR: it did not exist before).

A plain ADD COLUMN, not a batch operation (see 0007).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("ocr_pages", sa.Integer(), nullable=True))
    op.add_column("documents", sa.Column("ocr_low_confidence_pages", sa.JSON(), nullable=True))


def downgrade() -> None:
    # SQLite (3.35+) and PostgreSQL both drop a column in place.
    op.execute("ALTER TABLE documents DROP COLUMN ocr_low_confidence_pages")
    op.execute("ALTER TABLE documents DROP COLUMN ocr_pages")
