"""Queue, claim and heartbeat jobs. The caller owns the transaction.

How a job ends (done, failed, requeued, waiting for the infrastructure) is a transition
of the lifecycle, in app/lifecycle.py. Also here: the backoff while the infrastructure
(database, disk) is failing, and the reasons a person sees meanwhile.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from app.db import utcnow
from app.jobs.models import Job, JobStatus


class LeaseLost(Exception):
    """Another worker took the job over (our lease expired); stop working on it."""


def enqueue(
    session: Session,
    *,
    kind: str,
    payload: dict[str, Any],
    document_id: int | None = None,
    max_attempts: int = 5,
) -> Job:
    """Add a queued job (flushed, not committed)."""
    job = Job(
        kind=kind,
        payload=payload,
        document_id=document_id,
        max_attempts=max_attempts,
        status=JobStatus.QUEUED,
        run_after=utcnow(),
    )
    session.add(job)
    session.flush()
    return job


def claim(session: Session, *, worker_id: str, lease_s: float) -> Job | None:
    """Take the oldest runnable job: queued and due, or running with an expired lease."""
    now = utcnow()
    due = or_(
        and_(Job.status == JobStatus.QUEUED, Job.run_after <= now),
        and_(Job.status == JobStatus.RUNNING, Job.lease_expires_at < now),
    )
    query = select(Job).where(due).order_by(Job.run_after, Job.id).limit(1)
    if session.get_bind().dialect.name == "postgresql":
        # Several workers: each skips rows another is claiming instead of queueing behind it.
        query = query.with_for_update(skip_locked=True)
    job = session.scalars(query).first()
    if job is None:
        return None
    # The guarded UPDATE makes the claim safe without row locks (SQLite): only one
    # worker can move the row from the state it read.
    result = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == job.status, Job.attempts == job.attempts)
        .values(
            status=JobStatus.RUNNING,
            attempts=Job.attempts + 1,
            worker_id=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_s),
            heartbeat_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    session.refresh(job)
    return job


def heartbeat(
    session: Session,
    *,
    job_id: int,
    worker_id: str,
    lease_s: float,
    progress: float | None = None,
    message: str | None = None,
) -> None:
    """Extend our lease (and report progress); raises LeaseLost if the job is not ours."""
    now = utcnow()
    values: dict[str, Any] = {
        "lease_expires_at": now + timedelta(seconds=lease_s),
        "heartbeat_at": now,
        "updated_at": now,
    }
    if progress is not None:
        values["progress"] = max(0.0, min(1.0, progress))
    if message is not None:
        values["message"] = message
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == JobStatus.RUNNING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(f"job {job_id} is no longer held by {worker_id}")


def backoff_seconds(attempt: int, *, base: float = 2.0, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter (AWS architecture blog's recommendation)."""
    return random.uniform(0, min(cap, base * 2 ** max(0, attempt - 1)))


def latest_for_document(session: Session, document_id: int) -> Job | None:
    return session.scalars(
        select(Job).where(Job.document_id == document_id).order_by(Job.id.desc()).limit(1)
    ).first()


def holds(job: Job, worker_id: str) -> bool:
    """Whether ``worker_id`` still runs ``job`` (its writes would not clobber another's)."""
    return job.status == JobStatus.RUNNING and job.worker_id == worker_id


# -- waiting for the infrastructure ------------------------------------------------------
#
# A full disk or a database that is restarting is nobody's input error: the job waits
# (backing off) and its attempts are not used up, however long the outage lasts.

# The reasons a person sees on the document while it waits (app/i18n_catalog.py has them).
WAITING = "waiting: {cause}; next try at {time} UTC"
RETRYING = "retrying: {reason}; next try at {time} UTC"


@dataclass
class Backoff:
    """Growing, capped delays over one streak of failures.

    Equal jitter (half fixed, half random) rather than full jitter: a persistent outage
    must never produce near-zero delays, which would be the log storm again.
    """

    base: float = 1.0
    cap: float = 60.0
    failures: int = 0

    def next_delay(self) -> float:
        self.failures += 1
        ceiling = min(self.cap, self.base * 2 ** min(self.failures - 1, 30))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.failures = 0


def waiting_reason(cause: str, at: datetime) -> str:
    return WAITING.format(cause=cause, time=f"{at:%H:%M:%S}")


def retrying_reason(reason: str, at: datetime) -> str:
    return RETRYING.format(reason=reason, time=f"{at:%H:%M:%S}")
