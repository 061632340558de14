"""PDF parsing on real generated files: outline headings, pages, Chinese, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.chunk import chunk
from ingest.errors import IngestError
from ingest.parse import parse, parse_pdf
from ingest.types import BlockKind, ParsedDocument
from tests import pdfgen


@pytest.fixture(scope="module")
def pdf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pdfs")


@pytest.fixture(scope="module")
def english(pdf_dir: Path) -> ParsedDocument:
    return parse(pdfgen.english_outline_pdf(pdf_dir))


@pytest.fixture(scope="module")
def chinese(pdf_dir: Path) -> ParsedDocument:
    return parse(pdfgen.chinese_outline_pdf(pdf_dir))


def test_english_outline_gives_nested_headings_on_their_pages(english: ParsedDocument) -> None:
    assert english.title == pdfgen.ENGLISH_TITLE
    assert english.page_count == 4
    assert "pdf-outline" in english.notes
    got = [(b.level, b.text, b.page) for b in english.blocks if b.kind is BlockKind.HEADING]
    assert got == [
        (1, "1 Getting started", 1),
        (2, "1.1 What is in the box", 1),
        (2, "1.2 Requirements", 1),
        (1, "2 Installing", 2),
        (2, "2.1 On Linux", 2),
        (3, "2.1.1 Debian and Ubuntu", 2),
        (3, "2.1.2 Fedora", 3),
        (2, "2.2 On Windows", 3),
        (1, "3 Troubleshooting", 4),
        # The page shows "3.1" before the title that the bookmark has alone.
        (2, "3.1 The hub is not found", 4),
    ]


def test_heading_titles_are_not_repeated_in_body_text(english: ParsedDocument) -> None:
    body = "\n".join(b.text for b in english.blocks if b.kind is not BlockKind.HEADING)
    assert "1.1 What is in the box" not in body
    assert "3.1 The hub" not in body
    assert "The box holds the hub" in body


def test_every_drawn_paragraph_is_extracted(english: ParsedDocument) -> None:
    body = " ".join(" ".join(b.text.split()) for b in english.blocks)
    for page in pdfgen.ENGLISH_PAGES:
        for item in page:
            if isinstance(item, pdfgen.P):
                assert item.text in body


def test_text_before_a_heading_belongs_to_the_previous_section(english: ParsedDocument) -> None:
    chunks = {c.heading_path[-1]: c for c in chunk(english, max_tokens=400)}
    debian = chunks["2.1.1 Debian and Ubuntu"]
    assert debian.heading_path == ("2 Installing", "2.1 On Linux", "2.1.1 Debian and Ubuntu")
    assert "prints the pairing number" in debian.text  # drawn at the top of page 3
    assert (debian.page_start, debian.page_end) == (2, 3)
    windows = chunks["2.2 On Windows"]
    # A mention of the next heading's title inside a sentence is not the heading.
    assert "read 3 Troubleshooting below." in windows.text
    assert (windows.page_start, windows.page_end) == (3, 4)
    assert chunks["3 Troubleshooting"].text.startswith("Most problems come from the network.")


def test_chinese_text_and_outline(chinese: ParsedDocument) -> None:
    # reportlab stamps "untitled" as metadata title: the first outline entry wins.
    assert chinese.title == "第一章 年假"
    got = [(b.level, b.text, b.page) for b in chinese.blocks if b.kind is BlockKind.HEADING]
    assert got == [
        (1, "第一章 年假", 1),
        (2, "年假可以分几次休？", 1),
        (1, "第二章 病假", 2),
        (2, "病假期间工资怎么算？", 2),
    ]
    body = "".join("".join(b.text.split()) for b in chinese.blocks)
    assert "员工入职满一年后，每年可享受十天带薪年假。" in body
    assert "每年前十天病假全额发放工资，之后按照本地规定的比例发放。" in body
    paths = [c.heading_path for c in chunk(chinese)]
    assert ("第二章 病假", "病假期间工资怎么算？") in paths


def test_pdf_without_outline(pdf_dir: Path) -> None:
    doc = parse(pdfgen.no_outline_pdf(pdf_dir))
    assert doc.title is None
    assert doc.notes == ()
    assert all(b.kind is BlockKind.PARAGRAPH for b in doc.blocks)
    assert {b.page for b in doc.blocks} == {1, 2}
    assert "Lumen Hub is a small home server" in doc.text
    chunks = chunk(doc)
    assert {c.heading_path for c in chunks} == {()}
    assert (chunks[0].page_start, chunks[-1].page_end) == (1, 2)


def test_metadata_title_is_used(pdf_dir: Path) -> None:
    assert parse(pdfgen.no_outline_pdf(pdf_dir, title="Hub  notes")).title == "Hub notes"


def test_pdf_is_recognised_by_content_not_name(pdf_dir: Path) -> None:
    path = pdfgen.english_outline_pdf(pdf_dir)
    assert parse(path, filename="download.md").page_count == 4


def test_owner_password_only_pdf_is_decrypted(pdf_dir: Path) -> None:
    doc = parse(pdfgen.encrypted_pdf(pdf_dir, user_password="", name="owner-only.pdf"))
    assert "pdf-outline" in doc.notes
    assert "The box holds the hub" in doc.text


def test_owner_password_only_aes_pdf_is_decrypted(pdf_dir: Path) -> None:
    pytest.importorskip("cryptography")
    path = pdfgen.encrypted_pdf(
        pdf_dir, user_password="", algorithm="AES-256", name="owner-only-aes.pdf"
    )
    assert "The box holds the hub" in parse_pdf(path).text


def reason(path: Path) -> str:
    with pytest.raises(IngestError) as info:
        parse(path)
    return info.value.reason


def test_user_password_pdf(pdf_dir: Path) -> None:
    text = reason(pdfgen.encrypted_pdf(pdf_dir, user_password="s3cret"))
    assert "password" in text
    assert "s3cret" not in text


def test_scanned_pdf_needs_ocr(pdf_dir: Path) -> None:
    text = reason(pdfgen.scanned_pdf(pdf_dir))
    assert "no text layer" in text and "OCR" in text


def test_truncated_pdf(pdf_dir: Path) -> None:
    text = reason(pdfgen.truncated_pdf(pdf_dir))
    assert "incomplete" in text
    assert "Traceback" not in text


def test_corrupt_pdf(pdf_dir: Path) -> None:
    assert "damaged" in reason(pdfgen.corrupt_pdf(pdf_dir))


def test_pdf_with_broken_xref(pdf_dir: Path) -> None:
    assert "damaged" in reason(pdfgen.broken_xref_pdf(pdf_dir))


def test_zero_page_pdf(pdf_dir: Path) -> None:
    assert "no pages" in reason(pdfgen.zero_page_pdf(pdf_dir))


def test_mangled_pdfs_never_crash(pdf_dir: Path) -> None:
    data = pdfgen.english_outline_pdf(pdf_dir).read_bytes()
    variants = [data[:n] for n in (9, 100, len(data) // 3, len(data) - 40, len(data) - 6)]
    for step in (97, 331, 1009):
        flipped = bytearray(data)
        for i in range(200, len(flipped), step):
            flipped[i] ^= 0x5A
        variants.append(bytes(flipped))
    for i, variant in enumerate(variants):
        path = pdf_dir / f"mangled-{i}.pdf"
        path.write_bytes(variant)
        try:
            doc = parse(path)
        except IngestError as exc:
            assert exc.reason and "\n" not in exc.reason
        else:
            assert doc.page_count
