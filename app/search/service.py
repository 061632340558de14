"""Search: a dense leg (embed the query, FAISS) and a lexical leg (BM25 over in-memory
postings for large collections, else the database's full-text index), fused; optionally
reranked by a rerank server; then rows and metadata from SQL.

Filters apply inside both legs, so a filtered search still returns k results."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from app.collections import service as collections_service
from app.collections.access import EVERYTHING, Access
from app.collections.models import Collection
from app.collections.service import CollectionNotFound
from app.db import ids_param
from app.documents.models import Chunk, ChunkKind, Document, DocumentStatus, DocumentTag
from app.embedding.base import EmbedderError, EmbedderInputError, Vectors
from app.errors import Invalid, Unavailable
from app.rerank import rerank_order
from app.runtime import Runtime
from app.search.fusion import FusionWeights, fuse, looks_literal
from app.search.lexical import lexical_search, memory_search
from app.search.rescore import blend_sentences, verbatim_applies, verbatim_first
from app.text.dictionary import translate_query
from app.text.embed import embed_text_for
from app.text.language import detect_language
from app.text.tags import tag_identity
from app.text.titles import display_title
from app.vectors.facets import FacetFilter
from app.vectors.index import CollectionIndex
from app.vectors.postings import TermView

log = logging.getLogger(__name__)

MAX_K = 100


# hybrid: both legs fused (the default); dense: meaning only; lexical: words only.
class SearchMode(StrEnum):
    HYBRID = "hybrid"  # meaning and words, fused (the default)
    DENSE = "dense"  # meaning only (the embedder and FAISS)
    LEXICAL = "lexical"  # words only (the database's full-text index; no embedder)


SEARCH_MODES = tuple(SearchMode)
# How deep each leg looks before fusion: the lexical leg re-orders the dense leg's
# candidates, so they must reach past k to where a monolingual answer may sit.
FUSION_DEPTH = 50

# Chunk.kind values: a passage under a heading, an FAQ question with its answer, an exam
# question with its options and answer.
CHUNK_KINDS = tuple(ChunkKind)
# At most this many tags in one filter (a URL can carry any number).
MAX_FILTER_TAGS = 20


class SearchError(Invalid, ValueError):
    """The query cannot be run as asked (empty, bad k); the message is for a person."""


class SearchUnavailable(Unavailable, RuntimeError):
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
    # The same passage in other documents (the same FAQ in two files), folded into this
    # hit so copies do not fill the list: (document id, file name, chunk id).
    duplicates: tuple[tuple[int, str, int], ...] = ()
    # The collection the passage is in (a search covers every collection the user may
    # read that shares the query's embedding model).
    collection: str = ""

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
                unique.setdefault(tag_identity(spelled), spelled)
        if len(unique) > MAX_FILTER_TAGS:
            raise SearchError(f"at most {MAX_FILTER_TAGS} tags can be searched for at once")
        object.__setattr__(self, "tags", tuple(unique.values()))

    def active(self) -> bool:
        return bool(self.tags) or any(
            v is not None for v in (self.doc_type, self.language, self.document_id, self.kind)
        )


def _ids(collection_ids: int | Sequence[int]) -> list[int]:
    return [collection_ids] if isinstance(collection_ids, int) else list(collection_ids)


def allowed_chunks(collection_ids: int | Sequence[int], filters: SearchFilters) -> Select[int]:
    """``SELECT chunks.id`` of the collection's chunks that pass ``filters``.

    The dense search turns it into a FAISS ID selector; a SQL search can use it as a
    subquery (``Chunk.id.in_(allowed_chunks(...))``) so the filter applies before top-k.

    Documents are joined only for a filter on their columns (document type, a chunk's
    language inherited from its document). A tag filter starts from the tag table: the
    tagged documents of the collection, then their chunks through an index on (collection,
    document), rather than every chunk of the collection checked against the tags.
    """
    ids = _ids(collection_ids)
    query = select(Chunk.id)
    if filters.tags:
        # Stored tags are whitespace-collapsed already (front matter and upload); trim
        # covers a stray trailing space. SQLite's lower() folds ASCII only, so the exact
        # spelling matches too (a tag picked from the page's list always does).
        stored = func.trim(DocumentTag.tag)
        tagged = (
            select(DocumentTag.document_id)
            .join(Document, Document.id == DocumentTag.document_id)
            .where(
                Document.collection_id.in_(ids),
                or_(
                    func.lower(stored).in_(sorted({tag_identity(t) for t in filters.tags})),
                    stored.in_(filters.tags),
                ),
            )
            .distinct()
            .subquery()
        )
        query = query.select_from(tagged).join(Chunk, Chunk.document_id == tagged.c.document_id)
    query = query.where(Chunk.collection_id.in_(ids))
    if filters.doc_type is not None or filters.language is not None:
        query = query.join(Document, Document.id == Chunk.document_id)
    if filters.doc_type is not None:
        query = query.where(Document.doc_type == filters.doc_type)
    if filters.language is not None:
        # The chunk's own language (a bilingual document has both); rows stored before
        # chunks had one take their document's.
        query = query.where(func.coalesce(Chunk.language, Document.language) == filters.language)
    if filters.document_id is not None:
        query = query.where(Chunk.document_id == filters.document_id)
    if filters.kind is not None:
        query = query.where(Chunk.kind == filters.kind)
    return query


def tags_in_collection(session: Session, collection_ids: int | Sequence[int]) -> list[str]:
    """The distinct tags of the collections' documents (one spelling each), sorted."""
    rows = session.scalars(
        select(DocumentTag.tag)
        .join(Document, Document.id == DocumentTag.document_id)
        .where(Document.collection_id.in_(_ids(collection_ids)))
        .distinct()
    )
    by_key: dict[str, str] = {}
    for tag in rows:
        spelled = " ".join(tag.split())
        key = tag_identity(spelled)
        # Of several spellings the smallest, not the first: DISTINCT returns rows in no
        # set order, and the list must not change when the planner's statistics do.
        by_key[key] = min(by_key.get(key, spelled), spelled)
    return sorted(by_key.values(), key=tag_identity)


