"""Parse each file in a child process with a time and a memory limit.

A hostile or broken file can make a parser loop, recurse without end or allocate without
bound. In a child process that costs only the child: it is killed at the time limit, its
address space is capped, and the worker goes on with the next document.

Each worker thread keeps one long-lived parser process (started through a forkserver that
has imported the parsers), so a document costs a message, not a Python start-up; a child
that is killed or dies is replaced on the next document.

OCR (scans: images, image-only PDF pages) runs apart, so it never starves ordinary
parsing: an ordinary parser process only finds out that a file needs OCR (and checks the
page cap); the file is then read again in an OCR process, one of at most
``OcrLimits.workers`` per worker process (a shared pool: waiting for one keeps no other
document waiting), with its own memory limit, a time budget per page and per document,
and the OCR model loaded once and kept for the next document.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import resource
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ingest.errors import IngestError, error_detail
from ingest.parse.ocr import OCR_PAGE_TIMEOUT, OCR_TIMEOUT, NeedsOcr, OcrConfig
from ingest.types import ParsedDocument

_local = threading.local()

# Called with (pages done, pages in all) as OCR goes; (0, 0) while it waits for its turn.
OcrProgress = Callable[[int, int], None]


class OcrBusy(Exception):
    """Every OCR process of this worker process is in use (``parse_isolated`` with
    ``ocr_wait=False``): the document should wait its turn in the queue, not here."""


@dataclass(frozen=True, slots=True)
class OcrLimits:
    """How OCR runs: the parser's settings and the OCR processes' limits."""

    config: OcrConfig
    workers: int = 1
    memory_mb: int = 4096
    page_timeout_s: float = 120.0
    timeout_s: float = 1800.0


def _serve(memory_mb: int, ocr: OcrConfig, conn: multiprocessing.connection.Connection) -> None:
    """The child: parse the files it is sent until the pipe closes."""
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # pypdf warns once per odd object: a malformed file can write megabytes of warnings
    # into the worker's log. Our parsers log what a person needs (pages that failed).
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    from ingest.parse import ocr as ocr_module
    from ingest.parse import parse

    # Each OCR'd page is reported at once: the parent keeps the per-page time budget.
    ocr_module.configure(ocr, progress=lambda done, total: conn.send(("page", done, total)))
    while True:
        try:
            path, filename = conn.recv()
        except EOFError:
            return
        try:
            reply: tuple[str, Any] = ("ok", parse(Path(path), filename=filename))
        except NeedsOcr as exc:
            reply = ("ocr", exc.pages)
        except IngestError as exc:
            reply = ("bad", exc.reason)
        except MemoryError:
            reply = ("memory", "")
        except RecursionError:
            reply = ("bad", "the file is nested too deeply to be read (it may be malformed)")
        except Exception as exc:  # any parser crash is this file's problem, not the worker's
            reply = (
                "bad",
                f"the file could not be read ({type(exc).__name__}: {error_detail(exc)})",
            )
        try:
            conn.send(reply)
        except MemoryError:
            conn.send(("memory", ""))


class _ParserProcess:
    def __init__(self, memory_mb: int, ocr: OcrConfig) -> None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["ingest.parse"])
        self.memory_mb = memory_mb
        self.ocr = ocr
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(memory_mb, ocr, child), daemon=True)
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
        kind, value = self._receive()
        return kind, value

    def parse_ocr(
        self, path: Path, filename: str | None, limits: OcrLimits, progress: OcrProgress | None
    ) -> tuple[str, Any]:
        """Parse with OCR: the child reports each page, and each page has its own budget
        within the document's."""
        self.conn.send((str(path), filename))
        start = time.monotonic()
        page_start, page, done = start, 1, 0
        while True:
            now = time.monotonic()
            doc_left = start + limits.timeout_s - now
            page_left = page_start + limits.page_timeout_s - now
            if not self.conn.poll(max(0.0, min(doc_left, page_left))):
                self.kill()
                if doc_left <= page_left:
                    raise IngestError(
                        OCR_TIMEOUT.format(seconds=f"{limits.timeout_s:g}", pages=done)
                    )
                raise IngestError(
                    OCR_PAGE_TIMEOUT.format(page=page, seconds=f"{limits.page_timeout_s:g}")
                )
            reply = self._receive()
            if reply[0] != "page":
                return reply[0], reply[1]
            _, done, total = reply
            page_start, page = time.monotonic(), done + 1
            if progress is not None and total:
                progress(done, total)

    def _receive(self) -> tuple[Any, ...]:
        """The child's next message: (kind, value), or ("page", done, total)."""
        try:
            reply: tuple[Any, ...] = self.conn.recv()
        except (EOFError, OSError):
            # The child died: out of memory in C code (PDFium aborts) or a crash.
            self.kill()
            return ("died", self.proc.exitcode)
        return reply


