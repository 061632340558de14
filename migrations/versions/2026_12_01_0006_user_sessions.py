"""user sessions: server-side logins that logout, disable and a new password end

Every browser login is a ``user_sessions`` row; the cookie carries a random secret whose
sha256 is the row's ``secret_hash``. Cookies of older versions carry no such secret, so
everyone logs in once more after this upgrade.

Disabling a user now revokes their API tokens (enabling them again restores none). Users
disabled before this revision get the same: their live tokens are revoked here, so that
enabling them later does not bring old tokens back.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("address", sa.String(length=100), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_user_sessions_secret_hash")),
    )
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_sessions_user_id"), ["user_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_user_sessions_expires_at"), ["expires_at"], unique=False
        )

    users = sa.table("users", sa.column("id", sa.Integer), sa.column("disabled", sa.Boolean))
    tokens = sa.table(
        "api_tokens",
        sa.column("user_id", sa.Integer),
        sa.column("revoked_at", sa.DateTime),
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    disabled = sa.select(users.c.id).where(users.c.disabled.is_(True))
    op.execute(
        tokens.update()
        .where(tokens.c.revoked_at.is_(None), tokens.c.user_id.in_(disabled))
        .values(revoked_at=now)
    )


def downgrade() -> None:
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_sessions_expires_at"))
        batch_op.drop_index(batch_op.f("ix_user_sessions_user_id"))
    op.drop_table("user_sessions")
