"""JSON API for ratings: other clients (and the answer stage) rate hits and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from app.auth.deps import ReaderUser
from app.deps import MAX_ID, RuntimeDep, SessionDep
from app.feedback.models import FeedbackKind, Rating, Source
from app.feedback.service import MAX_CHUNK_IDS, MAX_COMMENT_CHARS, MAX_QUERY_CHARS, record_feedback

router = APIRouter(prefix="/api/v1/feedback", tags=["feedback"])

ChunkId = Annotated[int, Field(ge=1, le=MAX_ID)]


class FeedbackIn(BaseModel):
    """A thumbs up or down on a search hit (``chunk_id`` among ``chunk_ids``) or on a
    written answer (``kind: answer``, ``chunk_ids`` the passages it was written from)."""

    kind: FeedbackKind = FeedbackKind.HIT
    q: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="the question asked")
    collection: str | None = Field(
        default=None, max_length=200, description="default: the default collection"
    )
    rating: Rating
    chunk_ids: list[ChunkId] = Field(
        default_factory=list, max_length=MAX_CHUNK_IDS, description="the hits shown, best first"
    )
    chunk_id: ChunkId | None = Field(default=None, description="the rated hit (kind hit)")
    weak_match: bool = Field(default=False, description="the search reported a weak match")
    model: str | None = Field(default=None, max_length=300, description="the LLM (kind answer)")
    comment: str | None = Field(default=None, max_length=MAX_COMMENT_CHARS)


class FeedbackOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    kind: str
    rating: str
    query: str
    collection: str
    chunk_ids: list[int]
    chunk_id: int | None
    rank: int | None
    model: str | None
    weak_match: bool


@router.post("", response_model=FeedbackOut, status_code=201)
def rate(rt: RuntimeDep, session: SessionDep, user: ReaderUser, body: FeedbackIn) -> FeedbackOut:
    """Store a rating with what was shown; the Insights page lists them for admins."""
    collection = body.collection or rt.collection(session).name
    row = record_feedback(
        session,
        user=user,
        kind=body.kind,
        query=body.q,
        collection=collection,
        chunk_ids=body.chunk_ids,
        rating=body.rating,
        chunk_id=body.chunk_id,
        model=body.model,
        weak_match=body.weak_match,
        comment=body.comment,
        source=Source.API,
    )
    session.commit()
    return FeedbackOut.model_validate(row)