class _OcrPool:
    """At most ``size`` OCR processes, shared by the threads of this worker process; an
    idle one (its model loaded) is kept for the next document."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[_ParserProcess] = []
        self._closed = False

    def run(
        self,
        path: Path,
        filename: str | None,
        limits: OcrLimits,
        progress: OcrProgress | None,
        *,
        wait: bool,
    ) -> tuple[str, Any]:
        if not self._slots.acquire(blocking=False):
            if not wait:
                raise OcrBusy(f"all {self.size} OCR processes are busy")
            if progress is not None:
                progress(0, 0)  # waiting for a free OCR process
            self._slots.acquire()
        proc: _ParserProcess | None = None
        try:
            with self._lock:
                proc = self._idle.pop() if self._idle else None
            config = replace(limits.config, defer=False)
            if (
                proc is None
                or not proc.alive()
                or (proc.memory_mb, proc.ocr)
                != (
                    limits.memory_mb,
                    config,
                )
            ):
                if proc is not None:
                    proc.kill()
                proc = _ParserProcess(limits.memory_mb, config)
            kind, value = proc.parse_ocr(path, filename, limits, progress)
            if kind == "memory":
                proc.kill()
            return kind, value
        finally:
            if proc is not None and proc.alive():
                with self._lock:
                    if self._closed:
                        proc.kill()  # the pool was replaced (other settings) meanwhile
                    else:
                        self._idle.append(proc)
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for proc in self._idle:
                proc.kill()
            self._idle.clear()


_pool_lock = threading.Lock()
_pool: _OcrPool | None = None


def _ocr_pool(size: int) -> _OcrPool:
    global _pool
    with _pool_lock:
        if _pool is None or _pool.size != size:
            if _pool is not None:
                _pool.close()  # running ones finish and are not kept
            _pool = _OcrPool(size)
        return _pool


def parse_isolated(
    path: Path,
    *,
    filename: str | None,
    timeout_s: float,
    memory_mb: int,
    ocr: OcrLimits | None = None,
    ocr_progress: OcrProgress | None = None,
    ocr_wait: bool = True,
) -> ParsedDocument:
    """``ingest.parse.parse`` in this thread's parser process; limits become IngestErrors.

    A scan is read again in an OCR process when ``ocr`` is given (and enabled); without
    it, scans fail with a reason that says OCR is needed. When every OCR process is in
    use, this waits for one, or with ``ocr_wait=False`` raises :class:`OcrBusy`.
    """
    config = replace(ocr.config, defer=True) if ocr is not None else OcrConfig(enabled=False)
    proc: _ParserProcess | None = getattr(_local, "proc", None)
    if proc is None or not proc.alive() or (proc.memory_mb, proc.ocr) != (memory_mb, config):
        if proc is not None:
            proc.kill()
        proc = _local.proc = _ParserProcess(memory_mb, config)
    kind, value = proc.parse(path, filename, timeout_s)
    if kind == "memory":
        proc.kill()  # its heap may be in a bad state: start a fresh one next time
    if kind == "ocr" and ocr is not None:
        memory_mb = ocr.memory_mb
        kind, value = _ocr_pool(ocr.workers).run(path, filename, ocr, ocr_progress, wait=ocr_wait)
    if kind == "ok":
        assert isinstance(value, ParsedDocument)
        return value
    if kind == "memory":
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
