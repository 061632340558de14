"""Dense search: embed the query, FAISS top-k, then rows and metadata from SQL."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.documents.models import Chunk, Document, DocumentStatus
from app.embedding.base import EmbedderError, EmbedderInputError
from app.runtime import Runtime

MAX_K = 100


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
    """Restrictions applied inside the vector search (not after it)."""

    doc_type: str | None = None
    language: str | None = None
    document_id: int | None = None

    def active(self) -> bool:
        return any(v is not None for v in (self.doc_type, self.language, self.document_id))


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
        allowed = _allowed_ids(session, col.id, filters) if filters and filters.active() else None
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


def _allowed_ids(
    session: Session, collection_id: int, filters: SearchFilters
) -> npt.NDArray[np.int64]:
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
    return np.fromiter(session.scalars(query), dtype=np.int64)


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
