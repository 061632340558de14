"""Dense search: embed the query, FAISS top-k, then rows and metadata from SQL."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from app.documents.models import Chunk, Document, DocumentStatus, DocumentTag
from app.embedding.base import EmbedderError, EmbedderInputError
from app.runtime import Runtime

MAX_K = 100

# Chunk.kind values: a passage under a heading, an FAQ question with its answer, an exam
# question with its options and answer.
CHUNK_KINDS = ("section", "faq", "question")
# At most this many tags in one filter (a URL can carry any number).
MAX_FILTER_TAGS = 20


class SearchError(ValueError):
    """The query cannot be run as asked (empty, bad k); the message is for a person."""


class SearchUnavailable(RuntimeError):
    """The embedding server does not answer; the message is for a person (HTTP 503)."""


@dataclass(frozen=True)
class SearchHit:
    chunk_id: int
    document_id: int
    file: str
    title: str | None
    doc_type: str
    language: str | None
    heading_path: list[str]
    text: str
    page_start: int | None
    page_end: int | None
    score: float
    kind: str = "section"
    question: str | None = None

    @property
    def page(self) -> int | None:
        return self.page_start


@dataclass(frozen=True)
class SearchFilters:
    """Restrictions applied inside the vector search (not after it), all of them at once.

    ``tags``: the document has ANY of the given tags (a facet: "orbit or handbook");
    tags match case-insensitively with surrounding and repeated whitespace ignored, and
    both kinds of tag count (read from front matter, or set on upload). Empty tags are
    dropped. ``kind``: the chunk's kind, one of :data:`CHUNK_KINDS`
    (:class:`SearchError` for any other).
    """

    doc_type: str | None = None
    language: str | None = None
    document_id: int | None = None
    tags: tuple[str, ...] = ()
    kind: str | None = None

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in CHUNK_KINDS:
            raise SearchError(f"unknown kind {self.kind!r}: use one of {', '.join(CHUNK_KINDS)}")
        unique: dict[str, str] = {}
        for tag in self.tags:
            spelled = " ".join(tag.split())
            if spelled:
                unique.setdefault(tag_key(spelled), spelled)
        if len(unique) > MAX_FILTER_TAGS:
            raise SearchError(f"at most {MAX_FILTER_TAGS} tags can be searched for at once")
        object.__setattr__(self, "tags", tuple(unique.values()))

    def active(self) -> bool:
        return bool(self.tags) or any(
            v is not None for v in (self.doc_type, self.language, self.document_id, self.kind)
        )


def tag_key(tag: str) -> str:
    """A tag as filters compare it: whitespace collapsed, lower case."""
    return " ".join(tag.split()).lower()


def allowed_chunks(collection_id: int, filters: SearchFilters) -> Select[int]:
    """``SELECT chunks.id`` of the collection's chunks that pass ``filters``.

    The dense search turns it into a FAISS ID selector; a SQL search can use it as a
    subquery (``Chunk.id.in_(allowed_chunks(...))``) so the filter applies before top-k.
    """
    query = (
        select(Chunk.id)
        .join(Document, Document.id == Chunk.document_id)
        .where(Chunk.collection_id == collection_id)
    )
    if filters.doc_type is not None:
        query = query.where(Document.doc_type == filters.doc_type)
    if filters.language is not None:
        query = query.where(Document.language == filters.language)
    if filters.document_id is not None:
        query = query.where(Document.id == filters.document_id)
    if filters.kind is not None:
        query = query.where(Chunk.kind == filters.kind)
    if filters.tags:
        # Stored tags are whitespace-collapsed already (front matter and upload); trim
        # covers a stray trailing space. SQLite's lower() folds ASCII only, so the exact
        # spelling matches too (a tag picked from the page's list always does).
        stored = func.trim(DocumentTag.tag)
        tagged = select(DocumentTag.document_id).where(
            or_(
                func.lower(stored).in_(sorted({tag_key(t) for t in filters.tags})),
                stored.in_(filters.tags),
            )
        )
        query = query.where(Document.id.in_(tagged))
    return query


def tags_in_collection(session: Session, collection_id: int) -> list[str]:
    """The distinct tags of the collection's documents (first spelling wins), sorted."""
    rows = session.scalars(
        select(DocumentTag.tag)
        .join(Document, Document.id == DocumentTag.document_id)
        .where(Document.collection_id == collection_id)
        .distinct()
    )
    by_key: dict[str, str] = {}
    for tag in rows:
        by_key.setdefault(tag_key(tag), " ".join(tag.split()))
    return sorted(by_key.values(), key=tag_key)


