"""A collection is one knowledge base; it owns the embedding model its vectors come from.

Who may read it: everyone signed in, unless it is ``private``; then admins and those
granted access (a user, or a group the user is in: ``CollectionGrant``). Roles still say
what a person may do (a reader searches, an editor also uploads and deletes); a grant
says where: ``write`` lets an editor change a private collection, ``read`` only read it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class Collection(Base):
    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    embedder: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(300))
    dim: Mapped[int] = mapped_column(Integer)
    query_instruction: Mapped[str | None] = mapped_column(Text, default=None)
    # Bumped in the same transaction as every change to the collection's chunks, so a
    # serving process can tell with one cheap read whether its FAISS index is current.
    version: Mapped[int] = mapped_column(Integer, default=0)
    # While the collection moves to another model, the target; chunks get ``next_vector``
    # from it in the background and one transaction switches over (then these are NULL).
    next_embedder: Mapped[str | None] = mapped_column(String(100), default=None)
    next_model: Mapped[str | None] = mapped_column(String(300), default=None)
    next_dim: Mapped[int | None] = mapped_column(Integer, default=None)
    # Visible only to admins and grantees (see the module docstring).
    private: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Access(StrEnum):
    READ = "read"
    WRITE = "write"


class Group(Base):
    """A named set of users that grants can name instead of each person."""

    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class CollectionGrant(Base):
    """Access to a private collection, for one user or one group."""

    __tablename__ = "collection_grants"
    __table_args__ = (
        CheckConstraint(
            "(user_id IS NULL) <> (group_id IS NULL)", name="ck_collection_grants_one_grantee"
        ),
        CheckConstraint("access IN ('read', 'write')", name="ck_collection_grants_access"),
        Index("ux_collection_grants_user", "collection_id", "user_id", unique=True),
        Index("ux_collection_grants_group", "collection_id", "group_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None, index=True
    )
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), default=None, index=True
    )
    access: Mapped[str] = mapped_column(String(10), default=Access.READ)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
