"""Which errors mean the infrastructure is failing (a full disk, a database that is down
or busy) rather than a bug or a bad input: a job waits for it, a request answers 503/507.

Classified from the driver's own error (SQLite codes, PostgreSQL SQLSTATEs, errno), not
from SQLAlchemy's wrapper class alone, which says "OperationalError" for all of them.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

DISK_FULL = "the disk is full"
DISK_UNWRITABLE = "the disk cannot be written"
DATABASE_UNAVAILABLE = "the database is unavailable"
DATABASE_BUSY = "the database is busy"

_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_UNWRITABLE_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}
_PG_UNWRITABLE = {"25006", "58030"}  # read-only SQL transaction (a hot standby), I/O error
# SQLite's "database or disk is full", PostgreSQL's "could not extend file ...: No space
# left on device" (SQLSTATE 53100), and the OS's own text when an error was re-wrapped.
_DISK_FULL_TEXTS = ("database or disk is full", "no space left on device", "could not extend file")
_PG_UNAVAILABLE = {"57P01", "57P02", "57P03", "53300"}  # shut down, crashed, starting, full
_PG_BUSY = {"40001", "40P01"}  # serialization failure, deadlock: retrying is the cure


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, the driver error SQLAlchemy wraps, and explicit causes (``raise from``).

    Implicit context is not followed: a bug raised while handling an outage is a bug.
    """
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        for nxt in (getattr(e, "orig", None), e.__cause__):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def _driver_cause(e: BaseException) -> str | None:
    if isinstance(e, sqlite3.Error):
        code = (getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF  # primary code of an extended one
        if code == sqlite3.SQLITE_FULL:
            return DISK_FULL
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return DATABASE_BUSY
        if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR):
            return DISK_UNWRITABLE
        return DATABASE_UNAVAILABLE if code == sqlite3.SQLITE_CANTOPEN else None
    sqlstate = getattr(e, "sqlstate", "")  # psycopg; None on a connection-level failure
    if sqlstate == "53100":
        return DISK_FULL
    if sqlstate in _PG_UNWRITABLE:
        return DISK_UNWRITABLE
    if sqlstate in _PG_BUSY:
        return DATABASE_BUSY
    if sqlstate in _PG_UNAVAILABLE or (sqlstate or "").startswith("08"):
        return DATABASE_UNAVAILABLE
    if sqlstate is None and type(e).__name__ == "OperationalError":
        return DATABASE_UNAVAILABLE  # connection refused, server closed the connection
    return None


def transient_cause(exc: BaseException) -> str | None:
    """The infrastructure condition behind ``exc`` in words for a person, or None.

    None means the error is not a known outage (a bug, a bad input, an embedder error):
    the caller handles it as before, with counted attempts.
    """
    causes = list(_causes(exc))
    for e in causes:
        if isinstance(e, OSError) and e.errno in _DISK_FULL_ERRNOS:
            return DISK_FULL
        if any(t in str(e).lower() for t in _DISK_FULL_TEXTS):
            return DISK_FULL
        if isinstance(e, OSError) and e.errno in _UNWRITABLE_ERRNOS:
            return DISK_UNWRITABLE
    for e in causes:
        if isinstance(e, DBAPIError) and e.connection_invalidated:
            return DATABASE_UNAVAILABLE
        if isinstance(e, PoolTimeout):  # every pooled connection is in use
            return DATABASE_BUSY
        cause = _driver_cause(e)
        if cause is not None:
            return cause
    return None
