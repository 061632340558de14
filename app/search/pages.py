"""The search page (home) and the Ask page, server-rendered with htmx fragments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from app.auth.deps import ReaderUser
from app.collections import service as collections
from app.collections.service import CollectionNotFound
from app.deps import RuntimeDep, SessionDep
from app.runtime import Runtime
from app.search.answers import answer_spans
from app.search.query import DOC_TYPES, LANGUAGES, AskForm, SearchForm
from app.search.service import (
    CHUNK_KINDS,
    SearchError,
    SearchFilters,
    SearchHit,
    SearchResult,
    SearchUnavailable,
    search,
    tags_in_collection,
)
from app.text.highlight import highlight_spans, highlight_terms, render_highlighted, snippet
from app.text.tags import tag_identity
from app.web import render

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class HitView:
    """A hit as the page shows it: highlighted passage and where it comes from."""

    hit: SearchHit
    passage: Markup
    link: str  # the passage inside the document view
    source_link: str  # the original file (a PDF opens at the page)


def document_link(hit: SearchHit) -> str:
    # ?chunk= opens the part of a long document that holds the passage (a fragment
    # never reaches the server); #chunk- then scrolls to it.
    return f"/documents/{hit.document_id}?chunk={hit.chunk_id}#chunk-{hit.chunk_id}"


def source_link(hit: SearchHit) -> str:
    base = f"/documents/{hit.document_id}/original"
    if hit.doc_type == "pdf" and hit.page_start:
        return f"{base}#page={hit.page_start}"
    return document_link(hit)


def _run(
    rt: Runtime, session: Session, q: str, k: int, collection: str, filters: SearchFilters
) -> tuple[SearchResult | None, str | None]:
    """The result, or the reason there is none for the page to show beside the form."""
    if not q.strip():
        return None, None
    try:
        result = search(
            rt, query=q, k=k, collection=collection or None, filters=filters, session=session
        )
    except (SearchError, SearchUnavailable, CollectionNotFound) as exc:
        return None, str(exc)
    return result, None


def _common(
    rt: Runtime, session: Session, collection: str, filters: SearchFilters
) -> dict[str, object]:
    names = [c.name for c in collections.list_all(session)]
    try:
        known = tags_in_collection(session, rt.collection(session, collection or None).id)
    except CollectionNotFound:
        known = []
    # Tags asked for in the URL stay selected even if no document has them (any more).
    chosen = {tag_identity(t) for t in filters.tags}
    keys = {tag_identity(t) for t in known}
    tags = known + [t for t in filters.tags if tag_identity(t) not in keys]
    # (tag, selected) pairs: the page compares tags as filters do, by tag_identity.
    tag_options = [(t, tag_identity(t) in chosen) for t in tags]
    return {
        "collections": names,
        "doc_types": DOC_TYPES,
        "language_options": LANGUAGES,  # the filter ("languages" is the header's)
        "kinds": CHUNK_KINDS,
        "kind": filters.kind or "",
        "tag_options": tag_options,
    }


@router.get("/")
def search_page(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    _user: ReaderUser,
    form: Annotated[SearchForm, Query()],
) -> Response:
    """Search by meaning in any language; htmx swaps only the results block."""
    filters = form.filters()
    result, error = _run(rt, session, form.q, form.k, form.collection, filters)
    views: list[HitView] = []
    if result is not None:
        terms = highlight_terms(result.query)
        for hit in result.hits:
            text, spans = snippet(hit.text, highlight_spans(hit.text, terms), max_chars=700)
            views.append(
                HitView(hit, render_highlighted(text, spans), document_link(hit), source_link(hit))
            )
    ctx = {
        "q": form.q,
        "collection": form.collection,
        "doc_type": form.doc_type,
        "language": form.language,
        "result": result,
        "hits": views,
        "error": error,
        **_common(rt, session, form.collection, filters),
    }
    return render(request, "search.html", ctx, block="results")


@dataclass(frozen=True)
class AnswerView:
    hit: SearchHit
    passage: Markup
    best: str  # the best sentence, plain text, for a short preview
    link: str
    source_link: str


def _answers(rt: Runtime, session: Session, result: SearchResult) -> list[AnswerView]:
    """Inside each passage, highlight the sentence(s) closest to the question in meaning."""
    views = []
    spans_per_hit = answer_spans(rt, result, session=session)
    for hit, spans in zip(result.hits, spans_per_hit, strict=True):
        marks = [(span.start, span.end) for span in spans]
        best = max(spans, key=lambda span: span.score) if spans else None
        preview = hit.text[best.start : best.end] if best else ""
        views.append(
            AnswerView(
                hit,
                render_highlighted(hit.text, marks),
                preview,
                document_link(hit),
                source_link(hit),
            )
        )
    return views


@router.get("/ask")
def ask_page(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    _user: ReaderUser,
    form: Annotated[AskForm, Query()],
) -> Response:
    """The few passages most likely to answer a question, answering sentences marked."""
    filters = form.filters()
    result, error = _run(rt, session, form.q, form.k, form.collection, filters)
    answers: list[AnswerView] = []
    if result is not None and result.hits:
        try:
            answers = _answers(rt, session, result)
        except SearchUnavailable as exc:
            error = str(exc)
    ctx = {
        "q": form.q,
        "collection": form.collection,
        "result": result,
        "answers": answers,
        "error": error,
        **_common(rt, session, form.collection, filters),
    }
    return render(request, "ask.html", ctx, block="answers")
