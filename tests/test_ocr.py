"""OCR of scans (the [ocr] extra, RapidOCR): images and the image-only pages of PDFs.

The "scans" are our own text (tests/scangen.py) drawn with reportlab and rendered with
pypdfium2; OCR really runs (no mocks). Pages are small cards of large text: a page takes
about a second on two cores.
"""

from __future__ import annotations

import difflib
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.documents.models import DocumentStatus
from app.jobs.models import Job
from app.runtime import Runtime
from app.search.service import search
from ingest.errors import IngestError
from ingest.parse import ocr, parse
from ingest.parse.ocr import OcrConfig
from ingest.pipeline import OCR_PAGE, OCR_WAITING
from ingest.sandbox import OcrBusy, OcrLimits, parse_isolated
from ingest.worker import Worker
from tests import pdfgen, scangen
from tests.factories import get_document, store_upload

pytestmark = pytest.mark.skipif(not ocr.available(), reason="the [ocr] extra is not installed")

# Measured on these cards at 200 dpi (bench/ocr.py): 1.00 for both languages; the bound
# leaves room for another ONNX Runtime build's rounding.
MIN_SIMILARITY = 0.9
ROOT = Path(__file__).resolve().parent.parent


def similarity(expected: str, got: str) -> float:
    return difflib.SequenceMatcher(None, "".join(expected.split()), "".join(got.split())).ratio()


@pytest.fixture
def ocr_on() -> Iterator[OcrConfig]:
    config = OcrConfig(enabled=True, threads=2)
    ocr.configure(config)
    try:
        yield config
    finally:
        ocr.configure(OcrConfig())


def test_png_is_read_into_ocr_blocks_with_confidence(tmp_path: Path, ocr_on: OcrConfig) -> None:
    png = scangen.scan(tmp_path / "notice.png", scangen.ENGLISH_LINES, cjk=False)
    parsed = parse(png)
    assert parsed.page_count == 1
    assert {b.extractor for b in parsed.blocks} == {"ocr"}
    assert all(b.page == 1 and b.ocr_confidence is not None for b in parsed.blocks)
    assert all(0.5 < (b.ocr_confidence or 0) <= 1 for b in parsed.blocks)
    assert similarity(scangen.text_of(scangen.ENGLISH_LINES), parsed.text) >= MIN_SIMILARITY
    # Lines are grouped into paragraphs by the gaps between them; the large first line
    # is a heading.
    assert parsed.blocks[0].kind == "heading" and parsed.blocks[0].text == "Lumen Hub backup notice"
    assert len(parsed.blocks) == 3
    assert "every night at two o'clock" in parsed.blocks[1].text
    assert "ocr-pages=1" in parsed.notes


def test_chinese_jpeg_is_read(tmp_path: Path, ocr_on: OcrConfig) -> None:
    jpg = scangen.scan(tmp_path / "leave.jpg", scangen.CHINESE_LINES, cjk=True)
    parsed = parse(jpg)
    assert similarity(scangen.text_of(scangen.CHINESE_LINES), parsed.text) >= MIN_SIMILARITY
    assert any("带薪年假" in b.text for b in parsed.blocks)


def test_multi_page_tiff_gives_one_page_per_frame(tmp_path: Path, ocr_on: OcrConfig) -> None:
    pages = [(scangen.ENGLISH_LINES, False), (scangen.CHINESE_LINES, True)]
    tif = scangen.multi_tiff(tmp_path / "both.tif", pages)
    parsed = parse(tif)
    assert parsed.page_count == 2
    assert {b.page for b in parsed.blocks} == {1, 2}
    second = " ".join(b.text for b in parsed.blocks if b.page == 2)
    assert similarity(scangen.text_of(scangen.CHINESE_LINES), second) >= MIN_SIMILARITY


def test_mixed_pdf_ocrs_only_its_scanned_page(tmp_path: Path, ocr_on: OcrConfig) -> None:
    pdf = scangen.image_pdf(
        tmp_path / "mixed.pdf",
        [(scangen.CHINESE_LINES, True, False), (scangen.ENGLISH_LINES, False, True)],
    )
    parsed = parse(pdf)
    assert parsed.page_count == 2
    first = [b for b in parsed.blocks if b.page == 1]
    second = [b for b in parsed.blocks if b.page == 2]
    assert first and {b.extractor for b in first} == {"pypdf"}
    assert all(b.ocr_confidence is None for b in first)
    assert second and {b.extractor for b in second} == {"ocr"}
    assert all((b.ocr_confidence or 0) > 0.8 for b in second)
    text = " ".join(b.text for b in second)
    assert similarity(scangen.text_of(scangen.ENGLISH_LINES), text) >= MIN_SIMILARITY
    assert "ocr-pages=1" in parsed.notes


