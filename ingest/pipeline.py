"""Run one ingest job: parse -> chunk -> embed -> store, with progress and clear failures.

A document becomes visible to search only in the final transaction, which writes all
its chunks, marks it ready and bumps the collection's version together.

An outage of the database or the disk (a PostgreSQL restart, a full disk) is waited out:
writes that only inform (progress) are skipped, the writes that matter are retried with
backoff for up to half a lease while the heartbeat keeps the job ours, and a job that
still cannot finish goes back to the queue with the reason and the time of its next try.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app import outages
from app.collections.models import Collection
from app.collections.service import bump_version
from app.db import transaction, utcnow
from app.documents.models import DOCUMENT_TAG, Document, DocumentStatus, DocumentTag
from app.documents.models import Chunk as ChunkRow
from app.documents.service import original_path
from app.embedding.base import Embedder, EmbedderInputError, Vectors
from app.embedding.registry import EmbedderSpec, ensure_same_model
from app.jobs import service as jobs
from app.jobs.models import Job, JobStatus
from app.runtime import Runtime
from app.search.lexical import index_text
from app.text.tags import tag_identity
from app.vectors.index import bytes_to_vectors, vector_to_bytes
from ingest.chunk import chunk as chunk_document
from ingest.errors import IngestError
from ingest.language import detect_language
from ingest.sandbox import parse_isolated
from ingest.types import Chunk, ParsedDocument

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class StageTimes:
    """Seconds spent in each stage of one document (for benchmarks and logs)."""

    parse: float = 0.0
    chunk: float = 0.0
    embed: float = 0.0
    store: float = 0.0
    embedded: int = 0
    reused: int = 0


@dataclass(frozen=True)
class IngestOutcome:
    document_id: int
    status: str
    chunks: int = 0
    pages: int | None = None
    error: str | None = None
    times: StageTimes = field(default_factory=StageTimes)
    # "waiting" (an outage requeued the job): seconds until its next try; the worker
    # pauses as long, since every job would meet the same full disk or absent database.
    retry_in: float | None = None


Progress = Callable[[float, str], None]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embed_chunks(
    embedder: Embedder,
    texts: Sequence[str],
    *,
    batch_size: int,
    known: dict[str, bytes],
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[Vectors, int]:
    """Vectors for ``texts`` in order, reusing ``known`` (hash -> stored vector) where it can.

    Returns the vectors and how many were reused instead of embedded.
    """
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    todo: list[int] = []
    for i, text in enumerate(texts):
        blob = known.get(content_hash(text))
        if blob is None:
            todo.append(i)
        else:
            out[i] = bytes_to_vectors([blob], embedder.dim)[0]
    for start in range(0, len(todo), batch_size):
        idx = todo[start : start + batch_size]
        vecs = embedder.embed_documents([texts[i] for i in idx])
        if vecs.shape != (len(idx), embedder.dim):
            raise RuntimeError(
                f"embedder returned shape {vecs.shape}, expected {(len(idx), embedder.dim)}"
            )
        out[idx] = vecs
        if on_batch is not None:
            on_batch(min(start + batch_size, len(todo)), len(todo))
    return out, len(texts) - len(todo)


def texts_per_call(embedder: Embedder, batch_size: int) -> int:
    """How many texts to hand the embedder at once.

    An embedder that keeps several requests in flight (it has ``concurrency``) gets
    enough texts for all of them (``batch_size`` per request); a CPU one gets ``batch_size``.
    """
    concurrency = getattr(embedder, "concurrency", None)
    if isinstance(concurrency, int) and concurrency > 1:
        per_request = getattr(embedder, "batch_size", batch_size)
        return max(1, int(per_request)) * concurrency
    return batch_size


def _known_vectors(session: Session, collection_id: int, hashes: set[str]) -> dict[str, bytes]:
    """Vectors already stored in this collection for identical texts (same model)."""
    found: dict[str, bytes] = {}
    wanted = sorted(hashes)
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(ChunkRow.content_hash, ChunkRow.vector).where(
                ChunkRow.collection_id == collection_id,
                ChunkRow.content_hash.in_(wanted[start : start + 500]),
            )
        ).all()
        found.update({h: v for h, v in rows})
    return found


def _set_status(rt: Runtime, document_id: int, status: DocumentStatus) -> None:
    with transaction(rt.sessions) as s:
        doc = s.get(Document, document_id)
        if doc is not None:
            doc.status = status


def _brief(exc: BaseException) -> str:
    """One line for a log or an admin: the driver's error, not SQLAlchemy's SQL dump."""
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip().splitlines()
    return f"{type(inner).__name__}: {text[0] if text else ''}"[:300]


def _best_effort(what: str, write: Callable[[], object]) -> None:
    """A write that only informs (progress, a status): an outage skips it, nothing more."""
    try:
        write()
    except jobs.LeaseLost:
        raise
    except Exception as exc:
        cause = outages.transient_cause(exc)
        if cause is None:
            raise
        log.info("%s skipped: %s", what, cause)


def _with_db_retry(
    rt: Runtime,
    action: Callable[[], T],
    *,
    what: str,
    on_wait: Callable[[str, datetime, BaseException], None] | None = None,
) -> T:
    """``action()`` (its own transaction), retried through an outage with backoff.

    For at most half a lease: the heartbeat (every third of one) keeps the job ours
    meanwhile, and should it not reach the database either, we stop before the lease
    can run out under us. Other errors, and the outage's last one, propagate.
    """
    deadline = time.monotonic() + rt.settings.job_lease_seconds / 2
    backoff = jobs.Backoff(base=0.25, cap=8.0)
    while True:
        try:
            return action()
        except Exception as exc:
            cause = outages.transient_cause(exc)
            delay = backoff.next_delay()
            if cause is None or time.monotonic() + delay > deadline:
                raise
            # One line per try, no traceback: an outage is not a bug.
            log.warning("%s: %s (%s); next try in %.1f s", what, cause, _brief(exc), delay)
            if on_wait is not None:
                at = utcnow() + timedelta(seconds=delay)
                _best_effort(f"{what}: showing why", partial(on_wait, cause, at, exc))
            time.sleep(delay)


@dataclass(frozen=True)
class _Begun:
    """What the stages need of the document, read as it is marked parsing."""

    path: Path
    filename: str
    embedder_name: str
    collection_id: int
    recorded: tuple[str, str, int]  # the collection's name, model and dimension


def _begin(rt: Runtime, job_id: int, document_id: int) -> _Begun | None:
    """Mark the document parsing; None (and the job finished) when it was deleted."""
    with transaction(rt.sessions) as s:
        doc = s.get(Document, document_id)
        if doc is None:
            j = s.get(Job, job_id)
            if j is not None:
                jobs.finish(s, j, message="document was deleted before it was ingested")
            return None
        collection = s.get(Collection, doc.collection_id)
        assert collection is not None
        doc.status = DocumentStatus.PARSING
        doc.error = None
        return _Begun(
            path=original_path(rt.settings.files_dir, doc),
            filename=doc.filename,
            embedder_name=collection.embedder,
            collection_id=collection.id,
            recorded=(collection.name, collection.model, collection.dim),
        )


def _known_or_none(rt: Runtime, collection_id: int, texts: Sequence[str]) -> dict[str, bytes]:
    """Stored vectors to reuse; none during an outage (reuse saves work, nothing more)."""
    try:
        with rt.sessions() as s:
            return _known_vectors(s, collection_id, {content_hash(t) for t in texts})
    except Exception as exc:
        cause = outages.transient_cause(exc)
        if cause is None:
            raise
        log.info("reusing stored vectors skipped: %s", cause)
        return {}


def run_ingest(
    rt: Runtime, job: Job, *, worker_id: str, backoff: jobs.Backoff | None = None
) -> IngestOutcome:
    """Process a claimed ingest job to its end: ready, failed, or requeued for a retry.

    ``backoff`` is the worker's: the delays of consecutive outages grow across jobs.
    """
    document_id = int(job.payload["document_id"])
    times = StageTimes()

    def progress(fraction: float, message: str) -> None:
        def write() -> None:
            with transaction(rt.sessions) as s:
                jobs.heartbeat(
                    s,
                    job_id=job.id,
                    worker_id=worker_id,
                    lease_s=rt.settings.job_lease_seconds,
                    progress=fraction,
                    message=message,
                )

        _best_effort(f"progress of job {job.id}", write)

    try:
        begun = _with_db_retry(
            rt, partial(_begin, rt, job.id, document_id), what=f"starting job {job.id}"
        )
    except Exception as exc:
        return _stalled(job.id, document_id, exc, times)
    if begun is None:
        return IngestOutcome(document_id, "deleted")
    path, filename, embedder_name = begun.path, begun.filename, begun.embedder_name
    collection_id, recorded = begun.collection_id, begun.recorded

    try:
        progress(0.02, "parsing")
        t0 = time.perf_counter()
        if not path.exists():
            raise IngestError("the stored original is missing; upload the file again")
        parsed: ParsedDocument = parse_isolated(
            path,
            filename=filename,
            timeout_s=rt.settings.parse_timeout_seconds,
            memory_mb=rt.settings.parse_memory_mb,
        )
        times.parse = time.perf_counter() - t0

        t0 = time.perf_counter()
        chunks = chunk_document(parsed, max_tokens=rt.settings.chunk_max_tokens)
        times.chunk = time.perf_counter() - t0
        if not chunks:
            raise IngestError("no text was found in the file")
        language = detect_language(parsed.text)

        _best_effort(
            f"status of document {document_id}",
            partial(_set_status, rt, document_id, DocumentStatus.EMBEDDING),
        )
        progress(0.1, f"embedding {len(chunks)} chunks")
        texts = [c.embed_text for c in chunks]
        known = _known_or_none(rt, collection_id, texts)
        embedder = rt.embedders.get(embedder_name)
        ensure_same_model(
            EmbedderSpec(embedder.name, embedder.model, embedder.dim),
            collection=recorded[0],
            model=recorded[1],
            dim=recorded[2],
        )
        t0 = time.perf_counter()
        vectors, reused = embed_chunks(
            embedder,
            texts,
            batch_size=texts_per_call(embedder, rt.settings.embed_batch_size),
            known=known,
            on_batch=lambda done, total: progress(
                0.1 + 0.85 * done / max(total, 1), f"embedded {done} of {total} chunks"
            ),
        )
        times.embed = time.perf_counter() - t0
        times.embedded, times.reused = len(texts) - reused, reused

        def store() -> bool:
            with transaction(rt.sessions) as s:
                j = s.get(Job, job.id)
                doc = s.get(Document, document_id)
                if doc is None or j is None or j.worker_id != worker_id:
                    return False
                if j.status == JobStatus.DONE:
                    return True  # an earlier try committed, and only its answer was lost
                _ensure_model_unchanged(s, collection_id, embedder_name, recorded[1], recorded[2])
                _store(s, doc, chunks, texts, vectors)
                doc.status = DocumentStatus.READY
                doc.error = None
                doc.title = parsed.title or doc.title
                _store_tags(s, doc, parsed.tags)
                doc.language = language
                doc.page_count = parsed.page_count
                doc.chunk_count = len(chunks)
                bump_version(s, collection_id)
                jobs.finish(s, j, message=f"{len(chunks)} chunks")
                return True

        t0 = time.perf_counter()
        # The vectors are paid for: wait out a short outage here rather than embed again.
        stored = _with_db_retry(
            rt,
            store,
            what=f"storing document {document_id}",
            on_wait=partial(_show_waiting, rt, job.id, document_id, worker_id),
        )
        if not stored:
            return IngestOutcome(document_id, "deleted", times=times)
        times.store = time.perf_counter() - t0
        return IngestOutcome(document_id, "ready", len(chunks), parsed.page_count, times=times)

    except jobs.LeaseLost:
        log.info("job %s was taken away (deleted or lease expired); stopping", job.id)
        return IngestOutcome(document_id, "abandoned", times=times)
    except IngestError as exc:
        fail = partial(_fail, rt, job.id, document_id, worker_id, exc.reason)
        return _record(rt, job.id, document_id, times, fail)
    except EmbedderInputError as exc:  # a passage the model cannot take: retrying cannot help
        reason = f"a passage cannot be embedded: {exc}"
        fail = partial(_fail, rt, job.id, document_id, worker_id, reason)
        return _record(rt, job.id, document_id, times, fail)
    except Exception as exc:  # transient: an outage is waited out, anything else retried
        cause = outages.transient_cause(exc)
        if cause is not None:
            delay = (backoff or jobs.Backoff()).next_delay()
            log.warning(
                "ingest of document %s waits: %s (%s); next try in %.1f s",
                document_id,
                cause,
                _brief(exc),
                delay,
            )
            wait = partial(
                _requeue_waiting, rt, job.id, document_id, worker_id, cause, _brief(exc), delay
            )
            outcome = _record(rt, job.id, document_id, times, wait)
            return replace(outcome, retry_in=delay)
        log.error("ingest of document %s failed; will retry", document_id, exc_info=exc)
        reason = f"{filename}: {type(exc).__name__}: {exc}"
        retry = partial(_requeue_retrying, rt, job.id, document_id, worker_id, reason)
        return _record(rt, job.id, document_id, times, retry)


Recorded = tuple[str, str | None]  # the outcome's status and error


def _record(
    rt: Runtime, job_id: int, document_id: int, times: StageTimes, write: Callable[[], Recorded]
) -> IngestOutcome:
    """Write how a job ended, through an outage if need be."""
    try:
        status, error = _with_db_retry(rt, write, what=f"recording the end of job {job_id}")
    except Exception as exc:
        return _stalled(job_id, document_id, exc, times)
    return IngestOutcome(document_id, status, error=error, times=times)


def _stalled(job_id: int, document_id: int, exc: Exception, times: StageTimes) -> IngestOutcome:
    """The outage outlasted our retries: leave the job to its lease.

    Nothing can be written, releasing the job included. Nothing of the document is
    visible, and once the lease ends any worker takes the job up again.
    """
    cause = outages.transient_cause(exc)
    if cause is None:
        raise exc
    log.error(
        "job %s: %s (%s); it will be taken up again when its lease ends", job_id, cause, _brief(exc)
    )
    return IngestOutcome(document_id, "stalled", error=cause, times=times)


def _show_waiting(
    rt: Runtime,
    job_id: int,
    document_id: int,
    worker_id: str,
    cause: str,
    at: datetime,
    exc: BaseException,
) -> None:
    """While a write is retried in place: say why on the job and the document."""
    reason = jobs.waiting_reason(cause, at)
    with transaction(rt.sessions) as s:
        j = s.get(Job, job_id)
        if j is None or not jobs.holds(j, worker_id):
            return
        j.message, j.error = reason, f"{cause}: {_brief(exc)}"
        doc = s.get(Document, document_id)
        if doc is not None:
            doc.error = reason


def _requeue_waiting(
    rt: Runtime,
    job_id: int,
    document_id: int,
    worker_id: str,
    cause: str,
    detail: str,
    delay_s: float,
) -> Recorded:
    with transaction(rt.sessions) as s:
        j = s.get(Job, job_id)
        doc = s.get(Document, document_id)
        if j is None or doc is None:
            return "deleted", None
        if not jobs.holds(j, worker_id):
            return "abandoned", None
        reason = jobs.wait_for_infrastructure(
            s, j, cause=cause, detail=f"{cause}: {detail}", delay_s=delay_s
        )
        doc.status, doc.error = DocumentStatus.QUEUED, reason
        return "waiting", reason


def _requeue_retrying(
    rt: Runtime, job_id: int, document_id: int, worker_id: str, reason: str
) -> Recorded:
    """A counted retry (the embedder away, an unknown error), or failed when none is left."""
    with transaction(rt.sessions) as s:
        j = s.get(Job, job_id)
        doc = s.get(Document, document_id)
        if j is None or doc is None:
            return "deleted", None
        if not jobs.holds(j, worker_id):
            return "abandoned", None
        if jobs.retry_later(s, j, reason=reason):
            doc.status = DocumentStatus.QUEUED
            doc.error = jobs.retrying_reason(reason, j.run_after)
            return "retrying", reason
        doc.status = DocumentStatus.FAILED
        doc.error = j.error
        return "failed", j.error


class ModelChanged(RuntimeError):
    """The collection switched models while this document was embedded: embed it again."""


def _ensure_model_unchanged(
    s: Session, collection_id: int, embedder: str, model: str, dim: int
) -> None:
    query = select(Collection).where(Collection.id == collection_id)
    if s.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # a model switch waits for this transaction
    col = s.scalars(query).one()
    if (col.embedder, col.model, col.dim) != (embedder, model, dim):
        raise ModelChanged(f"the collection moved to {col.model} while this file was embedded")


def _fail(rt: Runtime, job_id: int, document_id: int, worker_id: str, reason: str) -> Recorded:
    with transaction(rt.sessions) as s:
        doc = s.get(Document, document_id)
        j = s.get(Job, job_id)
        if j is not None and not jobs.holds(j, worker_id):
            return "abandoned", None  # another worker took the job over: its outcome stands
        if doc is not None:
            doc.status = DocumentStatus.FAILED
            doc.error = reason
        if j is not None:
            jobs.fail(s, j, reason=reason)
        return "failed", reason


def _store_tags(s: Session, doc: Document, tags: Sequence[str]) -> None:
    """Replace the tags read from the file; tags a person set on upload stay."""
    kept = [row for row in doc.tag_rows if row.source != DOCUMENT_TAG]
    # Reuse the rows of tags the file still has: deleting and re-inserting the same
    # primary key in one flush would collide.
    previous = {row.tag: row for row in doc.tag_rows if row.source == DOCUMENT_TAG}
    taken = {tag_identity(row.tag) for row in kept}
    rows = list(kept)
    for tag in tags:
        if tag_identity(tag) not in taken:
            taken.add(tag_identity(tag))
            rows.append(previous.get(tag) or DocumentTag(tag=tag, source=DOCUMENT_TAG))
    for position, row in enumerate(rows):
        row.position = position
    doc.tag_rows = rows
    s.flush()


def _store(
    s: Session, doc: Document, chunks: Sequence[Chunk], texts: Sequence[str], vectors: Vectors
) -> None:
    """Replace the document's chunks (a re-ingest leaves no old rows behind)."""
    s.execute(delete(ChunkRow).where(ChunkRow.document_id == doc.id))
    s.add_all(
        ChunkRow(
            document_id=doc.id,
            collection_id=doc.collection_id,
            ordinal=c.ordinal,
            heading_path=list(c.heading_path),
            text=c.text,
            page_start=c.page_start,
            page_end=c.page_end,
            token_count=c.token_count,
            kind=c.kind.value,
            question=c.question,
            content_hash=content_hash(t),
            vector=vector_to_bytes(v),
            search_terms=index_text(c.heading_path, c.text),
        )
        for c, t, v in zip(chunks, texts, vectors, strict=True)
    )
    s.flush()
