"""``POST /api/v1/answer``: an answer written by the LLM from the passages, citing them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from app.answer import service
from app.auth.deps import ReaderUser
from app.collections.deps import AccessDep
from app.deps import RuntimeDep, SessionDep
from app.search.query import AskK, SearchQuery

router = APIRouter(tags=["answer"])


class AnswerQuery(SearchQuery):
    """The question, the filters of ``GET /api/v1/search``, and whether to stream."""

    k: AskK = service.DEFAULT_K
    stream: bool = Field(
        default=False,
        description="true: server-sent events (token, citations, done, error); "
        "false: one JSON object",
    )


class CitationOut(BaseModel):
    n: int = Field(description="the number the answer cites, [n]")
    chunk_id: int
    document_id: int
    file: str
    title: str | None
    heading_path: list[str]
    page: int | None
    link: str = Field(description="the passage in the document view")
    source: str = Field(description="the original at the passage's page (PDF), else the link")


class PassageOut(CitationOut):
    page_end: int | None
    text: str
    score: float


class AnswerOut(BaseModel):
    answer: str | None = Field(description="the written answer; null on a weak match")
    citations: list[CitationOut] = Field(description="the passages the answer cites")
    passages: list[PassageOut] = Field(
        description="the passages given to the LLM, numbered as cited (on a weak match, "
        "the closest passages)"
    )
    model: str | None
    timings: dict[str, float]
    notice: str | None = Field(description="why there is no answer, or why it is incomplete")
    weak_match: bool = Field(description="nothing matches well: the LLM was not asked")
    invalid_citations: int = Field(description="citations of passages not given, dropped")


def sse(events: Iterator[service.AnswerEvent]) -> Iterator[str]:
    """Server-sent events: ``event: <name>`` and ``data: <json>``."""
    for event in events:
        data = json.dumps(event.data(), ensure_ascii=False)
        yield f"event: {event.event}\ndata: {data}\n\n"


@router.post(
    "/api/v1/answer",
    response_model=AnswerOut,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def api_answer(
    rt: RuntimeDep, session: SessionDep, _user: ReaderUser, access: AccessDep, body: AnswerQuery
) -> Any:
    """An answer to ``q`` written by the LLM (``KB_LLM_URL``, ``KB_LLM_MODEL``) from the
    best passages, citing them as ``[n]``; citations of passages not given are dropped.

    On a weak match the LLM is not asked: ``notice`` says nothing answers, with the
    closest passages. Without an LLM configured: 503. With ``"stream": true``, events
    ``token`` ({"text"}), ``citations`` ({"citations", "invalid_citations"}), ``done``
    ({"answer", "model", "timings", "notice", "weak_match", "passages"}) or ``error``
    ({"message"}) ends the stream.
    """
    grounding = service.ground(
        rt,
        question=body.q,
        collection=body.collection,
        k=body.k,
        filters=body.filters(),
        mode=body.mode,
        rerank=body.rerank,
        session=session,
        access=access,
    )
    session.close()  # the answer needs no database: give the connection back now
    events = service.generate(rt, grounding)
    if body.stream:
        return StreamingResponse(
            sse(events),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    result: Response | AnswerOut = AnswerOut.model_validate(service.collect(events).as_dict())
    return result
