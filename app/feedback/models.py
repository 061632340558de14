"""Ratings of results and answers, and the log of every question asked."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class FeedbackKind(StrEnum):
    HIT = "hit"  # a search result, or a numbered passage of the Ask page
    ANSWER = "answer"  # an answer written by an LLM


class Rating(StrEnum):
    UP = "up"
    DOWN = "down"


class Source(StrEnum):
    """Where a question was asked, or a rating given."""

    SEARCH = "search"  # the Search page
    ASK = "ask"  # the Ask page
    API = "api"  # /api/v1/search, /api/v1/ask, /api/v1/feedback


class Feedback(Base):
    """A thumbs up or down on one search hit or on a written answer, with what was shown."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    # The user may be deleted later; the rating stays.
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    kind: Mapped[str] = mapped_column(String(20), default=FeedbackKind.HIT)
    source: Mapped[str] = mapped_column(String(20), default=Source.SEARCH)
    rating: Mapped[str] = mapped_column(String(10))
    query: Mapped[str] = mapped_column(Text)
    collection: Mapped[str] = mapped_column(String(200))
    # The chunk ids shown, in rank order (no foreign keys: a re-ingest replaces chunks,
    # and the rating must outlive them).
    chunk_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    # The rated hit (kind "hit"), with where it came from, copied at rating time.
    chunk_id: Mapped[int | None] = mapped_column(Integer, default=None)
    rank: Mapped[int | None] = mapped_column(Integer, default=None)
    file: Mapped[str | None] = mapped_column(String(500), default=None)
    heading: Mapped[str | None] = mapped_column(Text, default=None)
    doc_language: Mapped[str | None] = mapped_column(String(10), default=None)
    # The collection's embedding model for a hit, the LLM model for a written answer.
    model: Mapped[str | None] = mapped_column(String(300), default=None)
    weak_match: Mapped[bool] = mapped_column(Boolean, default=False)
    comment: Mapped[str | None] = mapped_column(Text, default=None)


class QueryLog(Base):
    """One question asked on the Search or Ask page or through the API."""

    __tablename__ = "query_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    source: Mapped[str] = mapped_column(String(20), default=Source.SEARCH)
    query: Mapped[str] = mapped_column(Text)
    collection: Mapped[str] = mapped_column(String(200))
    weak_match: Mapped[bool] = mapped_column(Boolean, default=False)
    hits: Mapped[int] = mapped_column(Integer, default=0)