def test_page_cap_is_a_clear_reason(tmp_path: Path) -> None:
    ocr.configure(OcrConfig(enabled=True, max_pages=1))
    try:
        pdf = scangen.image_pdf(
            tmp_path / "scans.pdf",
            [(scangen.ENGLISH_LINES, False, True), (scangen.ENGLISH_LINES, False, True)],
        )
        with pytest.raises(IngestError) as info:
            parse(pdf)
        assert info.value.reason == ocr.TOO_MANY_PAGES.format(pages=2, limit=1)
        tif = scangen.multi_tiff(
            tmp_path / "two.tif", [(scangen.ENGLISH_LINES, False), (scangen.ENGLISH_LINES, False)]
        )
        with pytest.raises(IngestError, match="KB_OCR_MAX_PAGES"):
            parse(tif)
        # A PDF mostly of text is read without OCR over the cap, not refused.
        ocr.configure(OcrConfig(enabled=True, max_pages=0))
        mostly_text = scangen.image_pdf(
            tmp_path / "mostly-text.pdf",
            [
                (scangen.ENGLISH_LINES, False, False),
                (scangen.CHINESE_LINES, True, False),
                (scangen.ENGLISH_LINES, False, True),
            ],
        )
        parsed = parse(mostly_text)
        assert {b.page for b in parsed.blocks} == {1, 2}
        assert "ocr-skipped-pages=1" in parsed.notes
    finally:
        ocr.configure(OcrConfig())


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    png = scangen.scan(tmp_path / "big.png", scangen.ENGLISH_LINES, cjk=False)
    ocr.configure(OcrConfig(enabled=True, max_megapixels=0.5))
    try:
        with pytest.raises(IngestError) as info:
            parse(png)
    finally:
        ocr.configure(OcrConfig())
    assert "over the limit of 0.5 megapixels" in info.value.reason


def test_a_png_that_is_text_is_refused_with_a_reason(tmp_path: Path, ocr_on: OcrConfig) -> None:
    fake = tmp_path / "photo.png"
    fake.write_text("not a picture at all, only words\n", encoding="utf-8")
    with pytest.raises(IngestError) as info:
        parse(fake)
    assert info.value.reason == ocr.NOT_AN_IMAGE.format(suffix=".png")
    truncated = tmp_path / "cut.png"
    whole = scangen.scan(tmp_path / "whole.png", scangen.ENGLISH_LINES, cjk=False).read_bytes()
    truncated.write_bytes(whole[:200])
    with pytest.raises(IngestError, match="could not be decoded"):
        parse(truncated)


def test_without_ocr_a_scan_needs_ocr_and_says_how_to_enable_it(tmp_path: Path) -> None:
    ocr.configure(OcrConfig(enabled=False))
    with pytest.raises(IngestError) as info:
        parse(pdfgen.scanned_pdf(tmp_path))
    assert info.value.reason == ocr.PDF_NEEDS_OCR
    assert "needs OCR" in info.value.reason and "pip install 'kb[ocr]'" in info.value.reason
    png = scangen.scan(tmp_path / "notice.png", scangen.ENGLISH_LINES, cjk=False)
    with pytest.raises(IngestError) as info:
        parse(png)
    assert info.value.reason == ocr.IMAGE_NEEDS_OCR
    # A mixed PDF keeps its text pages and says the scanned one was left unread.
    pdf = scangen.image_pdf(
        tmp_path / "mixed.pdf",
        [(scangen.ENGLISH_LINES, False, False), (scangen.CHINESE_LINES, True, True)],
    )
    parsed = parse(pdf)
    assert {b.page for b in parsed.blocks} == {1}
    assert "ocr-skipped-pages=1" in parsed.notes


def test_without_the_extra_installed_a_scan_needs_ocr(tmp_path: Path) -> None:
    """The real import failing (the package made unimportable in a fresh interpreter),
    with OCR switched on in the settings."""
    pdf = pdfgen.scanned_pdf(tmp_path)
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["rapidocr_onnxruntime"] = None  # import fails, as when not installed
        from ingest.errors import IngestError
        from ingest.parse import ocr, parse
        ocr.configure(ocr.OcrConfig(enabled=True))
        assert not ocr.available()
        try:
            parse(__import__("pathlib").Path({str(pdf)!r}))
        except IngestError as exc:
            print(exc.reason)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ocr.PDF_NEEDS_OCR


