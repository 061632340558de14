"""Users with roles, and API tokens (only their hashes are stored)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow


class Role(StrEnum):
    READER = "reader"  # search, ask, view
    EDITOR = "editor"  # + upload, delete own documents, re-index
    ADMIN = "admin"  # everything

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANK = {Role.READER: 0, Role.EDITOR: 1, Role.ADMIN: 2}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20), default=Role.READER)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)

    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    def can(self, needed: Role | str) -> bool:
        """True when the user is enabled and their role includes ``needed``."""
        return not self.disabled and self.role_enum.allows(Role(needed))


@dataclass(frozen=True)
class Viewer:
    """What pages show of the signed-in user, copied out of the database session."""

    id: int
    username: str
    role: str
    disabled: bool

    @classmethod
    def of(cls, user: User) -> Viewer:
        return cls(user.id, user.username, user.role, user.disabled)

    def can(self, needed: Role | str) -> bool:
        return not self.disabled and Role(self.role).allows(Role(needed))


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # sha256 of the token: a stolen database does not give working tokens.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists to tell tokens apart
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)

    user: Mapped[User] = relationship(back_populates="tokens")


class UserSession(Base):
    """A browser's login. The cookie holds a random secret; only its sha256 is stored.

    Ending a session deletes its row, so a copied cookie stops working at once: on logout,
    "log out everywhere", a new password and when the user is disabled. A session lasts
    ``session_max_age_s`` from the login (checking it never writes, so it does not slide).
    """

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    address: Mapped[str] = mapped_column(String(100), default="")  # where it logged in from
    user_agent: Mapped[str] = mapped_column(String(300), default="")

    user: Mapped[User] = relationship()
