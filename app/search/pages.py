"""The search page (home) and the Ask page, server-rendered with htmx fragments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from markupsafe import Markup
from pydantic import BaseModel
from sqlalchemy.orm import Session

from app.admission import SearchSlot
from app.answer.page import WrittenView, stream_request, written_view
from app.auth.deps import ReaderUser
from app.collections import service as collections
from app.collections.access import Access, readable_collection
from app.collections.access import readable as readable_collections
from app.collections.deps import AccessDep
from app.collections.service import CollectionNotFound
from app.deps import IdPath, RuntimeDep, SessionDep
from app.documents import service as documents
from app.embedding.base import Embedder, EmbedderError, Vectors
from app.errors import AppError
from app.feedback.models import Source
from app.feedback.querylog import note_query
from app.runtime import Runtime
from app.search.answers import answer_spans, hit_snippets, passage_marks, plain_texts
from app.search.query import (
    DOC_TYPES,
    LANGUAGES,
    AskForm,
    FormQuestion,
    SearchForm,
)
from app.search.service import (
    CHUNK_KINDS,
    MAX_FILTER_TAGS,
    SearchError,
    SearchFilters,
    SearchHit,
    SearchResult,
    SearchUnavailable,
    search,
    tags_in_collection,
)
from app.text.highlight import render_highlighted
from app.text.plain import plain_passage
from app.text.snippets import SNIPPET_CHARS, best_snippet
from app.text.tags import tag_identity
from app.vectors.sentence_file import stored_sentences
from app.web import render

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class HitView:
    """A hit as the page shows it: highlighted passage and where it comes from."""

    hit: SearchHit
    passage: Markup
    link: str  # the passage inside the document view
    source_link: str  # the original file (a PDF opens at the page)
    toggle: str | None = None  # swaps in the whole passage (or the snippet back); None: whole
    full: bool = True  # ``passage`` is the whole passage, not a snippet


def passage_link(chunk_id: int, *, q: str, weak: bool, full: bool) -> str:
    """The fragment that shows a hit's whole passage (``full``) or its snippet again."""
    params = {"q": q, **({"weak": "1"} if weak else {}), **({"full": "1"} if full else {})}
    return f"/passages/{chunk_id}?{urlencode(params)}"


def _cut(text: str) -> bool:
    """Whether a snippet of ``text`` leaves some of it out."""
    return len(" ".join(text.split())) > SNIPPET_CHARS


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
    rt: Runtime,
    session: Session,
    q: str,
    k: int,
    collection: str,
    filters: SearchFilters,
    access: Access,
) -> tuple[SearchResult | None, str | None]:
    """The result, or the reason there is none for the page to show beside the form."""
    if not q.strip():
        return None, None
    try:
        result = search(
            rt,
            query=q,
            k=k,
            collection=collection or None,
            filters=filters,
            session=session,
            access=access,
        )
    except (SearchError, SearchUnavailable, CollectionNotFound) as exc:
        return None, str(exc)
    return result, None


def _tag_options(
    rt: Runtime,
    session: Session,
    collection: str,
    chosen_tags: tuple[str, ...],
    access: Access,
    *,
    keep: bool,
) -> list[tuple[str, bool]]:
    """The tag filter's (tag, selected) pairs for ``collection`` (none: every collection
    the user may read): the tags its documents carry, compared as filters compare them
    (by tag_identity). ``keep``: tags asked for (in the URL) stay offered, selected, even
    if no document has them (any more)."""
    try:
        if collection:
            ids = [readable_collection(session, access, collection).id]
        else:
            rt.collection(session)  # the default one exists
            ids = [c.id for c in readable_collections(session, access)]
        known = tags_in_collection(session, ids)
    except CollectionNotFound:
        known = []
    chosen = {tag_identity(t) for t in chosen_tags}
    keys = {tag_identity(t) for t in known}
    tags = known + ([t for t in chosen_tags if tag_identity(t) not in keys] if keep else [])
    return [(t, tag_identity(t) in chosen) for t in tags]


