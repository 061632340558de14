"""Written answers: retrieve passages, ask the LLM with a grounded prompt, check citations.

For the API, the CLI and (later) the Ask page::

    grounding = ground(rt, question=q, collection=c, filters=f, k=8, session=s)  # DB here
    for event in generate(rt, grounding):  # no database: stream it after the request's
        ...                                #   session is given back

or in one go ``stream_answer(rt, question=..., session=...)`` (the same events) and
``answer(rt, ...)`` (one :class:`Answer`). Events, in order:

- :class:`TokenEvent` per piece of answer text (citations already checked);
- :class:`CitationsEvent` once the answer is complete: the passages it cites;
- :class:`DoneEvent` last: the whole answer, model, timings, notice.

On a weak match (nothing in the knowledge base matches well) the LLM is not asked: a
:class:`DoneEvent` with ``weak_match`` and :data:`NOTHING_ANSWERS` as the notice. When the
LLM fails before writing anything, or in the middle, the stream ends with an
:class:`ErrorEvent` (after a :class:`CitationsEvent` for the part already written):
an answer is never cut short silently.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.answer.citations import CitationFilter
from app.answer.prompt import Passage, Prompt, build_prompt
from app.collections.access import EVERYTHING, Access
from app.errors import AppError, Unavailable
from app.llm import ChatClient, LLMError, LLMStreamBroken
from app.runtime import Runtime
from app.search.pages import document_link, source_link
from app.search.service import SearchFilters, search

NOTHING_ANSWERS = "Nothing in the knowledge base answers this; the closest passages are below."
LLM_OFF = (
    "Written answers are off: set KB_LLM_URL (the LLM server's base URL, ending in /v1) "
    "and KB_LLM_MODEL to enable them."
)
CUT_BY_LENGTH = "The answer reached its length limit (KB_LLM_MAX_TOKENS) and is cut off."
DEFAULT_K = 8


class AnswersOff(AppError):
    """No LLM is configured (503, without Retry-After: waiting does not help)."""

    status = 503


class AnswerUnavailable(Unavailable):
    """The LLM server failed; the message says how (503)."""


@dataclass(frozen=True)
class Grounding:
    """What the LLM is given: the retrieved passages and the prompt built from them."""

    question: str
    collection: str
    prompt: Prompt
    closest: list[Passage]  # on a weak match, the closest passages (no prompt is sent)
    weak_match: bool
    timings: dict[str, float]
    search_notice: str | None = None

    @property
    def passages(self) -> list[Passage]:
        return self.closest if self.weak_match else self.prompt.passages


@dataclass(frozen=True)
class TokenEvent:
    text: str
    event: str = field(default="token", init=False)

    def data(self) -> dict[str, Any]:
        return {"text": self.text}


@dataclass(frozen=True)
class CitationsEvent:
    citations: list[dict[str, Any]]
    invalid_citations: int
    event: str = field(default="citations", init=False)

    def data(self) -> dict[str, Any]:
        return {"citations": self.citations, "invalid_citations": self.invalid_citations}


@dataclass(frozen=True)
class DoneEvent:
    answer: str | None
    model: str | None
    timings: dict[str, float]
    notice: str | None
    weak_match: bool
    passages: list[dict[str, Any]]
    event: str = field(default="done", init=False)

    def data(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "model": self.model,
            "timings": self.timings,
            "notice": self.notice,
            "weak_match": self.weak_match,
            "passages": self.passages,
        }


@dataclass(frozen=True)
class ErrorEvent:
    message: str
    event: str = field(default="error", init=False)

    def data(self) -> dict[str, Any]:
        return {"message": self.message}


AnswerEvent = TokenEvent | CitationsEvent | DoneEvent | ErrorEvent


@dataclass(frozen=True)
class Answer:
    """A whole written answer (the non-streamed API and ``kb ask --json``)."""

    answer: str | None
    citations: list[dict[str, Any]]
    passages: list[dict[str, Any]]
    model: str | None
    timings: dict[str, float]
    notice: str | None
    weak_match: bool
    invalid_citations: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "citations": self.citations,
            "passages": self.passages,
            "model": self.model,
            "timings": self.timings,
            "notice": self.notice,
            "weak_match": self.weak_match,
            "invalid_citations": self.invalid_citations,
        }


def llm_of(rt: Runtime) -> ChatClient:
    """The configured LLM; raises AnswersOff (503) saying how to configure one."""
    if rt.llm is None:
        raise AnswersOff(LLM_OFF)
    return rt.llm


def ground(
    rt: Runtime,
    *,
    question: str,
    collection: str | None = None,
    k: int = DEFAULT_K,
    filters: SearchFilters | None = None,
    mode: str = "hybrid",
    rerank: bool = True,
    session: Session | None = None,
    access: Access = EVERYTHING,
) -> Grounding:
    """Search (reranked when a reranker is configured) and build the prompt.

    Raises AnswersOff without an LLM, and what search raises (SearchError, 422;
    SearchUnavailable, 503; CollectionNotFound, 404).
    """
    llm = llm_of(rt)
    t0 = time.perf_counter()
    result = search(
        rt,
        query=question,
        k=k,
        collection=collection,
        filters=filters,
        mode=mode,
        rerank=rerank,
        session=session,
        access=access,
    )
    t1 = time.perf_counter()
    prompt = build_prompt(
        result.query,
        result.hits,
        context_tokens=llm.config.context_tokens,
        max_tokens=llm.config.max_tokens,
    )
    closest = [Passage(i, h, h.text) for i, h in enumerate(result.hits, 1)]
    timings = {
        "retrieve_ms": round((t1 - t0) * 1000, 2),
        "prompt_ms": round((time.perf_counter() - t1) * 1000, 2),
    }
    return Grounding(
        question=result.query,
        collection=result.collection,
        prompt=prompt,
        closest=closest,
        weak_match=result.weak_match,
        timings=timings,
        search_notice=result.notice,
    )


def passage_json(p: Passage) -> dict[str, Any]:
    h = p.hit
    return {
        "n": p.n,
        "chunk_id": h.chunk_id,
        "document_id": h.document_id,
        "file": h.file,
        "title": h.title,
        "heading_path": h.heading_path,
        "page": h.page_start,
        "page_end": h.page_end,
        "text": h.text,
        "score": h.score,
        "link": document_link(h),
        "source": source_link(h),
    }


# What a citation says of its passage: where it is, not its text.
_CITATION_KEYS = (
    "n",
    "chunk_id",
    "document_id",
    "file",
    "title",
    "heading_path",
    "page",
    "link",
    "source",
)


def citation_json(p: Passage) -> dict[str, Any]:
    whole = passage_json(p)
    return {k: whole[k] for k in _CITATION_KEYS}


def generate(rt: Runtime, grounding: Grounding) -> Iterator[AnswerEvent]:
    """The events of the answer to ``grounding`` (needs no database session)."""
    t0 = time.perf_counter()
    timings = dict(grounding.timings)
    passages = [passage_json(p) for p in grounding.passages]
    if grounding.weak_match:
        timings["total_ms"] = round(sum(timings.values()), 2)
        yield DoneEvent(None, None, timings, NOTHING_ANSWERS, True, passages)
        return
    llm = llm_of(rt)
    given = {p.n: p for p in grounding.prompt.passages}
    cites = CitationFilter(len(given))
    parts: list[str] = []
    finish: str | None = None
    error: LLMError | None = None
    try:
        for chunk in llm.stream(grounding.prompt.messages):
            text = cites.feed(chunk.text)
            if chunk.finish_reason:
                finish = chunk.finish_reason
                text += cites.flush()
            if text:
                if not parts:
                    timings["first_token_ms"] = round(
                        sum(grounding.timings.values()) + (time.perf_counter() - t0) * 1000, 2
                    )
                parts.append(text)
                yield TokenEvent(text)
    except LLMError as exc:
        error = exc
    rest = cites.flush()
    if rest and error is None:
        parts.append(rest)
        yield TokenEvent(rest)
    citations = [citation_json(given[n]) for n in sorted(cites.cited)]
    if error is not None and not isinstance(error, LLMStreamBroken):
        yield ErrorEvent(f"no answer could be written: {error}")
        return
    yield CitationsEvent(citations, cites.invalid)
    if error is not None:
        yield ErrorEvent(str(error))
        return
    timings["llm_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    timings["total_ms"] = round(sum(grounding.timings.values()) + timings["llm_ms"], 2)
    notice = CUT_BY_LENGTH if finish == "length" else grounding.search_notice
    yield DoneEvent("".join(parts).strip(), llm.model, timings, notice, False, passages)


def stream_answer(
    rt: Runtime,
    *,
    question: str,
    collection: str | None = None,
    k: int = DEFAULT_K,
    filters: SearchFilters | None = None,
    session: Session | None = None,
    access: Access = EVERYTHING,
) -> Iterator[AnswerEvent]:
    """Search, then the answer's events (see the module's docstring)."""
    grounding = ground(
        rt,
        question=question,
        collection=collection,
        k=k,
        filters=filters,
        session=session,
        access=access,
    )
    yield from generate(rt, grounding)


def collect(events: Iterator[AnswerEvent]) -> Answer:
    """The whole answer from its events; raises AnswerUnavailable on an ErrorEvent."""
    citations: list[dict[str, Any]] = []
    invalid = 0
    for event in events:
        if isinstance(event, CitationsEvent):
            citations, invalid = event.citations, event.invalid_citations
        elif isinstance(event, ErrorEvent):
            raise AnswerUnavailable(event.message)
        elif isinstance(event, DoneEvent):
            return Answer(
                answer=event.answer,
                citations=citations,
                passages=event.passages,
                model=event.model,
                timings=event.timings,
                notice=event.notice,
                weak_match=event.weak_match,
                invalid_citations=invalid,
            )
    raise AnswerUnavailable("the answer ended without its last event")


def answer(
    rt: Runtime,
    *,
    question: str,
    collection: str | None = None,
    k: int = DEFAULT_K,
    filters: SearchFilters | None = None,
    session: Session | None = None,
    access: Access = EVERYTHING,
) -> Answer:
    """The whole written answer, with its citations and passages.

    Raises AnswersOff, AnswerUnavailable (the LLM failed) and what search raises.
    """
    return collect(
        stream_answer(
            rt,
            question=question,
            collection=collection,
            k=k,
            filters=filters,
            session=session,
            access=access,
        )
    )
