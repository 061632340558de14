"""Parsing runs in a child process with a time and a memory limit; hitting either fails
only that document, with a reason a person understands, and the next one parses."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.runtime import Runtime
from app.settings import Settings
from ingest import sandbox
from ingest.errors import IngestError
from ingest.sandbox import parse_isolated
from ingest.worker import Worker
from tests import hostile, pdfgen
from tests.factories import get_document, store_upload
from tests.samples import GUIDE_MD, LEAVE_MD


def test_a_parse_that_runs_too_long_is_stopped_and_the_next_one_works(tmp_path: Path) -> None:
    pdf = pdfgen.english_outline_pdf(tmp_path)
    md = tmp_path / "guide.md"
    md.write_text(GUIDE_MD, encoding="utf-8")
    with pytest.raises(IngestError, match=r"took longer than 0\.001 s"):
        parse_isolated(pdf, filename="slow.pdf", timeout_s=0.001, memory_mb=1024)
    parsed = parse_isolated(md, filename="guide.md", timeout_s=60, memory_mb=1024)
    assert parsed.title == "Orbit Notes Guide"


def test_a_parse_over_the_memory_limit_is_stopped(tmp_path: Path) -> None:
    big = tmp_path / "big.md"
    big.write_text("# Log\n\n" + "a line of the log that repeats\n" * 1_500_000, encoding="utf-8")
    with pytest.raises(IngestError, match="more than 64 MB of memory"):
        parse_isolated(big, filename="big.md", timeout_s=60, memory_mb=64)
    pdf = pdfgen.english_outline_pdf(tmp_path)
    assert parse_isolated(pdf, filename="ok.pdf", timeout_s=60, memory_mb=1024).page_count == 4


def test_parser_errors_cross_the_process_boundary_as_reasons(tmp_path: Path) -> None:
    bad = tmp_path / "x.pdf"
    bad.write_bytes(b"not a pdf at all")
    with pytest.raises(IngestError, match="not a PDF"):
        parse_isolated(bad, filename="x.pdf", timeout_s=60, memory_mb=1024)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_worker_fails_the_slow_document_alone(
    settings: Settings, embedders: object, tmp_path: Path
) -> None:
    rt = Runtime.create(settings.model_copy(update={"parse_timeout_seconds": 0.001}))
    rt.embedders = embedders  # type: ignore[assignment]
    try:
        slow = store_upload(rt, "guide.md", GUIDE_MD.encode())
        outcomes = Worker(rt).run_until_idle()
        assert [o.status for o in outcomes] == ["failed"]
        assert "took longer than" in (get_document(rt, slow).error or "")
        rt.settings = rt.settings.model_copy(update={"parse_timeout_seconds": 60})
        fine = store_upload(rt, "leave.md", LEAVE_MD.encode())
        assert [o.status for o in Worker(rt).run_until_idle()] == ["ready"]
        assert get_document(rt, fine).status == "ready"
    finally:
        rt.close()


def test_a_hung_parse_in_one_thread_does_not_hold_up_another(tmp_path: Path) -> None:
    """Each worker thread has its own parser process: while one is stuck on a hostile
    file until its time limit, the other thread's documents parse as usual."""
    slow = tmp_path / "pages27k.pdf"
    slow.write_bytes(hostile.page_count_fanout_pdf(30, 3))  # 27 000 pages: minutes to read
    md = tmp_path / "guide.md"
    md.write_text(GUIDE_MD, encoding="utf-8")
    with ThreadPoolExecutor(max_workers=2) as pool:
        stuck = pool.submit(
            parse_isolated, slow, filename="pages27k.pdf", timeout_s=4, memory_mb=1024
        )

        def good_ones() -> tuple[list[str | None], float]:
            started = time.monotonic()
            titles = [
                parse_isolated(md, filename="guide.md", timeout_s=60, memory_mb=1024).title
                for _ in range(5)
            ]
            return titles, time.monotonic() - started

        titles, took = pool.submit(good_ones).result()
        assert titles == ["Orbit Notes Guide"] * 5
        assert not stuck.done() and took < 4  # done while the other thread still waits
        with pytest.raises(IngestError, match="took longer than 4 s"):
            stuck.result()


def test_a_parser_that_crashes_is_reported_as_a_crash_and_replaced(tmp_path: Path) -> None:
    """A child killed by a signal (a segfault in PDFium, say) is not mistaken for a file
    over the memory limit, and the next document gets a fresh parser."""
    slow = tmp_path / "pages27k.pdf"
    slow.write_bytes(hostile.page_count_fanout_pdf(30, 3))
    md = tmp_path / "guide.md"
    md.write_text(GUIDE_MD, encoding="utf-8")

    def parser_pid() -> int:
        # The parser belongs to the thread that parses; start it with a good file.
        parse_isolated(md, filename="guide.md", timeout_s=60, memory_mb=1024)
        pid = sandbox._local.proc.proc.pid
        assert isinstance(pid, int)
        return pid

    with ThreadPoolExecutor(max_workers=1) as pool:
        pid = pool.submit(parser_pid).result()
        result = pool.submit(
            parse_isolated, slow, filename="pages27k.pdf", timeout_s=60, memory_mb=1024
        )
        time.sleep(1)  # well into the 27 000 pages
        os.kill(pid, signal.SIGSEGV)
        with pytest.raises(IngestError, match=r"stopped unexpectedly .*signal SIGSEGV"):
            result.result()
        again = pool.submit(parse_isolated, md, filename="guide.md", timeout_s=60, memory_mb=1024)
        assert again.result().title == "Orbit Notes Guide"