@dataclass(frozen=True)
class SearchResult:
    query: str
    collection: str
    hits: list[SearchHit]
    # Milliseconds per stage: embed, vector, fetch, total.
    timings: dict[str, float] = field(default_factory=dict)


def search(
    rt: Runtime,
    *,
    query: str,
    k: int = 10,
    collection: str | None = None,
    filters: SearchFilters | None = None,
) -> SearchResult:
    """The ``k`` passages closest in meaning to ``query`` (any language) in one collection."""
    query = query.strip()
    if not query:
        raise SearchError("type a question or some words to search for")
    if not 1 <= k <= MAX_K:
        raise SearchError(f"k must be between 1 and {MAX_K}")
    t0 = time.perf_counter()
    with rt.sessions() as session:
        for _attempt in range(2):
            col = rt.collection(session, collection)
            t1 = time.perf_counter()
            qvec = _embed_query(rt, col.embedder, query, col.query_instruction)
            t2 = time.perf_counter()
            index = rt.indexes.get(session, col)
            if (index.meta.model, index.meta.dim) == (col.model, len(qvec)):
                break
            # The collection switched models between reading it and syncing its index:
            # read it again and embed the query with the new model.
            session.expire_all()
        else:
            raise SearchUnavailable("the collection is switching models; try again in a moment")
        allowed = allowed_ids(session, col.id, filters) if filters and filters.active() else None
        scored = index.search(qvec, k, allowed=allowed)
        t3 = time.perf_counter()
        hits = _load_hits(session, scored)
        t4 = time.perf_counter()
        name = col.name
    timings = {
        "embed_ms": (t2 - t1) * 1000,
        "vector_ms": (t3 - t2) * 1000,
        "fetch_ms": (t4 - t3) * 1000,
        "total_ms": (t4 - t0) * 1000,
    }
    return SearchResult(query=query, collection=name, hits=hits, timings=timings)


def _embed_query(
    rt: Runtime, embedder_name: str, query: str, instruction: str | None
) -> npt.NDArray[np.float32]:
    try:
        return rt.embedders.get(embedder_name).embed_queries([query], instruction=instruction)[0]
    except EmbedderInputError as exc:
        raise SearchError(f"the question is too long to search for: {exc}") from exc
    except EmbedderError as exc:
        raise SearchUnavailable(
            f"search is unavailable: the embedding server does not answer ({exc})"
        ) from exc


def allowed_ids(
    session: Session, collection_id: int, filters: SearchFilters
) -> npt.NDArray[np.int64]:
    """The ids of :func:`allowed_chunks` as the array a FAISS ID selector takes."""
    return np.fromiter(session.scalars(allowed_chunks(collection_id, filters)), dtype=np.int64)


def _load_hits(session: Session, scored: list[tuple[int, float]]) -> list[SearchHit]:
    if not scored:
        return []
    ids = [cid for cid, _ in scored]
    rows = session.execute(
        select(Chunk, Document)
        .join(Document, Document.id == Chunk.document_id)
        .where(Chunk.id.in_(ids), Document.status == DocumentStatus.READY)
    ).all()
    by_id = {chunk.id: (chunk, doc) for chunk, doc in rows}
    hits = []
    for cid, score in scored:
        if cid not in by_id:  # deleted since the index was synced
            continue
        chunk, doc = by_id[cid]
        hits.append(
            SearchHit(
                chunk_id=chunk.id,
                document_id=doc.id,
                file=doc.filename,
                title=doc.title,
                doc_type=doc.doc_type,
                language=doc.language,
                heading_path=list(chunk.heading_path or []),
                text=chunk.text,
                page_start=chunk.page_start,
                page_end=chunk.page_end,
                score=score,
                kind=chunk.kind,
                question=chunk.question,
            )
        )
    return hits
