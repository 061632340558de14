"""Move a collection to another embedding model without downtime.

The job fills ``chunks.next_vector`` from the new model in batches while search keeps
answering from ``chunks.vector`` with the old one. Documents ingested meanwhile still get
old-model vectors and are picked up by the next pass. When no chunk lacks a new vector,
one transaction copies the new vectors over the old, records the new model on the
collection and bumps its version: every serving process then rebuilds its index for the
new model, and the old vectors are gone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import func, select, update

from app.collections.models import Collection
from app.collections.service import bump_version, cancel_reembed
from app.db import transaction
from app.documents.models import Chunk
from app.embedding.base import EmbedderError
from app.jobs import service as jobs
from app.jobs.models import Job
from app.runtime import Runtime
from app.vectors.index import vector_to_bytes
from ingest.types import embed_text_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReembedOutcome:
    collection_id: int
    status: str  # "switched", "retrying", "failed", "cancelled"
    reembedded: int = 0
    error: str | None = None


def _pending(rt: Runtime, collection_id: int) -> int:
    with rt.sessions() as s:
        return int(
            s.scalar(
                select(func.count(Chunk.id)).where(
                    Chunk.collection_id == collection_id, Chunk.next_vector.is_(None)
                )
            )
            or 0
        )


def reembed_batch(rt: Runtime, collection_id: int, *, batch: int) -> int:
    """Give up to ``batch`` chunks their new-model vector; returns how many were done."""
    with rt.sessions() as s:
        col = s.get_one(Collection, collection_id)
        if col.next_embedder is None or col.next_dim is None:
            return 0
        target, dim = col.next_embedder, col.next_dim
        rows = s.execute(
            select(Chunk.id, Chunk.heading_path, Chunk.text)
            .where(Chunk.collection_id == collection_id, Chunk.next_vector.is_(None))
            .order_by(Chunk.id)
            .limit(batch)
        ).all()
    if not rows:
        return 0
    embedder = rt.embedders.get(target)
    vectors = embedder.embed_documents([embed_text_for(hp or [], text) for _, hp, text in rows])
    if vectors.shape[1] != dim:
        raise EmbedderError(f"the new model returned {vectors.shape[1]} dimensions, not {dim}")
    with transaction(rt.sessions) as s:
        for (chunk_id, _, _), vec in zip(rows, vectors, strict=True):
            s.execute(
                update(Chunk)
                .where(Chunk.id == chunk_id)
                .values(next_vector=vector_to_bytes(vec))
                .execution_options(synchronize_session=False)
            )
    return len(rows)


def try_switch(rt: Runtime, collection_id: int) -> bool:
    """Switch to the new model if every chunk has its new vector (one transaction)."""
    with transaction(rt.sessions) as s:
        query = select(Collection).where(Collection.id == collection_id)
        if s.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()  # ingest's final transaction waits for us
        col = s.scalars(query).one()
        if col.next_embedder is None or col.next_model is None or col.next_dim is None:
            return False
        missing = s.scalar(
            select(func.count(Chunk.id)).where(
                Chunk.collection_id == collection_id, Chunk.next_vector.is_(None)
            )
        )
        if missing:
            return False
        s.execute(
            update(Chunk)
            .where(Chunk.collection_id == collection_id)
            .values(vector=Chunk.next_vector, next_vector=None)
            .execution_options(synchronize_session=False)
        )
        col.embedder, col.model, col.dim = col.next_embedder, col.next_model, col.next_dim
        col.query_instruction = rt.embedders.spec(col.embedder).query_instruction
        col.next_embedder = col.next_model = col.next_dim = None
        bump_version(s, collection_id)
    return True


def run_reembed(rt: Runtime, job: Job, *, worker_id: str) -> ReembedOutcome:
    """Re-embed the whole collection, then switch; transient errors requeue the job."""
    collection_id = int(job.payload["collection_id"])
    batch = max(1, rt.settings.embed_batch_size) * 4
    done = 0
    try:
        for _ in range(10_000):  # bounded: documents may keep arriving while we work
            left = _pending(rt, collection_id)
            if left == 0 and try_switch(rt, collection_id):
                with transaction(rt.sessions) as s:
                    j = s.get(Job, job.id)
                    if j is not None:
                        jobs.finish(s, j, message=f"switched after re-embedding {done} chunks")
                return ReembedOutcome(collection_id, "switched", done)
            n = reembed_batch(rt, collection_id, batch=batch)
            if n == 0 and left == 0:
                with transaction(rt.sessions) as s:  # nothing to move to: cancelled meanwhile
                    j = s.get(Job, job.id)
                    if j is not None:
                        jobs.finish(s, j, message="no model change pending")
                return ReembedOutcome(collection_id, "cancelled", done)
            done += n
            with transaction(rt.sessions) as s:
                jobs.heartbeat(
                    s,
                    job_id=job.id,
                    worker_id=worker_id,
                    lease_s=rt.settings.job_lease_seconds,
                    progress=done / max(done + left - n, 1),
                    message=f"re-embedded {done} chunks, {max(left - n, 0)} to go",
                )
        raise EmbedderError("re-embedding did not converge: documents keep arriving")
    except jobs.LeaseLost:
        return ReembedOutcome(collection_id, "cancelled", done)
    except Exception as exc:  # transient (the new model's server away): retry later
        log.exception("re-embedding collection %s failed; will retry", collection_id)
        with transaction(rt.sessions) as s:
            j = s.get(Job, job.id)
            if j is None:
                return ReembedOutcome(collection_id, "cancelled", done)
            retrying = jobs.retry_later(s, j, reason=f"{type(exc).__name__}: {exc}")
            col = s.get(Collection, collection_id)
            if not retrying and col is not None:
                cancel_reembed(s, col)  # gave up: the collection stays on its model
        return ReembedOutcome(collection_id, "retrying" if retrying else "failed", done, str(exc))
