"""The knowledge base as an OpenAI-compatible "model server" (Open WebUI, LibreChat, any
OpenAI client): each collection is a model, ``kb:<collection>``; a chat completion is the
grounded answer of :mod:`app.answer.service` to the conversation's last user message,
with its sources appended.

Only the last user message is searched: earlier turns are not used (a follow-up such as
"and for contractors?" must be asked as a whole question). Without an LLM configured
the answer is extractive: the sentences that answer best, quoted from the passages and
labelled as quotes, so a connection keeps working; on a weak match the content is the
"nothing in the knowledge base answers this" notice with the closest passages.

The content is a sequence of :class:`Piece` s (the answer as it is written, then the
sources), which the routes send as ``chat.completion.chunk`` s or join into one
``chat.completion``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from app.answer import service as answers
from app.answer.prompt import Passage
from app.collections import service as collections
from app.collections.access import Access, readable_collection
from app.collections.service import CollectionNotFound
from app.errors import Invalid
from app.i18n import translator
from app.runtime import Runtime
from app.search.answers import answer_spans
from app.search.query import MAX_QUERY_CHARS
from app.search.service import search
from app.text.language import detect_language

MODEL_PREFIX = "kb:"
OWNED_BY = "kb"
EXTRACTIVE_K = 5  # passages searched for quotes when no LLM is configured
QUOTED_PASSAGES = 3  # of which this many are quoted (their best sentences)
CLOSEST_SHOWN = 3  # sources listed when the answer cites none

Lang = Literal["en", "zh"]
LABELS: dict[Lang, dict[str, str]] = {
    "en": {
        "sources": "Sources",
        "closest": "Closest passages",
        "page": "p. {page}",
        "quotes": (
            "No language model is configured, so this is not a written answer: these are "
            "quotes from the documents, the sentences that answer best."
        ),
        "cut": "The answer was cut off: {reason}",
    },
    "zh": {
        "sources": "来源",
        "closest": "最接近的段落",
        "page": "第 {page} 页",
        "quotes": "未配置语言模型，因此这不是生成的回答：以下是从文档中摘录的最能回答问题的句子。",
        "cut": "回答被中断：{reason}",
    },
}


class ModelNotFound(CollectionNotFound):
    """No collection behind the requested model id (404, code ``model_not_found``)."""


class ContentPart(BaseModel):
    """One part of a message's content as a list (``{"type": "text", "text": ...}``)."""

    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str = Field(max_length=40)
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatRequest(BaseModel):
    """The fields of an OpenAI chat-completions request that matter here; the others
    (temperature, max_tokens, tools, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=300, description="kb:<collection>")
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False
    stream_options: StreamOptions | None = None


@dataclass(frozen=True)
class Piece:
    """A piece of the completion's content; the last one has its ``finish`` reason."""

    text: str
    finish: str | None = None


@dataclass(frozen=True)
class Prepared:
    """A completion ready to be written without the database: the grounded answer's
    events, or (no LLM) the finished extractive content."""

    question: str
    lang: Lang
    events: Iterator[answers.AnswerEvent] | None = None
    content: str = ""


def model_id(collection: str) -> str:
    return MODEL_PREFIX + collection


def list_models(session: Session, access: Access) -> list[dict[str, Any]]:
    """Each collection the caller may read as an OpenAI model object."""
    return [
        {
            "id": model_id(col.name),
            "object": "model",
            "created": int(col.created_at.timestamp()),
            "owned_by": OWNED_BY,
        }
        for col in collections.list_all(session)
        if access.can_read(col.id)
    ]


def collection_of(session: Session, model: str, access: Access) -> str:
    """The collection behind ``model`` (``kb:<name>``, or the bare name); ModelNotFound,
    also for a collection the caller may not read."""
    name = model.removeprefix(MODEL_PREFIX)
    try:
        return readable_collection(session, access, name).name
    except CollectionNotFound:
        raise ModelNotFound(
            "the model {model!r} does not exist; GET /v1/models lists the collections",
            model=model,
        ) from None


def question_of(messages: Sequence[ChatMessage]) -> str:
    """The last user message: the only one searched; Invalid when there is none."""
    for message in reversed(messages):
        if message.role == "user":
            text = message.text().strip()
            if not text:
                raise Invalid("the last user message is empty")
            if len(text) > MAX_QUERY_CHARS:
                raise Invalid(
                    "the question is longer than {limit} characters", limit=MAX_QUERY_CHARS
                )
            return text
    raise Invalid("the messages have no user message to answer")


def language_of(question: str) -> Lang:
    return "zh" if detect_language(question) == "zh" else "en"


