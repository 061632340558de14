"""Move a collection to another embedding model without downtime.

The job fills ``chunks.next_vector`` from the new model in batches while search keeps
answering from ``chunks.vector`` with the old one. Documents ingested meanwhile still get
old-model vectors and are picked up by the next pass. When no chunk lacks a new vector,
one transaction copies the new vectors over the old, records the new model on the
collection and bumps its version: every serving process then rebuilds its index for the
new model, and the old vectors are gone.

The states and transitions of the switch are app/collections/model_switch.py's; this is
the job that drives them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app import lifecycle
from app.collections import model_switch
from app.collections.models import Collection
from app.db import transaction
from app.embedding.base import EmbedderError
from app.jobs import service as jobs
from app.jobs.models import Job
from app.lifecycle import Outcome
from app.runtime import Runtime
from app.text.embed import embed_text_for
from app.text.plain import plain_passage
from app.vectors.index import vector_to_bytes
from ingest.sentences import embed_sentences

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReembedOutcome:
    collection_id: int
    status: Outcome  # SWITCHED, RETRYING, FAILED or CANCELLED
    reembedded: int = 0
    error: str | None = None


def _pending(rt: Runtime, collection_id: int) -> int:
    with rt.sessions() as s:
        return model_switch.pending(s, collection_id)


def reembed_batch(rt: Runtime, collection_id: int, *, batch: int) -> int:
    """Give up to ``batch`` chunks their new-model vector; returns how many were done."""
    with rt.sessions() as s:
        todo = model_switch.next_batch(s, collection_id, limit=batch)
    if todo is None or not todo.rows:
        return 0
    embedder = rt.embedders.get(todo.embedder)
    vectors = embedder.embed_documents(
        [embed_text_for(hp or [], text) for _, hp, text, _ in todo.rows]
    )
    if vectors.shape[1] != todo.dim:
        raise EmbedderError(f"the new model returned {vectors.shape[1]} dimensions, not {todo.dim}")
    sentences: tuple[bytes, ...] = ()
    if embedder.sentence_vectors:
        texts = [plain_passage(text, doc_type) for _, _, text, doc_type in todo.rows]
        ids = [str(chunk_id) for chunk_id, *_ in todo.rows]
        sentences = embed_sentences(embedder, texts, ids, batch_size=batch, known={})
    with transaction(rt.sessions) as s:
        model_switch.store_next_vectors(
            s,
            [
                (chunk_id, vector_to_bytes(vec))
                for (chunk_id, *_), vec in zip(todo.rows, vectors, strict=True)
            ],
        )
        if sentences:
            model_switch.store_next_sentences(
                s,
                todo.model,
                [
                    (chunk_id, blob)
                    for (chunk_id, *_), blob in zip(todo.rows, sentences, strict=True)
                ],
            )
    return len(todo.rows)


def try_switch(rt: Runtime, collection_id: int) -> bool:
    """Switch to the new model if every chunk has its new vector (one transaction)."""
    with transaction(rt.sessions) as s:
        return model_switch.switch(
            s,
            collection_id,
            query_instruction=lambda name: rt.embedders.spec(name).query_instruction,
        )


def _finish(rt: Runtime, job_id: int, message: str) -> None:
    with transaction(rt.sessions) as s:
        j = s.get(Job, job_id)
        if j is not None:
            lifecycle.finish_job(j, message=message)


def run_reembed(rt: Runtime, job: Job, *, worker_id: str) -> ReembedOutcome:
    """Re-embed the whole collection, then switch; transient errors requeue the job."""
    collection_id = int(job.payload["collection_id"])
    batch = max(1, rt.settings.embed_batch_size) * 4
    done = 0
    try:
        for _ in range(10_000):  # bounded: documents may keep arriving while we work
            left = _pending(rt, collection_id)
            if left == 0 and try_switch(rt, collection_id):
                _finish(rt, job.id, f"switched after re-embedding {done} chunks")
                return ReembedOutcome(collection_id, Outcome.SWITCHED, done)
            n = reembed_batch(rt, collection_id, batch=batch)
            if n == 0 and left == 0:  # nothing to move to: cancelled meanwhile
                _finish(rt, job.id, "no model change pending")
                return ReembedOutcome(collection_id, Outcome.CANCELLED, done)
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
        return ReembedOutcome(collection_id, Outcome.CANCELLED, done)
    except Exception as exc:  # transient (the new model's server away): retry later
        log.exception("re-embedding collection %s failed; will retry", collection_id)
        with transaction(rt.sessions) as s:
            j = s.get(Job, job.id)
            if j is None:
                return ReembedOutcome(collection_id, Outcome.CANCELLED, done)
            retrying = lifecycle.retry_job_later(j, reason=f"{type(exc).__name__}: {exc}")
            col = s.get(Collection, collection_id)
            if not retrying and col is not None:
                model_switch.cancel_reembed(s, col)  # gave up: the collection stays on its model
        status = Outcome.RETRYING if retrying else Outcome.FAILED
        return ReembedOutcome(collection_id, status, done, str(exc))