@dataclass(frozen=True)
class SearchResult:
    query: str
    collection: str
    hits: list[SearchHit]
    # Milliseconds per stage: embed, vector, lexical, fetch, rerank, total.
    timings: dict[str, float] = field(default_factory=dict)
    mode: str = "hybrid"
    # True when a rerank server reordered the hits.
    reranked: bool = False
    # Why the results are not as asked (the rerank server failed), for a person.
    notice: str | None = None
    # The dense leg's best cosine (the passage closest in meaning); None without one.
    best_similarity: float | None = None
    # Nothing matches well: no hits, or the best cosine is below the embedder's
    # calibrated threshold (see weak_match()). Callers say so and mark no answers.
    weak_match: bool = False
    # The query's embedding (dense and hybrid modes), so that highlighting sentences by
    # meaning does not embed the query again; not part of any response.
    query_vector: Vectors | None = field(default=None, repr=False, compare=False)
    # Every collection searched (``collection`` is the first), and those left out because
    # their embedding model differs from theirs (scores of two models do not compare).
    collections: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    # The hits' sentence vectors the second stage read (the first collection's model), so
    # snippets need not read them again; an id in ``sentences_read`` without an entry has
    # none stored. Not part of any response.
    sentence_vectors: Mapping[int, Vectors] = field(default_factory=dict, repr=False, compare=False)
    sentences_read: frozenset[int] = field(default=frozenset(), repr=False, compare=False)
    # The first collection's row as the search read it (snippets need its model and
    # query instruction: no second query). Not part of any response.
    collection_row: Collection | None = field(default=None, repr=False, compare=False)


