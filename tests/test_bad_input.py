"""Bad input through the real worker, on SQLite and PostgreSQL: each file fails alone with
a reason a person understands, and the documents around it are ingested as usual."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.documents.models import Chunk, Document, DocumentStatus
from app.runtime import Runtime
from app.search.service import search
from ingest.worker import Worker
from tests import pdfgen
from tests.test_pipeline import GUIDE_MD, LEAVE_MD, doc, upload

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
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_file_fails_alone_with_a_clear_reason(rt: Runtime, tmp_path: Path, case: str) -> None:
    make, expected = CASES[case]
    before = upload(rt, "guide.md", GUIDE_MD.encode())
    name, data = make(tmp_path)
    bad = upload(rt, name, data)
    after = upload(rt, "leave.md", LEAVE_MD.encode())

    outcomes = Worker(rt).run_until_idle()

    assert [o.status for o in outcomes] == ["ready", "failed", "ready"]
    failed = doc(rt, bad)
    assert failed.status == DocumentStatus.FAILED
    assert expected.lower() in (failed.error or "").lower()
    assert "Traceback" not in (failed.error or "")
    assert doc(rt, before).status == doc(rt, after).status == DocumentStatus.READY
    with rt.sessions() as s:
        assert s.scalar(select(func.count(Chunk.id)).where(Chunk.document_id == bad)) == 0
    assert search(rt, query="sick leave certificate", k=1).hits[0].file == "leave.md"


def test_owner_password_only_pdf_is_ingested(rt: Runtime, tmp_path: Path) -> None:
    pdf = pdfgen.encrypted_pdf(tmp_path, user_password="")
    doc_id = upload(rt, "owner-only.pdf", pdf.read_bytes())
    (outcome,) = Worker(rt).run_until_idle()
    assert outcome.status == "ready", outcome.error
    assert doc(rt, doc_id).page_count == 4


def test_markdown_in_gb18030_and_with_bom_is_decoded(rt: Runtime) -> None:
    gb = upload(rt, "leave-gb.md", LEAVE_MD.encode("gb18030"))
    bom = upload(rt, "guide-bom.md", b"\xef\xbb\xbf" + GUIDE_MD.encode())
    utf16 = upload(rt, "leave-16.md", ("\ufeff" + LEAVE_MD + "\n").encode("utf-16-le"))
    assert [o.status for o in Worker(rt).run_until_idle()] == ["ready"] * 3
    assert doc(rt, gb).title == "员工休假制度"
    assert doc(rt, bom).title == "Orbit Notes Guide"  # the BOM is not part of the heading
    assert doc(rt, utf16).title == "员工休假制度"
    hits = search(rt, query="病假需要医院证明吗", k=2).hits
    assert hits[0].file in {"leave-gb.md", "leave-16.md"} and "医院出具的证明" in hits[0].text


def test_chinese_pdf_is_found_from_english_at_its_page(rt: Runtime, tmp_path: Path) -> None:
    pdf = pdfgen.chinese_outline_pdf(tmp_path)
    doc_id = upload(rt, "leave-faq.pdf", pdf.read_bytes())
    upload(rt, "guide.md", GUIDE_MD.encode())
    Worker(rt).run_until_idle()
    d = doc(rt, doc_id)
    assert d.status == DocumentStatus.READY and d.page_count == 2 and d.language == "zh"
    hit = search(rt, query="How is salary paid during sick leave?", k=1).hits[0]
    assert hit.file == "leave-faq.pdf"
    assert hit.page_start == 2
    assert hit.heading_path == ["第二章 病假", "病假期间工资怎么算？"]
    assert "全额发放工资" in hit.text


def test_english_pdf_chunks_follow_the_outline(rt: Runtime, tmp_path: Path) -> None:
    pdf = pdfgen.english_outline_pdf(tmp_path)
    doc_id = upload(rt, "lumen.pdf", pdf.read_bytes())
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