def _common(
    rt: Runtime, session: Session, collection: str, filters: SearchFilters, access: Access
) -> dict[str, object]:
    names = [c.name for c in readable_collections(session, access)]
    tag_options = _tag_options(rt, session, collection, filters.tags, access, keep=True)
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
    _slot: SearchSlot,  # first: a request waiting for it holds nothing else
    rt: RuntimeDep,
    session: SessionDep,
    user: ReaderUser,
    access: AccessDep,
    form: Annotated[SearchForm, Query()],
) -> Response:
    """Search by meaning in any language; htmx swaps only the results block."""
    filters = form.filters()
    documents_here = _documents_in(rt, session, form.collection, access)
    # An empty collection: the page says what to do next instead of searching.
    q = form.q if documents_here != 0 else ""
    result, error = _run(rt, session, q, form.k, form.collection, filters, access)
    views: list[HitView] = []
    if result is not None:
        note_query(request, user, Source.SEARCH, result)
        plain = plain_texts(result.hits)
        snippets = hit_snippets(rt, result, session=session, texts=plain)
        for hit, text, snip in zip(result.hits, plain, snippets, strict=True):
            cut = _cut(text)
            toggle = (
                passage_link(hit.chunk_id, q=result.query, weak=result.weak_match, full=True)
                if cut
                else None
            )
            views.append(
                HitView(
                    hit,
                    render_highlighted(snip.text, snip.highlights),
                    document_link(hit),
                    source_link(hit),
                    toggle=toggle,
                    full=not cut,
                )
            )
    active = _active_filters(form)
    ctx = {
        "q": form.q,
        "collection": form.collection,
        "doc_type": form.doc_type,
        "language": form.language,
        "result": result,
        "hits": views,
        "error": error,
        # Searched with nothing to search for: the form was sent empty.
        "empty_query": "q" in request.query_params and not form.q.strip(),
        "empty_collection": documents_here == 0,
        "active_filters": active,
        "clear_filters": "/?" + urlencode({"q": form.q, "collection": form.collection}),
        # The raw score means something to administrators only (the API keeps it).
        "show_score": user.can("admin"),
        **_common(rt, session, form.collection, filters, access),
    }
    return render(request, "search.html", ctx, block="results")


def _documents_in(rt: Runtime, session: Session, collection: str, access: Access) -> int | None:
    """How many documents the collection searched holds, or every collection the user may
    read when none is chosen (None: no such collection, or not one the user may read)."""
    try:
        if collection:
            col = readable_collection(session, access, collection)
            return documents.count_documents(session, collection_id=col.id)
        rt.collection(session)  # the default one exists
    except CollectionNotFound:
        return None
    return sum(
        documents.count_documents(session, collection_id=c.id)
        for c in readable_collections(session, access)
    )


def _active_filters(form: SearchForm) -> int:
    """How many of the search form's narrowing filters are set (the collection aside)."""
    filters = form.filters()
    return sum(
        (
            filters.doc_type is not None,
            filters.language is not None,
            filters.kind is not None,
            bool(filters.tags),
        )
    )


class TagsForm(BaseModel):
    """The tag filter's fragment: the collection chosen and the tags selected so far."""

    collection: str = ""
    tag: list[str] | None = None


@router.get("/search/tags")
def tags_fragment(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    _user: ReaderUser,
    access: AccessDep,
    form: Annotated[TagsForm, Query()],
) -> Response:
    """The tag filter for another collection: the search and Ask pages swap it in when
    the collection select changes, keeping the chosen tags that collection has."""
    chosen = tuple((form.tag or [])[:MAX_FILTER_TAGS])
    options = _tag_options(rt, session, form.collection, chosen, access, keep=False)
    ctx = {"tags_only": True, "tag_options": options}
    response = render(request, "_filters.html", ctx)
    # The page searches again once the new tags are in (search.html's hx-trigger).
    response.headers["HX-Trigger-After-Settle"] = "kb-tags"
    return response


@dataclass(frozen=True)
class AnswerView:
    hit: SearchHit
    passage: Markup
    best: str  # the best sentence, plain text, for a short preview
    link: str
    source_link: str
    toggle: str | None = None  # an answer shows its whole passage
    full: bool = True


def _answers(rt: Runtime, session: Session, result: SearchResult) -> list[AnswerView]:
    """Inside each passage (as plain text), highlight the sentence(s) closest to the
    question in meaning."""
    views = []
    plain = plain_texts(result.hits)
    spans_per_hit = answer_spans(rt, result, session=session, texts=plain)
    for hit, text, spans in zip(result.hits, plain, spans_per_hit, strict=True):
        marks = [(span.start, span.end) for span in spans]
        best = max(spans, key=lambda span: span.score) if spans else None
        preview = text[best.start : best.end] if best else ""
        views.append(
            AnswerView(
                hit,
                render_highlighted(text, marks),
                preview,
                document_link(hit),
                source_link(hit),
            )
        )
    return views


class AskPageForm(AskForm):
    """The Ask page's form, and ``write``: have the answer written on the server (the
    page's way to a written answer without JavaScript)."""

    write: bool = False