def weak_match(hits: int, best_similarity: float | None, threshold: float | None) -> bool:
    """Whether nothing in the collection matches the query well.

    The signal is the dense leg's best cosine, not the fused score: the fused score adds a
    lexical bonus for shared words ("temperature", "install"), which off-topic questions
    earn too, and it depends on the mode and the language share; the cosine is the
    embedder's own measure of meaning, calibrated per embedder (bench/weakmatch.py).
    No hits at all is a weak match too. Without a dense leg (lexical mode) or without a
    calibrated threshold, any hit counts as a match.
    """
    if hits == 0:
        return True
    if best_similarity is None or threshold is None:
        return False
    return best_similarity < threshold


def search(
    rt: Runtime,
    *,
    query: str,
    k: int = 10,
    collection: str | None = None,
    filters: SearchFilters | None = None,
    mode: str = "hybrid",
    rerank: bool = True,
    weights: FusionWeights | None = None,
    session: Session | None = None,
    access: Access = EVERYTHING,
    collections: Sequence[Collection] | None = None,
) -> SearchResult:
    """The ``k`` passages that best answer ``query`` (any language) in ``collection``, or,
    without one, in every collection ``access`` may read that shares the query's
    embedding model (:func:`searched_collections`). Routes pass the user's ``access``;
    the default, every collection, is for the CLI and scripts.

    ``session``: the request's own (a request holds one connection at most); the CLI
    and scripts leave it out and get one for the call. ``collections``: every collection,
    when the request read them in ``session`` already (the search API, for its access).

    ``rerank`` uses the rerank server when one is configured; if it fails, the first
    stage's order is returned with a ``notice``.
    """
    query = query.strip()
    if not query:
        raise SearchError("type a question or some words to search for")
    if not 1 <= k <= MAX_K:
        raise SearchError(f"k must be between 1 and {MAX_K}")
    if mode not in SEARCH_MODES:
        raise SearchError(f"unknown mode {mode!r}: use one of {', '.join(SEARCH_MODES)}")
    reranker = rt.reranker if rerank else None
    first = max(k, reranker.candidates) if reranker is not None else k
    # k more than needed: copies of a passage are folded into one hit.
    depth = max(first + k, FUSION_DEPTH) if mode == SearchMode.HYBRID else first + k
    w = weights or FusionWeights()
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    with session_for(rt, session) as session:
        cols, skipped = searched_collections(rt, session, collection, access, every=collections)
        col = cols[0]
        ids = [c.id for c in cols]
        dense: list[tuple[int, float]] = []
        best: float | None = None
        qvec: Vectors | None = None
        facet = facet_filter(filters) if filters and filters.active() else None
        allowed_by: dict[int, npt.NDArray[np.int64]] = {}
        # The indexes the dense leg synced, by collection id (the lexical leg's too).
        synced: dict[int, CollectionIndex] = {}
        sentences: dict[int, Vectors] = {}
        read: set[int] = set()
        if mode != SearchMode.LEXICAL:
            dense, best, qvec = _dense(
                rt,
                session,
                cols,
                query,
                facet,
                allowed_by,
                synced,
                depth,
                t,
                w.sentences,
                sentences,
                read,
            )
        lexical: list[tuple[int, float]] = []
        translated: list[tuple[int, float]] = []
        if mode != SearchMode.DENSE:
            t1 = time.perf_counter()
            # The words of the query in the other language (zh <-> en), matched word for
            # word in passages of that language.
            other = translate_query(query) if mode == SearchMode.HYBRID and w.translated else ""
            views = _term_views(rt, session, cols, facet, allowed_by, synced)
            if views is not None:
                lexical = memory_search(views, query, depth)
                translated = memory_search(views, other, depth) if other else []
            else:
                allowed = allowed_chunks(ids, filters) if filters and facet else None
                lexical = lexical_search(session, ids, query, depth, allowed_ids=allowed)
                if other:
                    translated = lexical_search(session, ids, other, depth, allowed_ids=allowed)
            t["lexical_ms"] = (time.perf_counter() - t1) * 1000
        if mode == SearchMode.HYBRID:
            scored = fuse(
                dense,
                lexical,
                k=depth,
                language_share=_language_share(rt, session, cols, query),
                literal=looks_literal(query),
                weights=w,
                translated=translated,
            )
        else:
            scored = (dense or lexical)[:depth]
        t2 = time.perf_counter()
        rows = None
        if w.verbatim and scored and verbatim_applies(query):
            # Every candidate's row, read once: for the verbatim check and for the hits.
            rows = _chunk_rows(session, [cid for cid, _ in scored])
            scored = verbatim_first(scored, query, {r.id: (r.question, r.text) for r in rows})
        scored = scored[: first + k]
        names = {c.id: c.name for c in cols}
        hits = _fold_duplicates(_load_hits(session, scored, names, rows=rows))[:first]
        t["fetch_ms"] = (time.perf_counter() - t2) * 1000
        name = col.name
        threshold = rt.embedders.spec(col.embedder).weak_match_threshold if dense else None
    notice = None
    reranked = False
    if reranker is not None and len(hits) > 1:
        t3 = time.perf_counter()
        order, notice = rerank_order(reranker, query, [_rerank_text(h) for h in hits])
        hits = [hits[i] for i in order]
        reranked = notice is None
        t["rerank_ms"] = (time.perf_counter() - t3) * 1000
    t["total_ms"] = (time.perf_counter() - t0) * 1000
    return SearchResult(
        query=query,
        collection=name,
        hits=hits[:k],
        timings=t,
        mode=mode,
        reranked=reranked,
        notice=notice and f"reranking is unavailable, results are in first-stage order: {notice}",
        best_similarity=best,
        weak_match=weak_match(len(hits), best, threshold),
        query_vector=qvec,
        collections=tuple(names.values()),
        skipped=skipped,
        sentence_vectors={
            h.chunk_id: sentences[h.chunk_id] for h in hits if h.chunk_id in sentences
        },
        sentences_read=frozenset(h.chunk_id for h in hits if h.chunk_id in read),
        collection_row=col,
    )


