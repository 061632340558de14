"""Database engine, sessions and migrations (SQLite by default, PostgreSQL for a team)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Engine,
    MetaData,
    any_,
    bindparam,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from app.filemodes import private_sqlite

# Named constraints so that Alembic migrations are stable across SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """Naive UTC now: both backends store and compare it the same way."""
    return datetime.now(UTC).replace(tzinfo=None)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    # WAL lets the web process read while the worker writes; busy_timeout makes
    # concurrent writers wait instead of failing with "database is locked".
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str, *, pool_size: int = 10, pool_timeout: float = 30.0) -> Engine:
    """Create an engine for ``url``; SQLite gets pragmas and its parent folder.

    ``pool_size`` connections are kept, with no overflow: the caller sizes it to the
    threads that may hold one at once, and a wait past ``pool_timeout`` raises
    ``sqlalchemy.exc.TimeoutError`` (answered 503) instead of queueing for ever.
    """
    pool = {"pool_size": pool_size, "max_overflow": 0, "pool_timeout": pool_timeout}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            private_sqlite(Path(path))  # 600, and its -wal/-shm with it
            pool_args: dict[str, Any] = pool
        else:
            pool_args = {}  # an in-memory database lives in one connection (StaticPool)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **pool_args
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **pool)


def ids_param(column: Any, *, postgres: bool) -> ColumnElement[bool]:
    """``column IN :ids`` with the ids bound when the statement runs (``{"ids": [...]}``),
    for a statement built once at import: building and caching a statement per call costs
    more CPU than the read itself. On PostgreSQL one array parameter (``= ANY``): the
    statement's text is the same for any number of ids, so psycopg prepares it once, and
    no parameter per id is rendered, sent and parsed."""
    if postgres:
        return cast(ColumnElement[bool], column == any_(bindparam("ids", type_=ARRAY(BigInteger))))
    return cast(ColumnElement[bool], column.in_(bindparam("ids", expanding=True)))


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def make_read_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions for requests that only read (the search API). On PostgreSQL they run in
    autocommit: each statement sees what was committed when it began, as it does in the
    READ COMMITTED transaction of a plain session, without that transaction's BEGIN and
    ROLLBACK round trips. SQLite keeps its transaction, whose snapshot spans the
    statements. Nothing may be written through them: it would be committed at once."""
    if engine.dialect.name != "postgresql":
        return make_sessionmaker(engine)
    # Shares the engine's pool; autocommit is set on checkout and reset on return.
    return make_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error."""
    with factory() as session, session.begin():
        yield session


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the newest (or the given) Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:
            # Batch migrations copy a table and drop the old one; with foreign keys on,
            # that DROP would cascade and delete every chunk of every document.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()
