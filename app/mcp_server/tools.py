"""What the MCP tools do: the REST API's search and ask for the caller, serialised by the
same code as ``GET /api/v1/search`` and ``GET /api/v1/ask`` (``app.search.routes``), each
hit with a link to its passage in the document view."""

from __future__ import annotations

from pydantic import Field
from sqlalchemy.orm import Session

from app.runtime import Runtime
from app.search.pages import document_link
from app.search.query import AskQuery, SearchQuery
from app.search.routes import AnswerOut, AskOut, SearchHitOut, SearchOut, ask_out, search_out
from app.search.service import SearchResult, search

from .access import authorize

LINK = Field(
    description="the passage in the knowledge base's document view: a path on its web "
    "server, e.g. /documents/3?chunk=17#chunk-17"
)


class McpSearchHit(SearchHitOut):
    link: str = LINK


class McpSearchOut(SearchOut):
    results: list[McpSearchHit]  # type: ignore[assignment]  # each hit with its link


class McpAnswer(AnswerOut):
    link: str = LINK


class McpAskOut(AskOut):
    answers: list[McpAnswer]  # type: ignore[assignment]  # each passage with its link


def _links(result: SearchResult) -> list[str]:
    return [document_link(hit) for hit in result.hits]


def run_search(rt: Runtime, *, token: str | None, params: SearchQuery) -> McpSearchOut:
    """``GET /api/v1/search`` for the user of ``token`` (checked first)."""
    with rt.sessions() as session:
        authorize(rt, session, token)
        result = search(
            rt,
            query=params.q,
            k=params.k,
            collection=params.collection,
            filters=params.filters(),
            mode=params.mode,
            rerank=params.rerank,
            session=session,
        )
        out = search_out(rt, result, session=session)
    hits = [
        {**hit.model_dump(), "link": link}
        for hit, link in zip(out.results, _links(result), strict=True)
    ]
    return McpSearchOut.model_validate({**out.model_dump(), "results": hits})


def run_ask(rt: Runtime, *, token: str | None, params: AskQuery) -> McpAskOut:
    """The ``ask`` tool for the user of ``token`` (checked first): see :func:`answer`."""
    with rt.sessions() as session:
        authorize(rt, session, token)
        return answer(rt, params=params, session=session)


def answer(rt: Runtime, *, params: AskQuery, session: Session) -> McpAskOut:
    """The ``ask`` tool's answer. Today extractive, as ``GET /api/v1/ask``: the passages
    most likely to answer, each with its answering sentences (none on a weak match).

    The seam for written answers: when the LLM answer stage (``app/answer/``) is
    configured, this is the one place to call it instead (and the tool's description and
    output model to widen with the answer and its citations).
    """
    result = search(
        rt,
        query=params.q,
        k=params.k,
        collection=params.collection,
        filters=params.filters(),
        session=session,
    )
    out = ask_out(rt, result, session=session)
    answers = [
        {**a.model_dump(), "link": link}
        for a, link in zip(out.answers, _links(result), strict=True)
    ]
    return McpAskOut.model_validate({**out.model_dump(), "answers": answers})