@contextmanager
def session_for(rt: Runtime, session: Session | None) -> Iterator[Session]:
    """The caller's session, or a new one closed afterwards."""
    if session is not None:
        yield session
        return
    with rt.sessions() as own:
        yield own


def searched_collections(
    rt: Runtime,
    session: Session,
    name: str | None,
    access: Access,
    *,
    every: Sequence[Collection] | None = None,
) -> tuple[list[Collection], tuple[str, ...]]:
    """The collections a search covers, the first one leading, and the names of those it
    leaves out.

    A named collection alone (as if it did not exist when ``access`` may not read it).
    Without a name: every readable collection whose embedding model (and query
    instruction) is the default collection's, or, when the user may not read that one,
    the first readable collection's; the others are skipped, since the scores of two
    models do not compare. ``every``: every collection, read in ``session`` already."""
    if name:
        col = rt.collection(session, name)
        if not access.can_read(col.id):
            raise CollectionNotFound("no collection named {name!r}", name=name)
        return [col], ()
    every = list(every) if every is not None else collections_service.list_all(session)
    default = rt.collection(session, loaded=every)
    if access.readable is None:
        readable = every if default in every else collections_service.list_all(session)
    else:
        readable = [c for c in every if access.can_read(c.id)]
    if not readable:
        raise CollectionNotFound("no collection to search: ask an administrator for access")
    lead = default if access.can_read(default.id) else readable[0]

    def model(c: Collection) -> tuple[str, str, int, str | None]:
        return (c.embedder, c.model, c.dim, c.query_instruction)

    same = [lead, *(c for c in readable if c.id != lead.id and model(c) == model(lead))]
    skipped = tuple(c.name for c in readable if model(c) != model(lead))
    return same, skipped


