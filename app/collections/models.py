"""A collection is one knowledge base; it owns the embedding model its vectors come from."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
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
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
