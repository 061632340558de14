"""The document and job lifecycle: the one writer of ``Document.status``/``error`` and of
the job state transitions that go with them. The caller owns the transaction.

A document moves ``queued -> parsing -> embedding -> ready | failed``; each move is a
named function here, and the job it pairs with moves in the same call::

    submit / reingest / retry          -> queued     (job queued)
    start_parsing                      -> parsing    (job claimed by a worker)
    start_embedding                    -> embedding
    mark_ready                         -> ready      (job done)
    mark_failed / give_up_interrupted  -> failed     (job failed), with a reason
    requeue                            -> queued     (counted retry) or failed (none left)
    wait_for_infrastructure            -> queued     (an outage: the attempt is given back)
    show_waiting                       (reason only) an outage is being waited out in place

Each transition names the states it expects the document in. A re-ingest or an admin's
retry may restart a document at any moment, even while an older job still runs it, so a
document found in another state is a race, not a bug: it is logged and the move is made,
as it always was. What keeps a stale job's writes out is the job's lease
(:func:`app.jobs.service.holds`): the run-time transitions check it and answer
:attr:`Outcome.ABANDONED` (or :attr:`Outcome.DELETED`) instead of writing.
"""

from __future__ import annotations

import logging
from collections.abc import Collection as Set
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy.orm import Session

from app.db import utcnow
from app.documents.models import Document, DocumentStatus
from app.jobs import service as jobs
from app.jobs.models import Job, JobKind, JobStatus

log = logging.getLogger(__name__)

__all__ = [
    "DocumentStatus",
    "Ended",
    "Held",
    "InvalidTransition",
    "JobStatus",
    "Outcome",
    "fail_job",
    "finish_job",
    "give_up_interrupted",
    "mark_failed",
    "mark_ready",
    "reingest",
    "requeue",
    "requeue_job",
    "retry",
    "retry_job_later",
    "show_waiting",
    "start_embedding",
    "start_parsing",
    "submit",
    "wait_for_infrastructure",
    "wait_job_for_infrastructure",
]


class Outcome(StrEnum):
    """How a worker's run of one job ended (``IngestOutcome.status``)."""

    READY = "ready"  # ingested: chunks stored, document searchable
    FAILED = "failed"  # bad input, or no attempt left: the document says why
    RETRYING = "retrying"  # a transient error: requeued, an attempt used
    WAITING = "waiting"  # an outage: requeued, the attempt given back
    STALLED = "stalled"  # an outage outlasted our retries: left to its lease
    DELETED = "deleted"  # the document (or its job) was deleted meanwhile
    ABANDONED = "abandoned"  # another worker took the job over: its outcome stands
    SWITCHED = "switched"  # a re-embed job moved its collection to the new model
    CANCELLED = "cancelled"  # a re-embed job found nothing (left) to move to


@dataclass(frozen=True)
class Ended:
    """What a run-time transition recorded: the outcome and the reason shown, if any."""

    outcome: Outcome
    error: str | None = None


@dataclass(frozen=True)
class Held:
    """A job as one worker runs it, and its document: the run-time transitions' subject."""

    job_id: int
    document_id: int
    worker_id: str


class InvalidTransition(RuntimeError):
    """A transition of a document that has no lifecycle state (never submitted): a bug."""


_ANY: frozenset[DocumentStatus] = frozenset(DocumentStatus)
_RUNNING = frozenset({DocumentStatus.PARSING, DocumentStatus.EMBEDDING})


def _move(
    doc: Document,
    to: DocumentStatus,
    transition: str,
    expected: Set[DocumentStatus | None],
    *,
    error: str | None,
) -> None:
    current = None if doc.status is None else DocumentStatus(doc.status)
    if current not in expected:
        if current is None:
            raise InvalidTransition(f"document {doc.id}: {transition} before it was submitted")
        log.info(
            "document %s: %s from %s (a re-ingest or retry raced this job)",
            doc.id,
            transition,
            current,
        )
    doc.status = to
    doc.error = error