def _allowed(
    session: Session,
    index: CollectionIndex,
    facet: FacetFilter,
    allowed_by: dict[int, npt.NDArray[np.int64]],
) -> npt.NDArray[np.int64]:
    """The chunk ids of ``index`` passing ``facet``, worked out once per search."""
    cid = index.meta.collection_id
    if cid not in allowed_by:
        allowed_by[cid] = index.allowed_ids(session, facet)
    return allowed_by[cid]


def _term_views(
    rt: Runtime,
    session: Session,
    cols: Sequence[Collection],
    facet: FacetFilter | None,
    allowed_by: dict[int, npt.NDArray[np.int64]],
    synced: dict[int, CollectionIndex],
) -> list[tuple[TermView, npt.NDArray[np.int64] | None]] | None:
    """Each collection's in-memory lexical postings with the ids its filters allow, or
    None when one has none (small, or still being built): the database answers then."""
    views: list[tuple[TermView, npt.NDArray[np.int64] | None]] = []
    missing = False
    for col in cols:
        index = synced.get(col.id) or rt.indexes.get(session, col, current=True)
        view = rt.indexes.term_view(index)  # asks for a build when it is worth one
        if view is None:
            missing = True
            continue
        views.append((view, None if facet is None else _allowed(session, index, facet, allowed_by)))
    return None if missing else views


def _dense(
    rt: Runtime,
    session: Session,
    cols: list[Collection],
    query: str,
    facet: FacetFilter | None,
    allowed_by: dict[int, npt.NDArray[np.int64]],
    synced: dict[int, CollectionIndex],
    depth: int,
    t: dict[str, float],
    sentence_weight: float,
    sentences: dict[int, Vectors],
    read: set[int],
) -> tuple[list[tuple[int, float]], float | None, Vectors]:
    """The dense leg's (chunk id, score) list over every collection, best first (one
    model: cosines compare), and the best passage cosine (before the second stage blends
    in sentences, which would shift the weak-match threshold's scale).

    The candidates' stored sentence vectors go into ``sentences``, the ids read into
    ``read`` (those without an entry have none)."""
    lead = cols[0]
    for _attempt in range(2):
        t1 = time.perf_counter()
        qvec = _embed_query(rt, lead.embedder, query, lead.query_instruction)
        t2 = time.perf_counter()
        indexes = [rt.indexes.get(session, c, current=True) for c in cols]
        if all((ix.meta.model, ix.meta.dim) == (lead.model, len(qvec)) for ix in indexes):
            break
        # A collection switched models between reading it and syncing its index: read
        # them again and embed the query with the new model.
        session.expire_all()
        cols = [c for c in cols if (c.embedder, c.model) == (lead.embedder, lead.model)]
    else:
        raise SearchUnavailable("the collection is switching models; try again in a moment")
    synced.update((c.id, ix) for c, ix in zip(cols, indexes, strict=True))
    scored: list[tuple[int, float]] = []
    for index in indexes:
        allowed = None if facet is None else _allowed(session, index, facet, allowed_by)
        scored.extend(index.search(qvec, depth, allowed=allowed))
    if len(indexes) > 1:
        scored = sorted(scored, key=lambda cs: (-cs[1], cs[0]))[:depth]
    t["embed_ms"] = (t2 - t1) * 1000
    t["vector_ms"] = (time.perf_counter() - t2) * 1000
    best = scored[0][1] if scored else None
    if rt.embedders.get(lead.embedder).sentence_vectors and sentence_weight > 0 and scored:
        t3 = time.perf_counter()
        ids = [cid for cid, _ in scored]
        sentences.update(
            rt.indexes.stored_sentences(session, indexes, ids, model=lead.model, dim=len(qvec))
        )
        read.update(ids)
        scored = blend_sentences(scored, qvec, sentences, weight=sentence_weight)
        t["sentences_ms"] = (time.perf_counter() - t3) * 1000
    return scored, best, qvec


