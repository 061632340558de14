"""collection access: private collections, groups and grants

``collections.private`` (existing collections stay visible to everyone), ``groups`` and
``group_members``, and ``collection_grants`` (read or write access to a private
collection for one user or one group; unique per grantee and collection).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "collections",
        sa.Column("private", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "groups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "group_members",
        sa.Column(
            "group_id",
            sa.Integer(),
            sa.ForeignKey("groups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    op.create_index("ix_group_members_user_id", "group_members", ["user_id"])
    op.create_table(
        "collection_grants",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "collection_id",
            sa.Integer(),
            sa.ForeignKey("collections.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column(
            "group_id", sa.Integer(), sa.ForeignKey("groups.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column("access", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "(user_id IS NULL) <> (group_id IS NULL)", name="ck_collection_grants_one_grantee"
        ),
        sa.CheckConstraint("access IN ('read', 'write')", name="ck_collection_grants_access"),
    )
    op.create_index("ix_collection_grants_collection_id", "collection_grants", ["collection_id"])
    op.create_index("ix_collection_grants_user_id", "collection_grants", ["user_id"])
    op.create_index("ix_collection_grants_group_id", "collection_grants", ["group_id"])
    op.create_index(
        "ux_collection_grants_user", "collection_grants", ["collection_id", "user_id"], unique=True
    )
    op.create_index(
        "ux_collection_grants_group",
        "collection_grants",
        ["collection_id", "group_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_table("collection_grants")
    op.drop_index("ix_group_members_user_id", table_name="group_members")
    op.drop_table("group_members")
    op.drop_table("groups")
    op.execute("ALTER TABLE collections DROP COLUMN private")
