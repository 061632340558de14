"""Sentence vectors for the search's second stage (app/search/rescore.py).

Each chunk's passage as people read it (``app.text.plain.plain_passage``: Markdown
rendered as text) is split as the Ask page and the snippets split it
(``app.text.sentences``), and every sentence is embedded on its own with the
collection's model; the vectors of one chunk are stored together in one
``chunk_sentences`` row, in that order, so the pages can reuse them. Only embedders that ask for it
(``Embedder.sentence_vectors``) pay for this.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.documents.models import Chunk, ChunkSentences
from app.embedding.base import Embedder
from app.text.sentences import split_sentences
from app.vectors.index import vector_to_bytes


def known_sentence_vectors(
    session: Session, collection_id: int, model: str, hashes: set[str]
) -> dict[str, bytes]:
    """Sentence vectors already stored in this collection for identical chunk texts
    (same content hash, same model), so a re-upload embeds nothing twice."""
    found: dict[str, bytes] = {}
    wanted = sorted(hashes)
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(Chunk.content_hash, ChunkSentences.vectors)
            .join(ChunkSentences, ChunkSentences.chunk_id == Chunk.id)
            .where(
                Chunk.collection_id == collection_id,
                Chunk.content_hash.in_(wanted[start : start + 500]),
                ChunkSentences.model == model,
            )
        ).all()
        found.update({h: v for h, v in rows})
    return found


def embed_sentences(
    embedder: Embedder,
    texts: Sequence[str],
    hashes: Sequence[str],
    *,
    batch_size: int,
    known: dict[str, bytes],
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[bytes, ...]:
    """For each passage (plain text, one per chunk), its sentences' vectors as one float16
    blob (b"" for a text with no sentence), reusing ``known`` (content hash -> blob)."""
    out: list[bytes] = [known.get(h, b"") for h in hashes]
    owners: list[int] = []
    sentences: list[str] = []
    for i, (text, h) in enumerate(zip(texts, hashes, strict=True)):
        if h in known:
            continue
        for a, b in split_sentences(text):
            owners.append(i)
            sentences.append(text[a:b])
    if not sentences:
        return tuple(out)
    vectors = np.zeros((len(sentences), embedder.dim), dtype=np.float32)
    for start in range(0, len(sentences), batch_size):
        batch = sentences[start : start + batch_size]
        got = embedder.embed_documents(batch)
        if got.shape != (len(batch), embedder.dim):
            raise RuntimeError(
                f"embedder returned shape {got.shape}, expected {(len(batch), embedder.dim)}"
            )
        vectors[start : start + len(batch)] = got
        if on_batch is not None:
            on_batch(min(start + batch_size, len(sentences)), len(sentences))
    owner_array = np.asarray(owners)
    for i in sorted(set(owners)):
        out[i] = vector_to_bytes(vectors[owner_array == i])
    return tuple(out)