def _language_share(rt: Runtime, session: Session, cols: Sequence[Collection], query: str) -> float:
    """The share of the collection's chunks in the query's language (1.0 when the query's
    language cannot be told, e.g. only digits). A chunk's language is its own, or its
    document's for rows stored before chunks had one."""
    language = detect_language(query)
    if language is None:
        return 1.0
    total = matching = 0
    for col in cols:
        counts = language_counts(rt, session, col)
        total += sum(counts.values())
        matching += counts.get(language, 0)
    if total == 0:
        return 1.0
    return matching / total


def language_counts(rt: Runtime, session: Session, col: Collection) -> dict[str | None, int]:
    """The collection's ready chunks per language, counted once per collection version
    (every change of its documents bumps it) and kept in the runtime: the count reads
    every chunk's row, which a million-chunk collection must not do per query.

    From :data:`STALE_COUNTS_MIN_CHUNKS` chunks on, a change is counted in a background
    thread (at most every :data:`RECOUNT_MIN_INTERVAL_S`) while the previous counts serve:
    one ingest barely moves the shares, and the count (~17 ms at 100k chunks, linear)
    would otherwise land on the next search."""
    cached = rt.language_counts.get(col.id)
    if cached is not None and cached[0] == col.version:
        return cached[1]
    if cached is not None and sum(cached[1].values()) >= STALE_COUNTS_MIN_CHUNKS:
        _recount_in_background(rt, col.id, col.version)
        return cached[1]
    counts = _count_languages(session, col.id)
    rt.language_counts[col.id] = (col.version, counts)
    return counts


STALE_COUNTS_MIN_CHUNKS = 20_000
# ... and at most once a minute: during a bulk ingest every commit is a new version, and
# each count reads every chunk row (on the database server's cores, beside searches).
RECOUNT_MIN_INTERVAL_S = 60.0
_RECOUNT_LOCK = threading.Lock()
_RECOUNTING: set[tuple[int, int]] = set()
_RECOUNTED_AT: dict[tuple[int, int], float] = {}


def _recount_in_background(rt: Runtime, collection_id: int, version: int) -> None:
    key = (id(rt.language_counts), collection_id)
    now = time.monotonic()
    with _RECOUNT_LOCK:
        if key in _RECOUNTING or now - _RECOUNTED_AT.get(key, -1e18) < RECOUNT_MIN_INTERVAL_S:
            return
        _RECOUNTING.add(key)
        _RECOUNTED_AT[key] = now

    def recount() -> None:
        try:
            # Counted after ``version`` was read, so the counts cover at least it.
            with rt.sessions() as s:
                rt.language_counts[collection_id] = (version, _count_languages(s, collection_id))
        except Exception:  # the runtime closed meanwhile: the old counts stay
            log.debug("language recount of collection %d failed", collection_id, exc_info=True)
        finally:
            with _RECOUNT_LOCK:
                _RECOUNTING.discard(key)

    threading.Thread(target=recount, name="kb-language-counts", daemon=True).start()


def _count_languages(session: Session, collection_id: int) -> dict[str | None, int]:
    per_document = (
        select(Chunk.document_id, Chunk.language, func.count().label("n"))
        .where(Chunk.collection_id == collection_id)
        .group_by(Chunk.document_id, Chunk.language)
        .subquery()
    )
    chunk_language = func.coalesce(per_document.c.language, Document.language)
    rows = session.execute(
        select(chunk_language, func.sum(per_document.c.n))
        .join(Document, Document.id == per_document.c.document_id)
        .where(Document.status == DocumentStatus.READY)
        .group_by(chunk_language)
    ).all()
    return {lang: int(n or 0) for lang, n in rows}


def _fold_duplicates(hits: list[SearchHit]) -> list[SearchHit]:
    """Hits whose text is the same passage (whitespace and case aside) folded into the
    best-ranked one, which lists the others in ``duplicates``.

    Only exact copies are folded: the same FAQ pasted into two handbooks, a re-uploaded
    edition. Translations (the Chinese and English versions of a section) are kept apart:
    a reader may want the one in their language, and a similarity threshold loose enough
    to pair translations would also fold distinct answers to similar questions.
    """
    out: list[SearchHit] = []
    first_of: dict[str, int] = {}
    for hit in hits:
        key = " ".join(hit.text.split()).casefold()
        if key in first_of:
            i = first_of[key]
            copy = (hit.document_id, hit.file, hit.chunk_id)
            out[i] = replace(out[i], duplicates=(*out[i].duplicates, copy))
        else:
            first_of[key] = len(out)
            out.append(hit)
    return out


