"""Parse each file in a child process with a time and a memory limit.

A hostile or broken file can make a parser loop, recurse without end or allocate without
bound. In a child process that costs only the child: it is killed at the time limit, its
address space is capped, and the worker goes on with the next document.

Each worker thread keeps one long-lived parser process (started through a forkserver that
has imported the parsers), so a document costs a message, not a Python start-up; a child
that is killed or dies is replaced on the next document.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import resource
import signal
import threading
from pathlib import Path
from typing import Any

from ingest.errors import IngestError
from ingest.types import ParsedDocument

_local = threading.local()


def _serve(memory_mb: int, conn: multiprocessing.connection.Connection) -> None:
    """The child: parse the files it is sent until the pipe closes."""
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # pypdf warns once per odd object: a malformed file can write megabytes of warnings
    # into the worker's log. Our parsers log what a person needs (pages that failed).
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    from ingest.parse import parse

    while True:
        try:
            path, filename = conn.recv()
        except EOFError:
            return
        try:
            reply: tuple[str, Any] = ("ok", parse(Path(path), filename=filename))
        except IngestError as exc:
            reply = ("bad", exc.reason)
        except MemoryError:
            reply = ("memory", "")
        except RecursionError:
            reply = ("bad", "the file is nested too deeply to be read (it may be malformed)")
        except Exception as exc:  # any parser crash is this file's problem, not the worker's
            reply = ("bad", f"the file could not be read ({type(exc).__name__}: {exc})"[:500])
        try:
            conn.send(reply)
        except MemoryError:
            conn.send(("memory", ""))


class _ParserProcess:
    def __init__(self, memory_mb: int) -> None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["ingest.parse"])
        self.memory_mb = memory_mb
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(memory_mb, child), daemon=True)
        self.proc.start()
        child.close()

    def alive(self) -> bool:
        return bool(self.proc.is_alive())

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()

    def parse(self, path: Path, filename: str | None, timeout_s: float) -> tuple[str, Any]:
        self.conn.send((str(path), filename))
        if not self.conn.poll(timeout_s):
            self.kill()
            raise IngestError(
                f"reading the file took longer than {timeout_s:g} s and was stopped; "
                "it may be malformed or far larger than it looks"
            )
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            # The child died: out of memory in C code (PDFium aborts) or a crash.
            self.kill()
            return ("died", self.proc.exitcode)


def parse_isolated(
    path: Path, *, filename: str | None, timeout_s: float, memory_mb: int
) -> ParsedDocument:
    """``ingest.parse.parse`` in this thread's parser process; limits become IngestErrors."""
    proc: _ParserProcess | None = getattr(_local, "proc", None)
    if proc is None or not proc.alive() or proc.memory_mb != memory_mb:
        if proc is not None:
            proc.kill()
        proc = _local.proc = _ParserProcess(memory_mb)
    kind, value = proc.parse(path, filename, timeout_s)
    if kind == "ok":
        assert isinstance(value, ParsedDocument)
        return value
    if kind == "memory":
        proc.kill()  # its heap may be in a bad state: start a fresh one next time
        raise IngestError(
            f"reading the file needed more than {memory_mb} MB of memory and was stopped; "
            "it may be malformed (a decompression bomb, for example)"
        )
    if kind == "died":
        raise IngestError(
            f"the parser stopped unexpectedly while reading the file ({_exit_reason(value)}); "
            f"the file may be malformed, or need more than {memory_mb} MB of memory"
        )
    raise IngestError(str(value))


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit status {exitcode}"
