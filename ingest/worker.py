"""The worker: claims jobs from SQL and runs them, one at a time, until told to stop.

Runs inside ``kb serve`` (a thread) or alone as ``kb worker``; any number of workers
can share one database. A job that raises never stops the loop, and neither does an
outage of the database or the disk: the loop backs off (one log line per try) and claims
again once it is over.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable

from app import lifecycle, outages
from app.db import transaction
from app.jobs import service as jobs
from app.jobs.models import Job, JobKind
from app.lifecycle import Outcome
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
        # After a failed beat, try again soon: waiting a whole interval could let the
        # lease run out although the database came back at once.
        backoff = jobs.Backoff(base=1.0, cap=interval)
        wait = interval
        while not self._stop.wait(wait):
            try:
                self._beat()
                backoff.reset()
                wait = interval
            except jobs.LeaseLost:
                return
            except Exception as exc:
                wait = backoff.next_delay()
                cause = outages.transient_cause(exc)
                log.warning(
                    "heartbeat for job %s failed: %s; next try in %.1f s",
                    self._job_id,
                    cause or f"{type(exc).__name__}: {exc}",
                    wait,
                    exc_info=cause is None and backoff.failures == 1,  # a bug: trace it once
                )

    def _beat(self) -> None:
        with transaction(self._rt.sessions) as s:
            jobs.heartbeat(
                s,
                job_id=self._job_id,
                worker_id=self._worker_id,
                lease_s=self._rt.settings.job_lease_seconds,
            )

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class Worker:
    def __init__(
        self, rt: Runtime, *, worker_id: str | None = None, backoff: jobs.Backoff | None = None
    ) -> None:
        self.rt = rt
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stop_event = threading.Event()
        # One streak of outages (database away, disk full), shared by the claim loop and
        # the jobs it runs: they all meet the same database and the same disk.
        self.backoff = backoff or jobs.Backoff(base=1.0, cap=60.0)

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
                lifecycle.give_up_interrupted(s, job, reason=reason)
                return IngestOutcome(job.document_id or 0, Outcome.FAILED, error=reason)
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
                    lifecycle.fail_job(j, reason=f"unknown job kind {job.kind!r}")
            return IngestOutcome(job.document_id or 0, Outcome.FAILED, error="unknown job kind")
        with _Heartbeat(self.rt, job.id, self.worker_id):
            return run_ingest(self.rt, job, worker_id=self.worker_id, backoff=self.backoff)

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
            self.stop_event.wait(self._step())
        log.info("worker %s stopped", self.worker_id)

    def _step(self) -> float:
        """Claim and run one job; returns how long to wait before the next claim."""
        try:
            outcome = self.run_once()
        except Exception as exc:
            return self._after_loop_error(exc)
        if outcome is None:
            return self.rt.settings.worker_poll_seconds
        if outcome.ocr_busy:
            return 0.0  # only that scan waits (for a free OCR process): go on
        if outcome.status in (Outcome.WAITING, Outcome.STALLED):
            # An outage requeued (or could not even release) the job: every other job
            # would meet it too, so pause instead of parsing and embedding them in vain.
            return outcome.retry_in or self.backoff.next_delay()
        self.backoff.reset()
        return 0.0

    def _after_loop_error(self, exc: Exception) -> float:
        """Back off after a failed claim: one line per try, a traceback only for a bug."""
        delay = self.backoff.next_delay()
        cause = outages.transient_cause(exc)
        log.warning(
            "worker %s: %s; next try in %.1f s",
            self.worker_id,
            cause or f"{type(exc).__name__}: {exc}",
            delay,
            exc_info=cause is None and self.backoff.failures == 1,
        )
        return delay

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

    With OCR on, KB_OCR_WORKERS more threads: a thread OCRing a scan (minutes) is taken
    from no one, and since a scan that finds every OCR process busy goes back to the
    queue, at least the configured number of threads stay free for other documents.
    """
    threads = rt.settings.effective_worker_threads
    if rt.settings.ocr_active:
        threads += rt.settings.ocr_workers
    workers = [Worker(rt) for _ in range(threads)]
    started = [w.start_thread() for w in workers]

    def stop() -> None:
        for w in workers:
            w.stop()
        for t in started:
            t.join(timeout=30)

    return stop