def _rerank_text(hit: SearchHit) -> str:
    # The heading path tells the reranker what the passage is about, as it does the
    # embedder.
    return embed_text_for(hit.heading_path, hit.text)


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


def facet_filter(filters: SearchFilters) -> FacetFilter:
    """The filters as the vector index's facet arrays answer them (the same meaning as
    :func:`allowed_chunks`, without SQL on the query path)."""
    return FacetFilter(
        doc_type=filters.doc_type,
        language=filters.language,
        document_id=filters.document_id,
        tags=filters.tags,
        kind=filters.kind,
    )


def _hit_rows(*, postgres: bool) -> Select[Any]:
    """The columns a hit shows of the chunks ``:ids`` and their documents: enabled chunks
    of ready documents only. Only those columns: whole ORM rows would carry each chunk's
    vectors and terms, and each document's tags in a further query. Core columns, built
    once: the ORM's statement building and row handling cost twice the read itself."""
    chunk, doc = Chunk.__table__.c, Document.__table__.c
    return (
        select(
            chunk.id,
            chunk.document_id,
            chunk.collection_id,
            chunk.language,
            chunk.heading_path,
            chunk.text,
            chunk.page_start,
            chunk.page_end,
            chunk.kind,
            chunk.question,
            doc.filename,
            doc.title,
            doc.doc_type,
            doc.language.label("document_language"),
        )
        .join(Document.__table__, doc.id == chunk.document_id)
        .where(
            ids_param(chunk.id, postgres=postgres),
            chunk.disabled.is_(False),
            # Compared as an expression, so no index of it is usable: without planner
            # statistics SQLite would start from the status index and walk every ready
            # document's chunks instead of looking the ids up.
            doc.status.concat("") == DocumentStatus.READY.value,
        )
    )


_HIT_ROWS = {postgres: _hit_rows(postgres=postgres) for postgres in (False, True)}


def _chunk_rows(session: Session, ids: Sequence[int]) -> list[Any]:
    """The rows of :func:`_hit_rows` for ``ids``."""
    postgres = session.get_bind().dialect.name == "postgresql"
    return list(session.connection().execute(_HIT_ROWS[postgres], {"ids": list(ids)}).all())


def _load_hits(
    session: Session,
    scored: list[tuple[int, float]],
    names: dict[int, str],
    *,
    rows: Sequence[Any] | None = None,
) -> list[SearchHit]:
    """The hits of ``scored`` that are chunks of ready documents in the searched
    collections (``names``, by id): a chunk of any other collection is never shown, nor
    a disabled one (the index may not have synced yet). ``rows``: the chunks' rows
    (:func:`_chunk_rows`) when the caller read them already."""
    if not scored:
        return []
    if rows is None:
        rows = _chunk_rows(session, [cid for cid, _ in scored])
    by_id = {r.id: r for r in rows if r.collection_id in names}
    hits = []
    for cid, score in scored:
        chunk = by_id.get(cid)
        if chunk is None:  # deleted since the index was synced
            continue
        hits.append(
            SearchHit(
                chunk_id=chunk.id,
                document_id=chunk.document_id,
                file=chunk.filename,
                title=display_title(chunk.title, chunk.filename),
                doc_type=chunk.doc_type,
                language=chunk.language or chunk.document_language,
                heading_path=list(chunk.heading_path or []),
                text=chunk.text,
                page_start=chunk.page_start,
                page_end=chunk.page_end,
                score=score,
                kind=chunk.kind,
                question=chunk.question,
                collection=names[chunk.collection_id],
            )
        )
    return hits