def prepare(
    rt: Runtime, *, request: ChatRequest, session: Session, base_url: str, access: Access
) -> Prepared:
    """Check the model and the question, search, and start the answer (the database is
    needed only here). Raises ModelNotFound, Invalid, what search raises, and
    AnswerUnavailable when the LLM fails before writing anything."""
    collection = collection_of(session, request.model, access)
    question = question_of(request.messages)
    lang = language_of(question)
    if rt.llm is None:
        content = extractive(
            rt, question, collection, lang, session=session, base_url=base_url, access=access
        )
        return Prepared(question, lang, content=content)
    grounding = answers.ground(
        rt, question=question, collection=collection, session=session, access=access
    )
    return Prepared(question, lang, events=started(answers.generate(rt, grounding)))


def started(events: Iterator[answers.AnswerEvent]) -> Iterator[answers.AnswerEvent]:
    """``events`` once the first has come: an LLM that fails before writing anything is
    an error answer (AnswerUnavailable), not a stream that says so."""
    first = next(events, None)
    if first is None:
        raise answers.AnswerUnavailable("the answer ended without its last event")
    if isinstance(first, answers.ErrorEvent):
        raise answers.AnswerUnavailable(first.message)
    return itertools.chain([first], events)


def pieces(prepared: Prepared, *, base_url: str) -> Iterator[Piece]:
    """The completion's content: the answer as it is written, then its sources."""
    if prepared.events is None:
        yield Piece(prepared.content, "stop")
        return
    labels = LABELS[prepared.lang]
    citations: list[dict[str, Any]] = []
    for event in prepared.events:
        if isinstance(event, answers.TokenEvent):
            yield Piece(event.text)
        elif isinstance(event, answers.CitationsEvent):
            citations = event.citations
        elif isinstance(event, answers.ErrorEvent):
            cut = labels["cut"].format(reason=event.message)
            yield Piece(f"\n\n*{cut}*" + sources(citations, [], prepared.lang, base_url), "stop")
            return
        else:  # DoneEvent, the last
            if event.weak_match:
                notice = translator(prepared.lang)(answers.NOTHING_ANSWERS)
                yield Piece(notice + sources([], event.passages, prepared.lang, base_url), "stop")
                return
            tail = f"\n\n*{event.notice}*" if event.notice else ""
            finish = "length" if event.notice == answers.CUT_BY_LENGTH else "stop"
            yield Piece(tail + sources(citations, event.passages, prepared.lang, base_url), finish)
            return


def extractive(
    rt: Runtime,
    question: str,
    collection: str,
    lang: Lang,
    *,
    session: Session,
    base_url: str,
    access: Access,
) -> str:
    """The answer without an LLM: the best sentences of the best passages, as quotes."""
    result = search(
        rt,
        query=question,
        k=EXTRACTIVE_K,
        collection=collection,
        session=session,
        access=access,
    )
    passages = [answers.passage_json(Passage(i, h, h.text)) for i, h in enumerate(result.hits, 1)]
    if result.weak_match or not result.hits:
        notice = translator(lang)(answers.NOTHING_ANSWERS)
        return notice + sources([], passages, lang, base_url)
    spans = answer_spans(rt, result, session=session)
    quotes: list[str] = []
    quoted: list[dict[str, Any]] = []
    for passage, hit, picked in zip(passages, result.hits, spans, strict=True):
        if not picked or len(quoted) == QUOTED_PASSAGES:
            continue
        said = " … ".join(" ".join(hit.text[a.start : a.end].split()) for a in picked)
        quotes.append(f"> {said} [{passage['n']}]")
        quoted.append(passage)
    if not quotes:
        notice = translator(lang)(answers.NOTHING_ANSWERS)
        return notice + sources([], passages, lang, base_url)
    quotes_md = "\n\n".join(quotes)
    return f"*{LABELS[lang]['quotes']}*\n\n{quotes_md}" + sources(quoted, [], lang, base_url)


_MD_SPECIAL = re.compile(r"([\\\[\]*_`<>])")


def _md(text: str) -> str:
    """``text`` safe inside a Markdown link's label."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def source_line(p: dict[str, Any], lang: Lang, base_url: str) -> str:
    """``- [n] [title › heading](link) — file, p. 3``: a source, with a link into the
    document view (absolute when ``base_url`` is known)."""
    label = " › ".join([p.get("title") or p["file"], *p.get("heading_path", [])[-1:]])
    where = [p["file"]]
    if p.get("page"):
        where.append(LABELS[lang]["page"].format(page=p["page"]))
    link = base_url.rstrip("/") + p["link"]
    return f"- [{p['n']}] [{_md(label)}]({link}) — {_md(', '.join(where))}"


def sources(
    cited: list[dict[str, Any]], passages: list[dict[str, Any]], lang: Lang, base_url: str
) -> str:
    """The sources block appended to the content: the cited passages, or when none is
    cited the closest ones; empty when there are neither."""
    labels = LABELS[lang]
    title, shown = (
        (labels["sources"], cited) if cited else (labels["closest"], passages[:CLOSEST_SHOWN])
    )
    if not shown:
        return ""
    lines = [source_line(p, lang, base_url) for p in shown]
    return f"\n\n**{title}**\n\n" + "\n".join(lines)
