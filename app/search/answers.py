"""Question answering without an LLM: inside each passage, the sentence(s) closest to the
question in meaning, as character offsets (the Ask page highlights them; the API returns
them so any client can). And each hit's snippet: its best sentences, query terms marked,
or, where no term occurs (a cross-lingual hit), the sentence closest in meaning."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from app.embedding.base import Embedder, EmbedderError, Vectors
from app.runtime import Runtime
from app.search.service import SearchHit, SearchResult, SearchUnavailable, session_for
from app.text.highlight import highlight_spans, highlight_terms
from app.text.plain import plain_passage
from app.text.sentences import best_sentences, split_sentences
from app.text.snippets import SNIPPET_CHARS, best_snippet
from app.vectors.sentence_file import stored_sentences

log = logging.getLogger(__name__)

Span = tuple[int, int]
# Sentences of one passage embedded to find the one closest to the query (a bound on the
# work a long passage can cause on the Search page; a chunk rarely has more).
MAX_SENTENCES = 64


@dataclass(frozen=True, slots=True)
class AnswerSpan:
    """A sentence of a hit's ``text``: ``text[start:end]``, with its cosine to the question."""

    start: int
    end: int
    score: float


@dataclass(frozen=True, slots=True)
class Snippet:
    """A short plain-text excerpt of a hit; ``text[start:end]`` for each highlight."""

    text: str
    highlights: list[Span]


def answer_spans(
    rt: Runtime,
    result: SearchResult,
    *,
    top: int = 2,
    session: Session | None = None,
    texts: Sequence[str] | None = None,
) -> list[list[AnswerSpan]]:
    """For each hit of ``result``, its best answering sentences in text order.

    Offsets are into each hit's ``text``, or into ``texts`` (one per hit: the passages
    as shown, see :func:`plain_texts`) when given.
    Sentences are split with CJK punctuation in mind and embedded with the collection's
    own embedder, the question with its query instruction, so the two are comparable.
    On a weak match no sentence is picked: the closest passages do not answer the question.
    """
    if not result.hits:
        return []
    if result.weak_match:
        return [[] for _ in result.hits]
    with session_for(rt, session) as s:
        # Stored sentence vectors are of the plain passages: of use only for ``texts``.
        embedder, instruction, stored = _context(rt, s, result, stored=texts is not None)
    try:
        return closest_sentences(
            embedder,
            instruction,
            result.query,
            list(texts) if texts is not None else [h.text for h in result.hits],
            top=top,
            stored=stored,
            query_vector=result.query_vector,
        )
    except EmbedderError as exc:
        raise SearchUnavailable(
            f"answers are unavailable: the embedding server does not answer ({exc})"
        ) from exc


def _context(
    rt: Runtime, session: Session, result: SearchResult, *, stored: bool
) -> tuple[Embedder, str | None, list[Vectors | None]]:
    """The collection's embedder, its query instruction and, when ``stored``, each hit's
    sentence vectors stored at ingest (None where there are none)."""
    col = result.collection_row
    if col is None or col.name != result.collection:
        col = rt.collection(session, result.collection)
    embedder = rt.embedders.get(col.embedder)
    vectors: list[Vectors | None] = []
    if stored and embedder.sentence_vectors:
        ids = [h.chunk_id for h in result.hits]
        # What the search's second stage read already, then the rest (lexical-only hits).
        found = {c: v for c, v in result.sentence_vectors.items() if v.shape[1] == col.dim}
        missing = [cid for cid in ids if cid not in result.sentences_read]
        if missing:
            found.update(stored_sentences(session, missing, model=col.model, dim=col.dim))
        vectors = [found.get(cid) for cid in ids]
    return embedder, col.query_instruction, vectors


