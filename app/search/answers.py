"""Question answering without an LLM: inside each passage, the sentence(s) closest to the
question in meaning, as character offsets (the Ask page highlights them; the API returns
them so any client can)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.embedding.base import EmbedderError
from app.runtime import Runtime
from app.search.service import SearchResult, SearchUnavailable, session_for
from app.text.sentences import best_sentences, split_sentences


@dataclass(frozen=True, slots=True)
class AnswerSpan:
    """A sentence of a hit's ``text``: ``text[start:end]``, with its cosine to the question."""

    start: int
    end: int
    score: float


def answer_spans(
    rt: Runtime, result: SearchResult, *, top: int = 2, session: Session | None = None
) -> list[list[AnswerSpan]]:
    """For each hit of ``result``, its best answering sentences in text order.

    Sentences are split with CJK punctuation in mind and embedded with the collection's
    own embedder, the question with its query instruction, so the two are comparable.
    On a weak match no sentence is picked: the closest passages do not answer the question.
    """
    if not result.hits:
        return []
    if result.weak_match:
        return [[] for _ in result.hits]
    with session_for(rt, session) as s:
        col = rt.collection(s, result.collection)
        embedder, instruction = rt.embedders.get(col.embedder), col.query_instruction
    all_spans = [split_sentences(h.text) for h in result.hits]
    sentences = [
        h.text[a:b] for h, spans in zip(result.hits, all_spans, strict=True) for a, b in spans
    ]
    if not sentences:
        return [[] for _ in result.hits]
    try:
        question = embedder.embed_queries([result.query], instruction=instruction)[0]
        vectors = embedder.embed_documents(sentences)
    except EmbedderError as exc:
        raise SearchUnavailable(
            f"answers are unavailable: the embedding server does not answer ({exc})"
        ) from exc
    out: list[list[AnswerSpan]] = []
    offset = 0
    for spans in all_spans:
        picked = best_sentences(question, vectors[offset : offset + len(spans)], spans, top=top)
        offset += len(spans)
        out.append([AnswerSpan(a, b, score) for a, b, score in picked])
    return out