def _written(
    rt: Runtime,
    session: Session,
    form: AskPageForm,
    filters: SearchFilters,
    answers: list[AnswerView],
    access: Access,
) -> tuple[WrittenView | None, str | None]:
    """The whole written answer for the page without JavaScript, or why there is none."""
    # Imported here: app.answer.service imports this module (document_link, source_link).
    from app.answer.service import answer

    try:
        got = answer(
            rt,
            question=form.q,
            collection=form.collection or None,
            k=form.k,
            filters=filters,
            session=session,
            access=access,
        )
    except AppError as exc:
        return None, str(exc)
    ranks = {a.hit.chunk_id: i for i, a in enumerate(answers, 1)}
    view = written_view(
        answer=got.answer,
        citations=got.citations,
        model=got.model,
        notice=got.notice,
        ranks=ranks,
    )
    return view, None


def _write_link(request: Request) -> str:
    """This page with ``write=1``: the written answer without JavaScript."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("write", "rated")]
    return "/ask?" + urlencode([*params, ("write", "1")])


@router.get("/ask")
def ask_page(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    user: ReaderUser,
    access: AccessDep,
    form: Annotated[AskPageForm, Query()],
) -> Response:
    """The few passages most likely to answer a question, answering sentences marked;
    with an LLM configured, the answer it writes from them (streamed by answer.js, or
    written on the server with ``write=1``)."""
    filters = form.filters()
    result, error = _run(rt, session, form.q, form.k, form.collection, filters, access)
    if result is not None:
        note_query(request, user, Source.ASK, result)
    answers: list[AnswerView] = []
    if result is not None and result.hits:
        try:
            answers = _answers(rt, session, result)
        except SearchUnavailable as exc:
            error = str(exc)
    llm_model = rt.llm.model if rt.llm is not None else None
    can_write = llm_model is not None and result is not None and not result.weak_match
    can_write = can_write and bool(answers)
    written: WrittenView | None = None
    written_error: str | None = None
    if can_write and form.write:
        written, written_error = _written(rt, session, form, filters, answers, access)
    ctx = {
        "q": form.q,
        "collection": form.collection,
        "result": result,
        "answers": answers,
        "error": error,
        "llm_model": llm_model,
        "can_write": can_write,
        "written": written,
        "written_error": written_error,
        "stream_body": stream_request(
            question=form.q, collection=form.collection, k=form.k, filters=filters
        ),
        "write_link": _write_link(request),
        **_common(rt, session, form.collection, filters, access),
    }
    return render(request, "ask.html", ctx, block="answers")


class PassageForm(BaseModel):
    """What the passage fragment highlights: ``q``'s terms (or, where none occurs and the
    search was not a weak match, the sentence closest to it); ``full`` or the snippet."""

    q: FormQuestion = ""
    weak: bool = False
    full: bool = False


@dataclass(frozen=True)
class PassageView:
    """One hit's passage box on its own: what the expand and collapse controls swap in."""

    chunk_id: int
    language: str | None
    passage: Markup
    toggle: str
    full: bool


@router.get("/passages/{chunk_id}")
def passage_fragment(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    _user: ReaderUser,
    access: AccessDep,
    chunk_id: IdPath,
    form: Annotated[PassageForm, Query()],
) -> Response:
    """A search hit's whole passage, highlighted (``full=1``), or its snippet: the Search
    page swaps one for the other in place."""
    found = documents.passage(session, chunk_id, access)
    plain = plain_passage(found.text, found.doc_type)
    embedder: Embedder | None = None
    instruction: str | None = None
    stored: list[Vectors | None] = []
    if form.q.strip() and not form.weak:
        col = collections.get(session, found.collection_id)
        try:
            embedder, instruction = rt.embedders.get(col.embedder), col.query_instruction
        except EmbedderError:
            embedder = None
        if embedder is not None and embedder.sentence_vectors:
            vectors = stored_sentences(session, [chunk_id], model=col.model, dim=col.dim)
            stored = [vectors.get(chunk_id)]
    marks = passage_marks(
        embedder, instruction, form.q, [plain], weak_match=form.weak, stored=stored
    )[0]
    if form.full:
        passage = render_highlighted(plain, marks)
    else:
        body, spans = best_snippet(plain, marks)
        passage = render_highlighted(body, spans)
    view = PassageView(
        chunk_id,
        found.language,
        passage,
        passage_link(chunk_id, q=form.q, weak=form.weak, full=not form.full),
        form.full,
    )
    return render(request, "_passage.html", {"v": view})