def closest_sentences(
    embedder: Embedder,
    instruction: str | None,
    query: str,
    texts: Sequence[str | None],
    *,
    top: int,
    max_sentences: int | None = None,
    stored: Sequence[Vectors | None] = (),
    query_vector: Vectors | None = None,
) -> list[list[AnswerSpan]]:
    """For each text, its sentence(s) closest to ``query`` in meaning; ``None`` is skipped.

    ``stored``: per text, the vectors of its sentences computed at ingest (see
    :func:`app.vectors.sentence_file.stored_sentences`), used when they are one per sentence;
    the other texts' sentences are embedded here, in one call. ``query_vector``: the
    query's embedding when the search made one. Raises EmbedderError.
    """
    all_spans = [split_sentences(t) if t else [] for t in texts]
    padded = [*stored, *([None] * (len(texts) - len(stored)))]
    usable = [
        v if v is not None and v.shape[0] == len(spans) else None
        for v, spans in zip(padded, all_spans, strict=True)
    ]
    all_spans = [spans[:max_sentences] for spans in all_spans]
    todo = [
        t[a:b]
        for t, spans, v in zip(texts, all_spans, usable, strict=True)
        if t and v is None
        for a, b in spans
    ]
    if not any(all_spans):
        return [[] for _ in texts]
    question = (
        query_vector
        if query_vector is not None
        else embedder.embed_queries([query], instruction=instruction)[0]
    )
    fresh = embedder.embed_documents(todo) if todo else np.zeros((0, embedder.dim), np.float32)
    out: list[list[AnswerSpan]] = []
    offset = 0
    for spans, v in zip(all_spans, usable, strict=True):
        if v is None:
            vectors = fresh[offset : offset + len(spans)]
            offset += len(spans)
        else:
            vectors = v[: len(spans)]
        picked = best_sentences(question, vectors, spans, top=top) if spans else []
        out.append([AnswerSpan(a, b, score) for a, b, score in picked])
    return out


def plain_texts(hits: Sequence[SearchHit]) -> list[str]:
    """Each hit's passage as a person reads it (Markdown rendered as plain text)."""
    return [plain_passage(h.text, h.doc_type) for h in hits]


def passage_marks(
    embedder: Embedder | None,
    instruction: str | None,
    query: str,
    texts: Sequence[str],
    *,
    weak_match: bool,
    stored: Sequence[Vectors | None] = (),
    query_vector: Vectors | None = None,
) -> list[list[Span]]:
    """What to highlight in each passage: where the query's terms occur; in a passage
    with none of them (a cross-lingual hit), the sentence closest to the query in meaning.

    Only passages without a term are embedded, so the Search page stays fast; on a weak
    match, or without an embedder (or when it fails), they get no highlight.
    ``stored``: the texts' sentence vectors from ingest, where there are any (see
    :func:`closest_sentences`).
    """
    terms = highlight_terms(query)
    marks = [highlight_spans(t, terms) for t in texts]
    missing = [None if m or not t.strip() else t for t, m in zip(texts, marks, strict=True)]
    if embedder is None or weak_match or not any(missing):
        return marks
    try:
        picked = closest_sentences(
            embedder,
            instruction,
            query,
            missing,
            top=1,
            max_sentences=MAX_SENTENCES,
            stored=stored,
            query_vector=query_vector,
        )
    except EmbedderError as exc:
        log.warning("no sentence highlights: the embedder failed (%s)", exc)
        return marks
    # A sentence that is merely the least unrelated one is no match: below the embedder's
    # weak-match threshold it is not marked (the passage then shows unmarked).
    floor = embedder.weak_match_threshold if embedder.weak_match_threshold is not None else -1.0
    return [
        m or [(a.start, a.end) for a in p if a.score >= floor]
        for m, p in zip(marks, picked, strict=True)
    ]


def hit_snippets(
    rt: Runtime,
    result: SearchResult,
    *,
    session: Session | None = None,
    texts: Sequence[str] | None = None,
    max_chars: int = SNIPPET_CHARS,
) -> list[Snippet]:
    """Each hit's snippet (see :func:`passage_marks` for what is highlighted) of its plain
    passage (``texts``, else :func:`plain_texts` of the hits)."""
    if not result.hits:
        return []
    plain = list(texts) if texts is not None else plain_texts(result.hits)
    embedder: Embedder | None = None
    instruction: str | None = None
    stored: list[Vectors | None] = []
    if not result.weak_match:
        try:
            with session_for(rt, session) as s:
                embedder, instruction, stored = _context(rt, s, result, stored=True)
        except EmbedderError as exc:
            log.warning("no sentence highlights: no embedder (%s)", exc)
    marks = passage_marks(
        embedder,
        instruction,
        result.query,
        plain,
        weak_match=result.weak_match,
        stored=stored,
        query_vector=result.query_vector,
    )
    out = []
    for text, spans in zip(plain, marks, strict=True):
        body, shifted = best_snippet(text, spans, max_chars=max_chars)
        out.append(Snippet(body, shifted))
    return out
