"""Moving a collection to another embedding model: the one owner of the protocol.

A collection is always in one of two states: *serving* its model (``next_*`` NULL), or
*switching* to ``next_*`` while it keeps serving the current one. The transitions::

    serving   --start_reembed-->  switching   chunks' next_vector cleared, a reembed job queued
    switching --store_next_vectors-->         chunks get their new-model vector, in batches
    switching --switch-->         serving     (new model) one transaction: next_vector -> vector,
                                              the new model recorded, the version bumped
    switching --cancel_reembed--> serving     (old model) next_vector dropped

What the others rely on:

- ingest embeds with the current model and, in its final transaction, calls
  :func:`ensure_unchanged`; on PostgreSQL that transaction and :func:`switch` lock the
  collection row, so a document is never stored with vectors of a model just left
  (it raises :class:`ModelChanged` and the document is embedded again);
- the version bump makes every serving process rebuild its FAISS index for the new model
  (app/vectors/index.py: an index whose model differs from the collection's is rebuilt);
- search embeds the query with the collection's model and refuses (SearchUnavailable)
  while its index does not follow that model yet (app/search/service.py).

The caller owns the transaction; the re-embed job itself (batches through the new
model's embedder, the job's retries) is ingest/reembed.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.collections.models import Collection
from app.collections.service import CollectionError, bump_version
from app.documents.models import Chunk, ChunkSentences, Document
from app.embedding.registry import EmbedderSpec
from app.jobs import service as jobs
from app.jobs.models import Job, JobKind


class ReembedInProgress(CollectionError):
    """The collection is already moving to another model."""


class ModelChanged(RuntimeError):
    """The collection switched models while this document was embedded: embed it again."""


@dataclass(frozen=True)
class Batch:
    """Chunks still lacking their new-model vector, and the model to embed them with."""

    embedder: str
    model: str
    dim: int
    rows: tuple[tuple[int, list[str], str, str], ...]  # chunk id, heading path, text, doc type


def start_reembed(session: Session, collection: Collection, *, spec: EmbedderSpec) -> Job:
    """Begin moving ``collection`` to ``spec``'s model: a background job re-embeds every
    chunk while search keeps using the current vectors (flushed, not committed)."""
    if collection.next_embedder is not None:
        raise ReembedInProgress(
            f"{collection.name!r} is already being re-embedded with {collection.next_model}"
        )
    if (spec.name, spec.model, spec.dim) == (collection.embedder, collection.model, collection.dim):
        raise CollectionError(
            f"{collection.name!r} already uses {spec.model} ({spec.dim} dimensions)"
        )
    collection.next_embedder, collection.next_model, collection.next_dim = (
        spec.name,
        spec.model,
        spec.dim,
    )
    _clear_next_vectors(session, collection.id)
    return jobs.enqueue(session, kind=JobKind.REEMBED, payload={"collection_id": collection.id})


def cancel_reembed(session: Session, collection: Collection) -> None:
    """Stay on the current model and drop any new-model vectors made so far."""
    collection.next_embedder = collection.next_model = collection.next_dim = None
    _clear_next_vectors(session, collection.id)
    _drop_sentences_except(session, collection.id, collection.model)


def _clear_next_vectors(session: Session, collection_id: int) -> None:
    session.execute(
        update(Chunk)
        .where(Chunk.collection_id == collection_id)
        .values(next_vector=None)
        .execution_options(synchronize_session=False)
    )


def pending(session: Session, collection_id: int) -> int:
    """How many chunks still lack their new-model vector."""
    return int(
        session.scalar(
            select(func.count(Chunk.id)).where(
                Chunk.collection_id == collection_id, Chunk.next_vector.is_(None)
            )
        )
        or 0
    )


def next_batch(session: Session, collection_id: int, *, limit: int) -> Batch | None:
    """Up to ``limit`` chunks to re-embed; None when no switch is under way."""
    col = session.get_one(Collection, collection_id)
    if col.next_embedder is None or col.next_model is None or col.next_dim is None:
        return None
    rows = session.execute(
        select(Chunk.id, Chunk.heading_path, Chunk.text, Document.doc_type)
        .join(Document, Document.id == Chunk.document_id)
        .where(Chunk.collection_id == collection_id, Chunk.next_vector.is_(None))
        .order_by(Chunk.id)
        .limit(limit)
    ).all()
    return Batch(
        col.next_embedder,
        col.next_model,
        col.next_dim,
        tuple((i, hp, t, dt) for i, hp, t, dt in rows),
    )


def store_next_vectors(session: Session, vectors: Sequence[tuple[int, bytes]]) -> None:
    """Record new-model vectors (chunk id, vector bytes); search still uses the old ones."""
    for chunk_id, blob in vectors:
        session.execute(
            update(Chunk)
            .where(Chunk.id == chunk_id)
            .values(next_vector=blob)
            .execution_options(synchronize_session=False)
        )


def store_next_sentences(session: Session, model: str, blobs: Sequence[tuple[int, bytes]]) -> None:
    """Record new-model sentence vectors (chunk id, blob); search reads them only once
    the collection has switched to ``model``."""
    ids = [chunk_id for chunk_id, _ in blobs]
    session.execute(
        delete(ChunkSentences).where(
            ChunkSentences.chunk_id.in_(ids), ChunkSentences.model == model
        )
    )
    session.add_all(
        ChunkSentences(chunk_id=chunk_id, model=model, vectors=blob)
        for chunk_id, blob in blobs
        if blob
    )


def _drop_sentences_except(session: Session, collection_id: int, model: str) -> None:
    """Drop the collection's sentence vectors of any model but ``model``."""
    session.execute(
        delete(ChunkSentences).where(
            ChunkSentences.model != model,
            ChunkSentences.chunk_id.in_(
                select(Chunk.id).where(Chunk.collection_id == collection_id)
            ),
        )
    )


def _locked(session: Session, collection_id: int) -> Collection:
    """The collection row, locked on PostgreSQL: ingest's final transaction and the
    switch wait for each other."""
    query = select(Collection).where(Collection.id == collection_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.scalars(query).one()


def switch(
    session: Session,
    collection_id: int,
    *,
    query_instruction: Callable[[str], str | None],
) -> bool:
    """Switch to the new model if every chunk has its new vector.

    ``query_instruction`` gives the new embedder's query instruction by its name.
    """
    col = _locked(session, collection_id)
    if col.next_embedder is None or col.next_model is None or col.next_dim is None:
        return False
    if pending(session, collection_id):
        return False
    session.execute(
        update(Chunk)
        .where(Chunk.collection_id == collection_id)
        .values(vector=Chunk.next_vector, next_vector=None)
        .execution_options(synchronize_session=False)
    )
    col.embedder, col.model, col.dim = col.next_embedder, col.next_model, col.next_dim
    _drop_sentences_except(session, collection_id, col.model)
    col.query_instruction = query_instruction(col.embedder)
    col.next_embedder = col.next_model = col.next_dim = None
    bump_version(session, collection_id)
    return True


def ensure_unchanged(
    session: Session, collection_id: int, *, embedder: str, model: str, dim: int
) -> None:
    """Raise ModelChanged unless the collection still uses the model a document was
    embedded with (in the transaction that stores the document's vectors)."""
    col = _locked(session, collection_id)
    if (col.embedder, col.model, col.dim) != (embedder, model, dim):
        raise ModelChanged(f"the collection moved to {col.model} while this file was embedded")
