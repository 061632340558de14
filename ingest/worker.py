"""The worker: claims jobs from SQL and runs them, one at a time, until told to stop.

Runs inside ``kb serve`` (a thread) or alone as ``kb worker``; any number of workers
can share one database. A job that raises never stops the loop.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable

from app.db import transaction
from app.documents.models import Document, DocumentStatus
from app.jobs import service as jobs
from app.jobs.models import Job, JobKind
from app.runtime import Runtime
from ingest.pipeline import IngestOutcome, run_ingest
from ingest.reembed import run_reembed

log = logging.getLogger(__name__)


class _Heartbeat:
    """Keeps a job's lease alive while a long stage (a big parse) runs without reporting."""

    def __init__(self, rt: Runtime, job_id: int, worker_id: str) -> None:
        self._rt, self._job_id, self._worker_id = rt, job_id, worker_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"heartbeat-{job_id}")

    def _run(self) -> None:
        interval = self._rt.settings.job_lease_seconds / 3
        while not self._stop.wait(interval):
            try:
                with transaction(self._rt.sessions) as s:
                    jobs.heartbeat(
                        s,
                        job_id=self._job_id,
                        worker_id=self._worker_id,
                        lease_s=self._rt.settings.job_lease_seconds,
                    )
            except jobs.LeaseLost:
                return
            except Exception:  # the database may be briefly away; try again next beat
                log.warning("heartbeat for job %s failed", self._job_id, exc_info=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class Worker:
    def __init__(self, rt: Runtime, *, worker_id: str | None = None) -> None:
        self.rt = rt
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stop_event = threading.Event()

    def run_once(self) -> IngestOutcome | None:
        """Claim and run one job; None when no job is due."""
        with transaction(self.rt.sessions) as s:
            job = jobs.claim(
                s, worker_id=self.worker_id, lease_s=self.rt.settings.job_lease_seconds
            )
            if job is None:
                return None
            if job.attempts > job.max_attempts:
                # Its previous workers died mid-job every time: stop trying, say so.
                reason = "ingest was interrupted too many times (the worker stopped each time)"
                jobs.fail(s, job, reason=reason)
                if job.document_id is not None:
                    doc = s.get(Document, job.document_id)
                    if doc is not None:
                        doc.status, doc.error = DocumentStatus.FAILED, reason
                return IngestOutcome(job.document_id or 0, "failed", error=reason)
            s.expunge(job)
        return self._run(job)

    def _run(self, job: Job) -> IngestOutcome:
        if job.kind == JobKind.REEMBED:
            with _Heartbeat(self.rt, job.id, self.worker_id):
                done = run_reembed(self.rt, job, worker_id=self.worker_id)
            return IngestOutcome(0, done.status, done.reembedded, error=done.error)
        if job.kind != JobKind.INGEST:
            with transaction(self.rt.sessions) as s:
                j = s.get(Job, job.id)
                if j is not None:
                    jobs.fail(s, j, reason=f"unknown job kind {job.kind!r}")
            return IngestOutcome(job.document_id or 0, "failed", error="unknown job kind")
        with _Heartbeat(self.rt, job.id, self.worker_id):
            return run_ingest(self.rt, job, worker_id=self.worker_id)

    def run_until_idle(self) -> list[IngestOutcome]:
        """Run jobs until none is due (used by ``kb ingest`` and tests)."""
        done: list[IngestOutcome] = []
        while not self.stop_event.is_set():
            outcome = self.run_once()
            if outcome is None:
                break
            done.append(outcome)
        return done

    def run_forever(self) -> None:
        """Poll for jobs until ``stop()``; errors are logged and the loop goes on."""
        log.info("worker %s started", self.worker_id)
        while not self.stop_event.is_set():
            try:
                outcome = self.run_once()
            except Exception:
                log.exception("worker loop error; continuing")
                outcome = None
            if outcome is None:
                self.stop_event.wait(self.rt.settings.worker_poll_seconds)
        log.info("worker %s stopped", self.worker_id)

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, daemon=True, name="kb-worker")
        thread.start()
        return thread

    def stop(self) -> None:
        self.stop_event.set()


def start_in_background(rt: Runtime) -> Callable[[], None]:
    """Start the configured number of worker threads; returns the function that stops them.

    With a remote embedder, two threads keep the embedding server busy: while one waits
    for vectors (the GIL released), the other parses its next document.
    """
    workers = [Worker(rt) for _ in range(rt.settings.effective_worker_threads)]
    threads = [w.start_thread() for w in workers]

    def stop() -> None:
        for w in workers:
            w.stop()
        for t in threads:
            t.join(timeout=30)

    return stop
