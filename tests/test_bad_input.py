"""Bad input through the real worker, on SQLite and PostgreSQL: each file fails alone with
a reason a person understands, and the documents around it are ingested as usual."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.documents.models import Chunk, Document, DocumentStatus
from app.runtime import Runtime
from app.search.service import search
from ingest.errors import IngestError
from ingest.sandbox import parse_isolated
from ingest.types import ParsedDocument
from ingest.worker import Worker
from tests import hostile, pdfgen
from tests.factories import get_document, store_upload
from tests.samples import GUIDE_MD, LEAVE_MD

BadFile = Callable[[Path], tuple[str, bytes]]


def _pdf(make: Callable[[Path], Path], name: str) -> BadFile:
    return lambda d: (name, make(d).read_bytes())


CASES: dict[str, tuple[BadFile, str]] = {
    "whitespace-only markdown": (lambda d: ("blank.md", b" \n\t\n  \n"), "empty"),
    "corrupt pdf": (_pdf(pdfgen.corrupt_pdf, "corrupt.pdf"), "damaged"),
    "truncated pdf": (_pdf(pdfgen.truncated_pdf, "cut.pdf"), "incomplete"),
    "broken xref": (_pdf(pdfgen.broken_xref_pdf, "xref.pdf"), "damaged"),
    "encrypted pdf": (
        _pdf(lambda d: pdfgen.encrypted_pdf(d, user_password="secret"), "locked.pdf"),
        "password",
    ),
    "scanned pdf": (_pdf(pdfgen.scanned_pdf, "scan.pdf"), "needs OCR"),
    "zero-page pdf": (_pdf(pdfgen.zero_page_pdf, "nopages.pdf"), "no pages"),
    "binary named .md": (
        lambda d: ("photo.md", bytes(range(256)) * 20),
        "binary",
    ),
    "markdown that lies about being a pdf": (
        lambda d: ("notes.pdf", b"# Notes\n\nNot a PDF at all.\n"),
        "not a PDF",
    ),
    "zip archive named .pdf": (lambda d: ("report.pdf", hostile.zip_bytes()), "not a PDF"),
    "png image named .md": (lambda d: ("photo.md", hostile.png_bytes()), "binary"),
    "pdf whose page tree loops": (lambda d: ("loop.pdf", hostile.page_tree_cycle_pdf()), "damaged"),
    "pdf with arrays nested 100k deep": (
        lambda d: ("deep.pdf", hostile.deeply_nested_array_pdf()),
        "damaged",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_file_fails_alone_with_a_clear_reason(rt: Runtime, tmp_path: Path, case: str) -> None:
    make, expected = CASES[case]
    before = store_upload(rt, "guide.md", GUIDE_MD.encode())
    name, data = make(tmp_path)
    bad = store_upload(rt, name, data)
    after = store_upload(rt, "leave.md", LEAVE_MD.encode())

    outcomes = Worker(rt).run_until_idle()

    assert [o.status for o in outcomes] == ["ready", "failed", "ready"]
    failed = get_document(rt, bad)
    assert failed.status == DocumentStatus.FAILED
    assert expected.lower() in (failed.error or "").lower()
    assert "Traceback" not in (failed.error or "")
    assert get_document(rt, before).status == get_document(rt, after).status == DocumentStatus.READY
    with rt.sessions() as s:
        assert s.scalar(select(func.count(Chunk.id)).where(Chunk.document_id == bad)) == 0
    assert search(rt, query="sick leave certificate", k=1).hits[0].file == "leave.md"


def test_owner_password_only_pdf_is_ingested(rt: Runtime, tmp_path: Path) -> None:
    pdf = pdfgen.encrypted_pdf(tmp_path, user_password="")
    doc_id = store_upload(rt, "owner-only.pdf", pdf.read_bytes())
    (outcome,) = Worker(rt).run_until_idle()
    assert outcome.status == "ready", outcome.error
    assert get_document(rt, doc_id).page_count == 4


def test_markdown_in_gb18030_and_with_bom_is_decoded(rt: Runtime) -> None:
    gb = store_upload(rt, "leave-gb.md", LEAVE_MD.encode("gb18030"))
    bom = store_upload(rt, "guide-bom.md", b"\xef\xbb\xbf" + GUIDE_MD.encode())
    utf16 = store_upload(rt, "leave-16.md", ("\ufeff" + LEAVE_MD + "\n").encode("utf-16-le"))
    assert [o.status for o in Worker(rt).run_until_idle()] == ["ready"] * 3
    assert get_document(rt, gb).title == "员工休假制度"
    assert get_document(rt, bom).title == "Orbit Notes Guide"  # the BOM is not part of the heading
    assert get_document(rt, utf16).title == "员工休假制度"
    hits = search(rt, query="病假需要医院证明吗", k=2).hits
    assert hits[0].file in {"leave-gb.md", "leave-16.md"} and "医院出具的证明" in hits[0].text


def test_chinese_pdf_is_found_from_english_at_its_page(rt: Runtime, tmp_path: Path) -> None:
    pdf = pdfgen.chinese_outline_pdf(tmp_path)
    doc_id = store_upload(rt, "leave-faq.pdf", pdf.read_bytes())
    store_upload(rt, "guide.md", GUIDE_MD.encode())
    Worker(rt).run_until_idle()
    d = get_document(rt, doc_id)
    assert d.status == DocumentStatus.READY and d.page_count == 2 and d.language == "zh"
    hit = search(rt, query="How is salary paid during sick leave?", k=1).hits[0]
    assert hit.file == "leave-faq.pdf"
    assert hit.page_start == 2
    assert hit.heading_path == ["第二章 病假", "病假期间工资怎么算？"]
    assert "全额发放工资" in hit.text


def test_english_pdf_chunks_follow_the_outline(rt: Runtime, tmp_path: Path) -> None:
    pdf = pdfgen.english_outline_pdf(tmp_path)
    doc_id = store_upload(rt, "lumen.pdf", pdf.read_bytes())
    Worker(rt).run_until_idle()
    with rt.sessions() as s:
        chunks = list(
            s.scalars(select(Chunk).where(Chunk.document_id == doc_id).order_by(Chunk.ordinal))
        )
        title = s.get_one(Document, doc_id).title
    assert title == pdfgen.ENGLISH_TITLE
    by_path = {" > ".join(c.heading_path): c for c in chunks}
    fedora = by_path["2 Installing > 2.1 On Linux > 2.1.2 Fedora"]
    assert fedora.page_start == fedora.page_end == 3
    debian = by_path["2 Installing > 2.1 On Linux > 2.1.1 Debian and Ubuntu"]
    # The section runs over a page break: its chunk spans both pages.
    assert (debian.page_start, debian.page_end) == (2, 3)
    assert "pairing number" in debian.text
    hit = search(rt, query="Fedora 上怎么安装代理程序？", k=1).hits[0]
    assert hit.heading_path[-1] == "2.1.2 Fedora"


# --- Hostile files straight through the sandbox -----------------------------------------
#
# Each is parsed by ``parse_isolated`` with a time and a memory limit, as the worker does:
# it must end (a parsed document, or an IngestError whose reason a person understands)
# within the time limit, and the next, good documents must parse in the same sandbox.

LIMIT_S = 10.0
MEMORY_MB = 1024


@dataclass(frozen=True)
class Hostile:
    filename: str
    make: Callable[[], bytes]
    # None: the file must parse. Else words of which the reason must contain one.
    reason: tuple[str, ...] | None
    timeout_s: float = LIMIT_S
    # For files that parse: what the document must hold.
    pages: int | None = None
    text: str | None = None
    # A reason must not blame this (e.g. "OCR" for a file that is not a scan).
    not_reason: str | None = None


DAMAGED = ("damaged",)
# What a decompression bomb may honestly be called: over a limit, or damaged.
BOMB = ("damaged", "size limit", "decompress", "memory", "took longer than")
TOO_SLOW = ("took longer than",)

HOSTILE: dict[str, Hostile] = {
    # Huge page counts.
    "page tree claims a billion pages": Hostile(
        "claims.pdf", hostile.page_count_claimed_pdf, None, pages=1, text="Hostile file test page"
    ),
    "page tree of 100k pages in a kilobyte": Hostile(
        "fanout.pdf", hostile.page_count_fanout_pdf, (*DAMAGED, *TOO_SLOW)
    ),
    # 27 000 real pages (one page object shared): reading them all takes minutes.
    "27k pages, stopped at the time limit": Hostile(
        "pages27k.pdf", lambda: hostile.page_count_fanout_pdf(30, 3), TOO_SLOW, timeout_s=3
    ),
    # Loops.
    "page tree kid points back to the root": Hostile(
        "cycle.pdf", hostile.page_tree_cycle_pdf, DAMAGED
    ),
    "page tree node is its own kid": Hostile("self.pdf", hostile.self_parent_pdf, DAMAGED),
    "xref /Prev points at itself": Hostile(
        "prev.pdf", hostile.xref_prev_loop_pdf, None, pages=1, text="Hostile file test page"
    ),
    # pypdf gives up on the stream; PDFium reads the page.
    "stream /Length refers to itself": Hostile(
        "length.pdf", hostile.indirect_length_loop_pdf, None, pages=1, text="Hostile file test page"
    ),
    "object stream stored inside itself": Hostile(
        "objstm.pdf", hostile.object_stream_loop_pdf, DAMAGED
    ),
    # Deep nesting.
    "array nested 100k deep": Hostile("deep-array.pdf", hostile.deeply_nested_array_pdf, DAMAGED),
    # pypdf recovers from the recursion limit (logging two warnings per level) and
    # PDFium reads the page.
    "dictionary nested 100k deep": Hostile(
        "deep-dict.pdf",
        hostile.deeply_nested_dict_pdf,
        None,
        pages=1,
        text="Hostile file test page",
    ),
    "content operand nested 100k deep": Hostile(
        "deep-content.pdf", hostile.deeply_nested_content_pdf, DAMAGED
    ),
    # Decompression bombs and floods.
    "flate bomb: 1 KB inflating to 200 MB": Hostile(
        "bomb.pdf", lambda: hostile.flate_bomb_pdf(200), BOMB, not_reason="OCR"
    ),
    "readable page, then a bomb page": Hostile(
        "text-bomb.pdf",
        lambda: hostile.text_then_bomb_pdf(100),
        None,
        pages=2,
        text="Hostile file test page",
    ),
    "bomb page, then a page without text": Hostile(
        "bomb-blank.pdf", lambda: hostile.bomb_and_blank_pdf(100), BOMB, not_reason="OCR"
    ),
    "60 MB of text operators in one page": Hostile(
        "flood.pdf", hostile.text_ops_flood_pdf, TOO_SLOW, timeout_s=3
    ),
    # Extensions that lie.
    "zip named .pdf": Hostile("archive.pdf", hostile.zip_bytes, ("not a PDF",)),
    "png named .pdf": Hostile("image.pdf", hostile.png_bytes, ("not a PDF",)),
    "html named .pdf": Hostile("download.pdf", hostile.html_bytes, ("not a PDF",)),
    "pdf named .md (read as the PDF it is)": Hostile(
        "notes.md", hostile.good_pdf, None, pages=1, text="Hostile file test page"
    ),
    "png named .md": Hostile("image.md", hostile.png_bytes, ("binary",)),
    "zip named .md": Hostile("archive.md", hostile.zip_bytes, ("binary",)),
    "markdown with NUL bytes": Hostile("nul.md", hostile.nul_bytes_md, ("binary",)),
    # Markdown that is hard to parse.
    "100k nested blockquotes": Hostile(
        "quotes.md", hostile.nested_blockquotes_md, None, text="the bottom of the well"
    ),
    "100k nested list items": Hostile("lists.md", hostile.nested_lists_md, None, text="item"),
    "50k nested link brackets and emphasis": Hostile(
        "brackets.md", lambda: hostile.nested_brackets_md(50_000), None, text="Brackets"
    ),
    "one 8 MB line": Hostile("long.md", hostile.long_line_md, None, text="lorem ipsum"),
}


def _good_files(directory: Path) -> tuple[Path, Path]:
    md = directory / "guide.md"
    md.write_text(GUIDE_MD, encoding="utf-8")
    return md, pdfgen.english_outline_pdf(directory)


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_file_ends_within_limits_and_the_next_one_parses(tmp_path: Path, case: str) -> None:
    spec = HOSTILE[case]
    path = tmp_path / spec.filename
    path.write_bytes(spec.make())

    started = time.monotonic()
    result: ParsedDocument | IngestError
    try:
        result = parse_isolated(
            path, filename=spec.filename, timeout_s=spec.timeout_s, memory_mb=MEMORY_MB
        )
    except IngestError as exc:
        result = exc
    took = time.monotonic() - started

    # Ended within the time limit (plus the kill and a little slack).
    assert took < spec.timeout_s + 5
    if spec.reason is None:
        assert isinstance(result, ParsedDocument), getattr(result, "reason", result)
        if spec.pages is not None:
            assert result.page_count == spec.pages
        if spec.text is not None:
            assert spec.text in result.text
    else:
        assert isinstance(result, IngestError), f"parsed: {result.text[:200]!r}"
        reason = result.reason
        assert any(word.lower() in reason.lower() for word in spec.reason), reason
        assert "Traceback" not in reason and len(reason) < 600
        if spec.not_reason:
            assert spec.not_reason.lower() not in reason.lower(), reason

    # The sandbox goes on: the next documents parse as usual.
    md, pdf = _good_files(tmp_path)
    assert parse_isolated(md, filename="guide.md", timeout_s=60, memory_mb=MEMORY_MB).title == (
        "Orbit Notes Guide"
    )
    assert parse_isolated(pdf, filename="ok.pdf", timeout_s=60, memory_mb=MEMORY_MB).page_count == 4


def test_many_hostile_files_in_a_row_leave_the_sandbox_working(tmp_path: Path) -> None:
    """A run of bad files back to back (as a bad folder upload gives), each failing alone."""
    md, pdf = _good_files(tmp_path)
    quick = [
        "page tree kid points back to the root",
        "object stream stored inside itself",
        "array nested 100k deep",
        "zip named .pdf",
        "markdown with NUL bytes",
        "100k nested blockquotes",
    ]
    for case in quick:
        spec = HOSTILE[case]
        path = tmp_path / spec.filename
        path.write_bytes(spec.make())
        with contextlib.suppress(IngestError):
            parse_isolated(path, filename=spec.filename, timeout_s=LIMIT_S, memory_mb=MEMORY_MB)
        good = parse_isolated(md, filename="guide.md", timeout_s=60, memory_mb=MEMORY_MB)
        assert good.title == "Orbit Notes Guide"
    assert parse_isolated(pdf, filename="ok.pdf", timeout_s=60, memory_mb=MEMORY_MB).page_count == 4
