"""What the MCP tools do: the REST API's search and ask for the caller, serialised by the
same code as ``GET /api/v1/search`` and ``GET /api/v1/ask`` (``app.search.routes``), each
hit with a link to its passage in the document view. With an LLM configured, ask answers
as ``POST /api/v1/answer`` does (``app.answer``): a written answer citing its passages."""

from __future__ import annotations

from pydantic import Field
from sqlalchemy.orm import Session

from app.answer import service as answers
from app.answer.routes import CitationOut, PassageOut
from app.collections.access import Access, access_for
from app.runtime import Runtime
from app.search.pages import document_link
from app.search.query import AskQuery, SearchQuery
from app.search.routes import AnswerOut, AskOut, SearchHitOut, SearchOut, ask_out, search_out
from app.search.service import SearchResult

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
    """Extractive (no LLM configured): ``answers``, each passage with its answering
    sentences. Written (an LLM configured): ``answer`` citing ``[n]``, its ``citations``
    and the ``passages`` it was written from; ``answers`` is then empty."""

    answers: list[McpAnswer] = Field(  # type: ignore[assignment]  # each with its link
        default_factory=list,
        description="extractive answers: the passages most likely to answer, each with its "
        "answering sentences (empty when the answer is written)",
    )
    written: bool = Field(
        default=False, description="true: `answer` was written by the knowledge base's LLM"
    )
    answer: str | None = Field(
        default=None,
        description="the answer written by the LLM from `passages`, citing them as [n]; null "
        "when no LLM is configured (see `answers`) and on a weak match",
    )
    citations: list[CitationOut] = Field(
        default_factory=list, description="the passages the written answer cites, by n"
    )
    passages: list[PassageOut] = Field(
        default_factory=list,
        description="the passages the answer was written from, numbered as cited (on a "
        "weak match, the closest passages)",
    )
    model: str | None = Field(default=None, description="the LLM that wrote the answer")
    invalid_citations: int = Field(
        default=0, description="citations of passages not given to the LLM, dropped"
    )


def _links(result: SearchResult) -> list[str]:
    return [document_link(hit) for hit in result.hits]


def run_search(rt: Runtime, *, token: str | None, params: SearchQuery) -> McpSearchOut:
    """``GET /api/v1/search`` for the user of ``token`` (checked first)."""
    with rt.sessions() as session:
        user = authorize(rt, session, token)
        result = params.run(rt, session=session, access=access_for(session, user))
        out = search_out(rt, result, session=session)
    hits = [
        {**hit.model_dump(), "link": link}
        for hit, link in zip(out.results, _links(result), strict=True)
    ]
    return McpSearchOut.model_validate({**out.model_dump(), "results": hits})


def run_ask(rt: Runtime, *, token: str | None, params: AskQuery) -> McpAskOut:
    """The ``ask`` tool for the user of ``token`` (checked first): see :func:`answer`."""
    with rt.sessions() as session:
        user = authorize(rt, session, token)
        return answer(rt, params=params, session=session, access=access_for(session, user))


def answer(rt: Runtime, *, params: AskQuery, session: Session, access: Access) -> McpAskOut:
    """The ``ask`` tool's answer: written by the LLM from the best passages, citing them,
    when one is configured (``KB_LLM_URL``, ``KB_LLM_MODEL``), as ``POST /api/v1/answer``;
    otherwise extractive, as ``GET /api/v1/ask``: the passages most likely to answer, each
    with its answering sentences (none on a weak match)."""
    if rt.llm is not None:
        return written(rt, params=params, session=session, access=access)
    result = params.run(rt, session=session, access=access)
    out = ask_out(rt, result, session=session)
    answers_ = [
        {**a.model_dump(), "link": link}
        for a, link in zip(out.answers, _links(result), strict=True)
    ]
    return McpAskOut.model_validate({**out.model_dump(), "answers": answers_})


def written(rt: Runtime, *, params: AskQuery, session: Session, access: Access) -> McpAskOut:
    """The answer written by the LLM (app/answer/service.py), with its citations and
    passages; the database session is given back before the LLM is asked."""
    grounding = answers.ground(
        rt,
        question=params.q,
        collection=params.collection,
        k=params.k,
        filters=params.filters(),
        session=session,
        access=access,
    )
    session.close()  # the answer needs no database
    done = answers.collect(answers.generate(rt, grounding))
    return McpAskOut.model_validate(
        {
            **done.as_dict(),
            "query": grounding.question,
            "collection": grounding.collection,
            "mode": "hybrid",
            "reranked": rt.reranker is not None
            and len(grounding.closest) > 1
            and grounding.search_notice is None,
            "written": True,
        }
    )
