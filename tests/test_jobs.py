"""Jobs on real SQLite and PostgreSQL: claiming, leases, retries, one claim per job."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select

from app import lifecycle
from app.db import transaction, utcnow
from app.jobs import service as jobs
from app.jobs.models import Job, JobStatus
from app.runtime import Runtime


def _enqueue(rt: Runtime, n: int = 1) -> list[int]:
    with transaction(rt.sessions) as s:
        return [jobs.enqueue(s, kind="ingest", payload={"document_id": i}).id for i in range(n)]


def test_claim_takes_oldest_and_sets_lease(rt: Runtime) -> None:
    first, _second = _enqueue(rt, 2)
    with transaction(rt.sessions) as s:
        job = jobs.claim(s, worker_id="w1", lease_s=60)
        assert job is not None
        assert job.id == first
        assert job.status == JobStatus.RUNNING
        assert job.attempts == 1
        assert job.worker_id == "w1"
        assert job.lease_expires_at is not None and job.lease_expires_at > utcnow()


def test_running_job_is_not_claimed_again_until_its_lease_expires(rt: Runtime) -> None:
    (job_id,) = _enqueue(rt)
    with transaction(rt.sessions) as s:
        assert jobs.claim(s, worker_id="w1", lease_s=60) is not None
    with transaction(rt.sessions) as s:
        assert jobs.claim(s, worker_id="w2", lease_s=60) is None
        # The first worker dies: its lease runs out.
        s.get_one(Job, job_id).lease_expires_at = utcnow() - timedelta(seconds=1)
    with transaction(rt.sessions) as s:
        job = jobs.claim(s, worker_id="w2", lease_s=60)
        assert job is not None and job.id == job_id and job.attempts == 2
    # The dead worker's heartbeat now finds the job gone from it.
    with transaction(rt.sessions) as s:
        try:
            jobs.heartbeat(s, job_id=job_id, worker_id="w1", lease_s=60)
            raise AssertionError("heartbeat of a lost lease must raise")
        except jobs.LeaseLost:
            pass


def test_concurrent_workers_never_claim_the_same_job(rt: Runtime) -> None:
    ids = _enqueue(rt, 20)
    claimed: list[int] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        while True:
            with transaction(rt.sessions) as s:
                job = jobs.claim(s, worker_id=name, lease_s=60)
                if job is None:
                    # Either the queue is empty or another worker won this row: look again.
                    left = s.scalar(select(Job.id).where(Job.status == JobStatus.QUEUED).limit(1))
                    if left is None:
                        return
                    continue
                lifecycle.finish_job(job)
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(claimed) == sorted(ids)


def test_retry_later_backs_off_then_gives_up(rt: Runtime) -> None:
    with transaction(rt.sessions) as s:
        job_id = jobs.enqueue(s, kind="ingest", payload={}, max_attempts=2).id
    with transaction(rt.sessions) as s:
        job = jobs.claim(s, worker_id="w", lease_s=60)
        assert job is not None
        assert lifecycle.retry_job_later(job, reason="embedder unreachable")
        assert job.status == JobStatus.QUEUED
        assert job.run_after >= utcnow() - timedelta(seconds=1)
        assert job.error == "embedder unreachable"
        job.run_after = utcnow() - timedelta(seconds=1)  # skip the wait
    with transaction(rt.sessions) as s:
        job = jobs.claim(s, worker_id="w", lease_s=60)
        assert job is not None and job.attempts == 2
        assert not lifecycle.retry_job_later(job, reason="embedder unreachable")
        assert job.status == JobStatus.FAILED
        assert "gave up after 2 attempts" in (job.error or "")
    with transaction(rt.sessions) as s:
        assert s.get_one(Job, job_id).status == JobStatus.FAILED


def test_backoff_grows_and_is_capped() -> None:
    assert all(0 <= jobs.backoff_seconds(1) <= 2 for _ in range(50))
    assert max(jobs.backoff_seconds(4) for _ in range(200)) > 2
    assert all(jobs.backoff_seconds(30, cap=10) <= 10 for _ in range(50))
