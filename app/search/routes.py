"""JSON search API and the plain search page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from app.admission import SearchSlot
from app.auth.deps import ReaderUser
from app.collections.deps import AccessDep, ReaderAccess
from app.deps import ReadSessionDep, RuntimeDep, SessionDep
from app.feedback.models import Source
from app.feedback.querylog import note_query
from app.runtime import Runtime
from app.search.answers import Snippet, answer_spans, hit_snippets
from app.search.query import AskQuery, SearchQuery
from app.search.service import SearchResult

router = APIRouter(tags=["search"])


class DuplicateOut(BaseModel):
    """The same passage in another document, folded into this result."""

    document_id: int
    file: str
    chunk_id: int


class HitOut(BaseModel):
    """One passage; ``page`` is the page it starts on, ``page_end`` where it ends."""

    model_config = ConfigDict(from_attributes=True)

    chunk_id: int
    document_id: int
    file: str
    title: str | None
    doc_type: str
    language: str | None
    heading_path: list[str]
    text: str
    page: int | None
    page_end: int | None
    score: float
    kind: str = Field(description="section, faq (a question with its answer) or question (exam)")
    question: str | None = Field(description="the question alone, for faq and question chunks")
    duplicates: list[DuplicateOut] = Field(
        default_factory=list, description="the same passage in other documents"
    )
    collection: str = Field(default="", description="the collection the passage is in")

    @field_validator("duplicates", mode="before")
    @classmethod
    def _copies(cls, value: object) -> object:
        if isinstance(value, tuple):
            return [{"document_id": d, "file": f, "chunk_id": c} for d, f, c in value]
        return value


class SnippetOut(BaseModel):
    """A short plain-text excerpt of the passage: its best-matching sentences."""

    text: str = Field(
        description="at most about 300 characters of the passage as plain text (Markdown "
        "rendered), '…' where text is left out"
    )
    highlights: list[tuple[int, int]] = Field(
        description="[start, end] offsets into snippet.text: the query's terms, or, where "
        "none occurs (another language), the sentence closest in meaning"
    )


class SearchHitOut(HitOut):
    snippet: SnippetOut


def _snippet(snip: Snippet) -> dict[str, object]:
    return {"text": snip.text, "highlights": snip.highlights}


class SearchOut(BaseModel):
    query: str
    collection: str
    mode: str = Field(description="hybrid, dense or lexical")
    reranked: bool = Field(description="a rerank server reordered the results")
    notice: str | None = Field(description="why the results are not as asked (rerank failed)")
    weak_match: bool = Field(
        description="nothing matches well: no results, or the best passage is below the "
        "embedder's calibrated similarity threshold (the results are only the closest)"
    )
    collections: list[str] = Field(
        default_factory=list,
        description="the collections searched: the one asked for, or every one you may read "
        "that shares the first one's embedding model",
    )
    skipped: list[str] = Field(
        default_factory=list,
        description="collections you may read that were not searched: they use another "
        "embedding model (name one with `collection` to search it)",
    )
    results: list[SearchHitOut]
    timings: dict[str, float]


@router.get("/api/v1/search", response_model=SearchOut)
def api_search(
    request: Request,
    _slot: SearchSlot,  # first: a request waiting for it holds nothing else
    rt: RuntimeDep,
    session: ReadSessionDep,  # only reads: on PostgreSQL without BEGIN and ROLLBACK
    reader: ReaderAccess,
    params: Annotated[SearchQuery, Query()],
) -> Response:
    """Passages that best answer ``q``, in any language, best first: by meaning (dense)
    and by words (lexical, the database's full-text index), fused, then reranked when a
    rerank server is configured (on its failure the first-stage order, with a notice).

    Filters apply inside the vector search: ``k`` results come back whenever ``k``
    passages pass them.
    """
    result = params.run(rt, session=session, access=reader.access, collections=reader.collections)
    note_query(request, reader.user, Source.API, result)
    # The JSON written here, in this thread: a returned model would be checked against
    # ``response_model`` again, in a further trip through the threadpool.
    body = search_out(rt, result, session=session).model_dump_json()
    return Response(body, media_type="application/json")


def search_out(rt: Runtime, result: SearchResult, *, session: Session) -> SearchOut:
    """The JSON of a search: each hit with its snippet (the API and the MCP server)."""
    return SearchOut(
        query=result.query,
        collection=result.collection,
        mode=result.mode,
        reranked=result.reranked,
        notice=result.notice,
        weak_match=result.weak_match,
        collections=list(result.collections),
        skipped=list(result.skipped),
        results=[
            SearchHitOut.model_validate(
                {**HitOut.model_validate(h).model_dump(), "snippet": _snippet(snip)}
            )
            for h, snip in zip(result.hits, hit_snippets(rt, result, session=session), strict=True)
        ],
        timings=result.timings,
    )


class AnswerSpanOut(BaseModel):
    """``text[start:end]`` of the passage answers the question best (cosine ``score``)."""

    start: int
    end: int
    score: float
    text: str


class AnswerOut(HitOut):
    sentences: list[AnswerSpanOut] = Field(description="offsets into the passage's text")
    snippet: SnippetOut


class AskOut(BaseModel):
    query: str
    collection: str
    mode: str
    reranked: bool
    notice: str | None
    weak_match: bool = Field(
        description="nothing matches well: no results, or the best passage is below the "
        "embedder's calibrated similarity threshold (no sentences are marked as answers)"
    )
    answers: list[AnswerOut]


@router.get("/api/v1/ask", response_model=AskOut)
def api_ask(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    user: ReaderUser,
    access: AccessDep,
    params: Annotated[AskQuery, Query()],
) -> AskOut:
    """The passages most likely to answer ``q``, each with the sentence(s) that answer it
    best as character offsets into the passage's ``text`` (no LLM involved). On a
    ``weak_match`` the passages come without sentences: none of them answers."""
    result = params.run(rt, session=session, access=access)
    note_query(request, user, Source.API, result)
    return ask_out(rt, result, session=session)


def ask_out(rt: Runtime, result: SearchResult, *, session: Session) -> AskOut:
    """The JSON of an ask: each hit with its answering sentences and its snippet (the API
    and the MCP server)."""
    spans = answer_spans(rt, result, session=session)
    snippets = hit_snippets(rt, result, session=session)
    answers = []
    for hit, picked, snip in zip(result.hits, spans, snippets, strict=True):
        out = AnswerOut.model_validate(
            {
                **HitOut.model_validate(hit).model_dump(),
                "snippet": _snippet(snip),
                "sentences": [
                    {
                        "start": a.start,
                        "end": a.end,
                        "score": a.score,
                        "text": hit.text[a.start : a.end],
                    }
                    for a in picked
                ],
            }
        )
        answers.append(out)
    return AskOut(
        query=result.query,
        collection=result.collection,
        mode=result.mode,
        reranked=result.reranked,
        notice=result.notice,
        weak_match=result.weak_match,
        answers=answers,
    )
