"""Parsing runs in a child process with a time and a memory limit; hitting either fails
only that document, with a reason a person understands, and the next one parses."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.runtime import Runtime
from app.settings import Settings
from ingest.errors import IngestError
from ingest.sandbox import parse_isolated
from ingest.worker import Worker
from tests import pdfgen
from tests.test_pipeline import GUIDE_MD, LEAVE_MD, doc, upload


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
        slow = upload(rt, "guide.md", GUIDE_MD.encode())
        outcomes = Worker(rt).run_until_idle()
        assert [o.status for o in outcomes] == ["failed"]
        assert "took longer than" in (doc(rt, slow).error or "")
        rt.settings = rt.settings.model_copy(update={"parse_timeout_seconds": 60})
        fine = upload(rt, "leave.md", LEAVE_MD.encode())
        assert [o.status for o in Worker(rt).run_until_idle()] == ["ready"]
        assert doc(rt, fine).status == "ready"
    finally:
        rt.close()