def test_the_models_load_from_the_installed_package_without_network(tmp_path: Path) -> None:
    """In a fresh interpreter whose sockets cannot connect, with an empty home (no model
    cache): the engine loads its models from the wheel and reads a scan."""
    png = scangen.scan(tmp_path / "notice.png", scangen.ENGLISH_LINES, cjk=False)
    script = textwrap.dedent(
        f"""
        import socket
        def refuse(*args, **kwargs):
            raise OSError("no network in this test")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        from pathlib import Path
        import rapidocr_onnxruntime
        from ingest.parse import ocr, parse
        ocr.configure(ocr.OcrConfig(enabled=True, threads=1))
        engine = ocr.engine()
        package = Path(rapidocr_onnxruntime.__file__).parent
        for part in (engine.text_det.infer, engine.text_rec.session):
            assert Path(part.session._model_path).is_relative_to(package), part
        print(parse(Path({str(png)!r})).blocks[0].text)
        """
    )
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Lumen Hub backup notice"


def test_sandbox_hands_scans_to_the_ocr_process_with_page_progress(tmp_path: Path) -> None:
    tif = scangen.multi_tiff(
        tmp_path / "two.tif", [(scangen.ENGLISH_LINES, False), (scangen.CHINESE_LINES, True)]
    )
    limits = OcrLimits(config=OcrConfig(enabled=True, threads=2), workers=1, memory_mb=4096)
    seen: list[tuple[int, int]] = []
    parsed = parse_isolated(
        tif,
        filename="two.tif",
        timeout_s=60,
        memory_mb=1024,
        ocr=limits,
        ocr_progress=lambda done, total: seen.append((done, total)),
    )
    assert parsed.page_count == 2 and {b.extractor for b in parsed.blocks} == {"ocr"}
    assert seen == [(0, 2), (1, 2), (2, 2)]
    # Without OCR limits (as before), the ordinary parser says OCR is needed.
    with pytest.raises(IngestError) as info:
        parse_isolated(tif, filename="two.tif", timeout_s=60, memory_mb=1024)
    assert info.value.reason == ocr.IMAGE_NEEDS_OCR
    # Too slow a page stops the OCR process with a reason; the next document is read.
    slow = OcrLimits(config=limits.config, memory_mb=4096, page_timeout_s=0.001)
    with pytest.raises(IngestError) as info:
        parse_isolated(tif, filename="two.tif", timeout_s=60, memory_mb=1024, ocr=slow)
    assert info.value.reason == ocr.OCR_PAGE_TIMEOUT.format(page=1, seconds="0.001")
    md = tmp_path / "a.md"
    md.write_text("# Notes\n\nPlain text still parses.\n", encoding="utf-8")
    assert parse_isolated(md, filename="a.md", timeout_s=60, memory_mb=1024, ocr=limits).blocks