# -- queued: a document enters (or re-enters) the queue -----------------------------------


def submit(session: Session, doc: Document, *, max_attempts: int = 5) -> Job:
    """A new document: queued, with its ingest job (flushed, not committed)."""
    _move(doc, DocumentStatus.QUEUED, "submit", {None, DocumentStatus.QUEUED}, error=None)
    session.add(doc)
    session.flush()
    return _enqueue_ingest(session, doc, max_attempts)


def reingest(session: Session, doc: Document, *, max_attempts: int = 5) -> Job:
    """Queue the document to be parsed and embedded again (flushed, not committed)."""
    _move(doc, DocumentStatus.QUEUED, "reingest", _ANY, error=None)
    return _enqueue_ingest(session, doc, max_attempts)


def retry(session: Session, job: Job) -> None:
    """An admin retries a job: fresh attempts, and its document queued again."""
    requeue_job(job)
    if job.document_id is not None:
        doc = session.get(Document, job.document_id)
        if doc is not None:
            _move(doc, DocumentStatus.QUEUED, "retry", _ANY, error=None)


def _enqueue_ingest(session: Session, doc: Document, max_attempts: int) -> Job:
    return jobs.enqueue(
        session,
        kind=JobKind.INGEST,
        payload={"document_id": doc.id},
        document_id=doc.id,
        max_attempts=max_attempts,
    )


# -- a worker runs the document -----------------------------------------------------------


def start_parsing(doc: Document) -> None:
    """A worker claimed the document's job (a retried or taken-over job starts over)."""
    expected = {DocumentStatus.QUEUED, *_RUNNING}
    _move(doc, DocumentStatus.PARSING, "start_parsing", expected, error=None)


def start_embedding(doc: Document) -> None:
    """Parsed and chunked; its chunks are being embedded (the reason shown is kept)."""
    _move(
        doc, DocumentStatus.EMBEDDING, "start_embedding", {DocumentStatus.PARSING}, error=doc.error
    )


def mark_ready(doc: Document, job: Job, *, message: str) -> None:
    """Chunks stored (same transaction): the document is searchable, its job done."""
    # PARSING too: an outage may have skipped the (informative) move to embedding.
    _move(doc, DocumentStatus.READY, "mark_ready", _RUNNING, error=None)
    finish_job(job, message=message)


def mark_failed(session: Session, held: Held, *, reason: str) -> Ended:
    """The input is bad (retrying cannot help): the document fails with ``reason``."""
    j = session.get(Job, held.job_id)
    if j is not None and not jobs.holds(j, held.worker_id):
        return Ended(Outcome.ABANDONED)  # another worker took the job over: its outcome stands
    doc = session.get(Document, held.document_id)
    if doc is not None:
        _move(doc, DocumentStatus.FAILED, "mark_failed", _RUNNING, error=reason)
    if j is not None:
        fail_job(j, reason=reason)
    return Ended(Outcome.FAILED, reason)


def give_up_interrupted(session: Session, job: Job, *, reason: str) -> None:
    """A claimed job whose previous workers all died mid-job: it fails, and its document."""
    fail_job(job, reason=reason)
    if job.document_id is not None:
        doc = session.get(Document, job.document_id)
        if doc is not None:
            expected = {DocumentStatus.QUEUED, *_RUNNING}
            _move(doc, DocumentStatus.FAILED, "give_up_interrupted", expected, error=reason)


def _held(session: Session, held: Held) -> tuple[Job, Document] | Ended:
    """The job and its document while this worker still holds the job; else how it ended."""
    j = session.get(Job, held.job_id)
    doc = session.get(Document, held.document_id)
    if j is None or doc is None:
        return Ended(Outcome.DELETED)
    if not jobs.holds(j, held.worker_id):
        return Ended(Outcome.ABANDONED)
    return j, doc


