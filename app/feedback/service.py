"""Record ratings and questions: plain functions that add and flush (the caller commits)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.models import User
from app.collections import service as collections
from app.db import utcnow
from app.documents.models import Chunk, Document
from app.errors import Invalid, NotFound
from app.feedback.models import Feedback, FeedbackKind, QueryLog, Rating, Source

# At most this many chunk ids are kept per rating (a results page shows up to 100).
MAX_CHUNK_IDS = 100
MAX_QUERY_CHARS = 2000
MAX_COMMENT_CHARS = 2000
# The part of a passage that names it in an export when it has no heading.
EXCERPT_CHARS = 80


class FeedbackInvalid(Invalid):
    """A rating that cannot be stored as sent; the message is for a person."""


class RatedPassageNotFound(NotFound):
    """The rated passage does not exist (any more) in that collection."""


@dataclass(frozen=True)
class QueryEntry:
    """One question asked: what the query log keeps (written in batches)."""

    query: str
    collection: str
    weak_match: bool
    hits: int
    source: Source
    user_id: int | None
    created_at: datetime = field(default_factory=utcnow)


def _label(chunk: Chunk) -> str:
    """What names a passage in a graded query: its own heading, else its first words."""
    if chunk.heading_path:
        return str(chunk.heading_path[-1]).strip()
    first = next((line.strip() for line in chunk.text.splitlines() if line.strip()), "")
    return first[:EXCERPT_CHARS]


def record_feedback(
    session: Session,
    *,
    user: User | None,
    kind: FeedbackKind | str,
    query: str,
    collection: str,
    chunk_ids: Sequence[int],
    rating: Rating | str,
    chunk_id: int | None = None,
    model: str | None = None,
    weak_match: bool = False,
    comment: str | None = None,
    source: Source | str = Source.SEARCH,
) -> Feedback:
    """Store a thumbs up or down (flushed, not committed).

    ``kind="hit"``: ``chunk_id`` is the rated result among ``chunk_ids`` (the results
    shown, best first); the model is the collection's embedding model. ``kind="answer"``:
    a written answer from the passages ``chunk_ids``; ``model`` is the LLM's.
    """
    try:
        kind, rating, source = FeedbackKind(kind), Rating(rating), Source(source)
    except ValueError as exc:
        raise FeedbackInvalid("this rating cannot be stored") from exc
    query = " ".join(query.split())
    if not query or len(query) > MAX_QUERY_CHARS:
        raise FeedbackInvalid("this rating cannot be stored")
    col = collections.get_by_name(session, collection)
    shown = list(dict.fromkeys(int(c) for c in chunk_ids))[:MAX_CHUNK_IDS]
    row = Feedback(
        user_id=user.id if user is not None else None,
        kind=kind,
        source=source,
        rating=rating,
        query=query,
        collection=col.name,
        chunk_ids=shown,
        model=(model or None) if kind == FeedbackKind.ANSWER else col.model,
        weak_match=weak_match,
        comment=(comment or "").strip()[:MAX_COMMENT_CHARS] or None,
        created_at=utcnow(),
    )
    if kind == FeedbackKind.HIT:
        if chunk_id is None:
            raise FeedbackInvalid("this rating cannot be stored")
        found = session.execute(
            select(Chunk, Document.filename, func.coalesce(Chunk.language, Document.language))
            .join(Document, Document.id == Chunk.document_id)
            .where(Chunk.id == chunk_id, Chunk.collection_id == col.id)
        ).first()
        if found is None:
            raise RatedPassageNotFound("no passage with that id")
        chunk, filename, language = found
        row.chunk_id = chunk.id
        row.rank = shown.index(chunk.id) + 1 if chunk.id in shown else None
        row.file, row.heading, row.doc_language = filename, _label(chunk), language
    session.add(row)
    session.flush()
    return row


def log_queries(session: Session, entries: Sequence[QueryEntry]) -> None:
    """Add questions to the query log (flushed, not committed)."""
    session.add_all(
        QueryLog(
            query=e.query[:MAX_QUERY_CHARS],
            collection=e.collection,
            weak_match=e.weak_match,
            hits=e.hits,
            source=e.source,
            user_id=e.user_id,
            created_at=e.created_at,
        )
        for e in entries
    )
    session.flush()