def test_ocr_never_holds_up_ordinary_parsing(tmp_path: Path) -> None:
    """While the one OCR process reads a scan, another scan is told OCR is busy (it waits
    in the queue, not in a worker thread) and a text file parses at once."""
    pages = [(scangen.ENGLISH_LINES, False), (scangen.CHINESE_LINES, True)] * 3
    tif = scangen.multi_tiff(tmp_path / "six.tif", pages)
    png = scangen.scan(tmp_path / "notice.png", scangen.ENGLISH_LINES, cjk=False)
    md = tmp_path / "a.md"
    md.write_text("# Notes\n\nPlain text parses while OCR runs.\n", encoding="utf-8")
    limits = OcrLimits(config=OcrConfig(enabled=True, threads=1), workers=1, memory_mb=4096)
    started = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        long = pool.submit(
            parse_isolated,
            tif,
            filename="six.tif",
            timeout_s=60,
            memory_mb=1024,
            ocr=limits,
            ocr_progress=lambda done, total: started.set(),
        )
        assert started.wait(60)
        with pytest.raises(OcrBusy):
            parse_isolated(
                png, filename="notice.png", timeout_s=60, memory_mb=1024, ocr=limits, ocr_wait=False
            )
        t0 = time.monotonic()
        assert parse_isolated(md, filename="a.md", timeout_s=60, memory_mb=1024, ocr=limits).blocks
        assert time.monotonic() - t0 < 5
        assert not long.done()  # the scan was still being read meanwhile
        assert long.result(timeout=120).page_count == 6
    # Its turn come, the waiting scan is read.
    parsed = parse_isolated(
        png, filename="notice.png", timeout_s=60, memory_mb=1024, ocr=limits, ocr_wait=False
    )
    assert {b.extractor for b in parsed.blocks} == {"ocr"}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_scan_that_finds_ocr_busy_waits_in_the_queue(rt: Runtime, tmp_path: Path) -> None:
    from app.i18n import reason_translator
    from app.lifecycle import Outcome
    from ingest import sandbox

    rt.settings = rt.settings.model_copy(update={"ocr_enabled": True, "ocr_workers": 1})
    png = scangen.scan(tmp_path / "notice.png", scangen.ENGLISH_LINES, cjk=False)
    scan = store_upload(rt, "notice.png", png.read_bytes())
    pool = sandbox._ocr_pool(1)
    pool._slots.acquire()  # another document holds the only OCR process
    try:
        outcome = Worker(rt).run_once()
    finally:
        pool._slots.release()
    assert outcome is not None and outcome.ocr_busy and outcome.status == Outcome.WAITING
    doc = get_document(rt, scan)
    assert doc.status == DocumentStatus.QUEUED
    assert (doc.error or "").startswith("waiting: all OCR processes are busy; next try at ")
    assert reason_translator("zh")(doc.error).startswith("等待中：所有 OCR 进程都在忙")
    with rt.sessions() as s:
        job = s.scalars(select(Job).where(Job.document_id == scan)).one()
        assert job.attempts == 0  # the attempt was given back


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_image_is_ingested_searchable_and_flagged(
    rt: Runtime, admin: TestClient, tmp_path: Path
) -> None:
    # Every page counts as low-confidence at a threshold of 1.0: the flag is shown.
    rt.settings = rt.settings.model_copy(
        update={"ocr_enabled": True, "ocr_threads": 2, "ocr_low_confidence": 1.0}
    )
    png = scangen.scan(tmp_path / "notice.png", scangen.ENGLISH_LINES, cjk=False)
    jpg = scangen.scan(tmp_path / "leave.jpg", scangen.CHINESE_LINES, cjk=True)
    notice = store_upload(rt, "notice.png", png.read_bytes())
    leave = store_upload(rt, "leave.jpg", jpg.read_bytes())
    outcomes = Worker(rt).run_until_idle()
    assert [o.status for o in outcomes] == ["ready", "ready"]
    doc = get_document(rt, notice)
    assert doc.status == DocumentStatus.READY and doc.page_count == 1
    assert (doc.ocr_pages, doc.ocr_low_confidence_pages) == (1, [1])
    with rt.sessions() as s:
        job = s.scalars(select(Job).where(Job.document_id == notice)).one()
        assert job.status == "done"
    hits = search(rt, query="when does the hub copy the photos", k=1).hits
    assert hits[0].file == "notice.png"
    # Cross-lingual: an English question finds the Chinese scan.
    assert search(rt, query="paid annual leave days", k=1).hits[0].file == "leave.jpg"
    assert get_document(rt, leave).language == "zh"

    en = admin.get(f"/documents/{notice}").text
    assert "1 pages read from scans by OCR" in en
    assert "Low OCR confidence on pages 1: check their text against the original." in en
    zh = admin.get(f"/documents/{notice}", headers={"Accept-Language": "zh-CN"}).text
    assert "第 1 页的 OCR 置信度较低" in zh


@pytest.mark.parametrize("backend", ["sqlite"])
def test_ocr_progress_is_shown_on_the_documents_page(
    rt: Runtime, admin: TestClient, tmp_path: Path
) -> None:
    from app.db import transaction
    from app.documents.models import Document

    png = scangen.scan(tmp_path / "notice.png", scangen.ENGLISH_LINES, cjk=False)
    scan = store_upload(rt, "notice.png", png.read_bytes())
    with transaction(rt.sessions) as s:  # as the pipeline leaves it while page 3 is read
        s.get_one(Document, scan).status = DocumentStatus.PARSING
        job = s.scalars(select(Job).where(Job.document_id == scan)).one()
        job.progress, job.message = 0.04, OCR_PAGE.format(page=3, pages=12)
    assert "OCR page 3 of 12" in admin.get("/documents").text
    zh = admin.get("/documents", headers={"Accept-Language": "zh-CN"}).text
    assert "OCR 第 3 页，共 12 页" in zh
    assert reason_translator_zh(OCR_WAITING) == "等待 OCR"


def reason_translator_zh(text: str) -> str:
    from app.i18n import reason_translator

    return reason_translator("zh")(text)