def requeue(session: Session, held: Held, *, reason: str) -> Ended:
    """A counted retry (the embedder away, an unknown error), or failed when none is left."""
    found = _held(session, held)
    if isinstance(found, Ended):
        return found
    j, doc = found
    if retry_job_later(j, reason=reason):
        shown = jobs.retrying_reason(reason, j.run_after)
        _move(doc, DocumentStatus.QUEUED, "requeue", _RUNNING, error=shown)
        return Ended(Outcome.RETRYING, reason)
    _move(doc, DocumentStatus.FAILED, "requeue", _RUNNING, error=j.error)
    return Ended(Outcome.FAILED, j.error)


def wait_for_infrastructure(
    session: Session, held: Held, *, cause: str, detail: str, delay_s: float
) -> Ended:
    """An outage (not the input) stopped the job: back to the queue, its attempt given back."""
    found = _held(session, held)
    if isinstance(found, Ended):
        return found
    j, doc = found
    reason = wait_job_for_infrastructure(j, cause=cause, detail=detail, delay_s=delay_s)
    _move(doc, DocumentStatus.QUEUED, "wait_for_infrastructure", _RUNNING, error=reason)
    return Ended(Outcome.WAITING, reason)


def show_waiting(session: Session, held: Held, *, reason: str, detail: str) -> None:
    """While a write is retried in place: say why on the job and the document (no move)."""
    j = session.get(Job, held.job_id)
    if j is None or not jobs.holds(j, held.worker_id):
        return
    j.message, j.error = reason, detail
    doc = session.get(Document, held.document_id)
    if doc is not None:
        doc.error = reason


# -- job transitions ----------------------------------------------------------------------
#
# Claiming (queued -> running, a guarded UPDATE) and the lease stay in app/jobs/service.py;
# a job leaves ``running`` only here.


def finish_job(job: Job, *, message: str = "done") -> None:
    job.status = JobStatus.DONE
    job.progress = 1.0
    job.message = message
    job.error = None
    job.finished_at = utcnow()
    job.lease_expires_at = None


def fail_job(job: Job, *, reason: str) -> None:
    job.status = JobStatus.FAILED
    job.error = reason
    job.message = "failed"
    job.finished_at = utcnow()
    job.lease_expires_at = None


def retry_job_later(job: Job, *, reason: str) -> bool:
    """Requeue after a transient error; False (and failed) when attempts are used up."""
    if job.attempts >= job.max_attempts:
        fail_job(job, reason=f"{reason} (gave up after {job.attempts} attempts)")
        return False
    job.status = JobStatus.QUEUED
    job.error = reason
    job.message = f"retrying after error (attempt {job.attempts} of {job.max_attempts})"
    job.run_after = utcnow() + timedelta(seconds=jobs.backoff_seconds(job.attempts))
    job.worker_id = None
    job.lease_expires_at = None
    return True


def requeue_job(job: Job) -> None:
    """Put a job back in the queue with fresh attempts."""
    job.status = JobStatus.QUEUED
    job.attempts = 0
    job.error = None
    job.progress = 0.0
    job.message = "queued"
    job.run_after = utcnow()
    job.finished_at = None


def wait_job_for_infrastructure(job: Job, *, cause: str, detail: str, delay_s: float) -> str:
    """Requeue a job that an outage (not its input) stopped; returns the reason to show.

    The claim's attempt is given back: an hour of full disk must neither fail the
    document nor look like a worker that died mid-job (see ``Worker.run_once``).
    """
    at = utcnow() + timedelta(seconds=delay_s)
    reason = jobs.waiting_reason(cause, at)
    job.status = JobStatus.QUEUED
    job.attempts = max(0, job.attempts - 1)
    job.error = detail
    job.message = reason
    job.run_after = at
    job.worker_id = None
    job.lease_expires_at = None
    return reason
