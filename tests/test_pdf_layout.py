"""PDF layout on real generated files: headings from fonts and numbering, running
headers and footers, joined lines, the PDFium retry and the reasons for empty PDFs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pypdf import PageObject

from ingest.chunk import chunk
from ingest.errors import IngestError
from ingest.parse import parse
from ingest.parse.pdf_columns import Piece, column_text
from ingest.parse.pdf_furniture import is_page_number, running_keys, strip_furniture
from ingest.parse.pdf_headings import numbering
from ingest.parse.pdf_lines import join_lines
from ingest.types import BlockKind, ParsedDocument
from tests import pdfgen

pytest.importorskip("pypdfium2")


@pytest.fixture(scope="module")
def pdf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("layout-pdfs")


@pytest.fixture(scope="module")
def manual(pdf_dir: Path) -> ParsedDocument:
    return parse(pdfgen.font_headings_pdf(pdf_dir))


@pytest.fixture(scope="module")
def policy(pdf_dir: Path) -> ParsedDocument:
    return parse(pdfgen.chinese_headings_pdf(pdf_dir))


def _headings(doc: ParsedDocument) -> list[tuple[int, str, int | None]]:
    return [(b.level, b.text, b.page) for b in doc.blocks if b.kind is BlockKind.HEADING]


def test_english_headings_from_size_weight_and_numbers(manual: ParsedDocument) -> None:
    assert "pdf-font-headings" in manual.notes
    assert "pdf-outline" not in manual.notes
    assert _headings(manual) == [
        (1, "Field Manual for the Lumen Hub", 1),
        (1, "1 Overview", 1),
        (2, "1.1 Parts of the hub", 1),
        (2, "1.2 Safety notes", 1),  # bold in the body size
        (1, "2 Network setup", 2),
        (3, "2.1.1 Static addresses", 2),  # body font: only its number and the gap
        (1, "Appendix A Error codes", 3),
    ]
    assert {b.extractor for b in manual.blocks} == {"pypdf"}


def test_list_items_wrapped_numbers_and_contents_lines_are_not_headings(
    manual: ParsedDocument,
) -> None:
    titles = {text for _, text, _ in _headings(manual)}
    assert not any(t.startswith(("1. Unplug", "2. Wait", "2.4 GHz", "Contents")) for t in titles)
    body = "\n".join(b.text for b in manual.blocks if b.kind is BlockKind.PARAGRAPH)
    assert "1. Unplug the hub from the wall socket." in body
    assert "2.4 GHz band" in body


def test_font_headings_make_sections_with_pages(manual: ParsedDocument) -> None:
    chunks = {c.heading_path: c for c in chunk(manual)}
    static = chunks[("2 Network setup", "2.1.1 Static addresses")]
    assert static.text.startswith("A static address is set on the settings page")
    assert (static.page_start, static.page_end) == (2, 2)
    errors = chunks[("Appendix A Error codes",)]
    assert errors.text.startswith("Error E7 means")
    assert (errors.page_start, errors.page_end) == (3, 3)


def test_running_header_and_page_numbers_are_removed(manual: ParsedDocument) -> None:
    text = manual.text
    # Kept once, where it first appears (it often names the document), then dropped.
    assert text.count(pdfgen.RUNNING_HEADER) == 1
    first_page = "\n".join(b.text for b in manual.blocks if b.page == 1)
    assert pdfgen.RUNNING_HEADER in first_page
    assert "Page 1 of 3" not in text and "of 3" not in text
    # The title, which is no running header, stays.
    assert "Field Manual for the Lumen Hub" in text


def test_chinese_numbered_headings(policy: ParsedDocument) -> None:
    assert "pdf-font-headings" in policy.notes
    assert _headings(policy) == [
        (1, "第一章 总则", 1),
        (2, "第一节 适用范围", 1),
        (3, "一、基本要求", 1),  # set in the body font: found by its number
        (4, "（一）设备检查", 1),
        (1, "第二章 附则", 2),
    ]
    # Kept once (with the space between ideographs joined), then dropped.
    assert policy.text.count(pdfgen.CHINESE_RUNNING_HEADER.replace(" ", "")) == 1
    assert "共 2 页" not in policy.text
    paths = {c.heading_path for c in chunk(policy)}
    assert ("第一章 总则", "第一节 适用范围", "一、基本要求", "（一）设备检查") in paths


def test_chinese_wrapped_lines_are_joined_without_spaces(policy: ParsedDocument) -> None:
    paragraph = next(b.text for b in policy.blocks if b.text.startswith("本办法适用于"))
    assert "\n" not in paragraph and " " not in paragraph
    assert "打印机以及会议室里的投影设备。" in paragraph
    assert paragraph.endswith("并在每个季度末核对一次。")


def test_wrapped_and_hyphenated_lines(pdf_dir: Path) -> None:
    doc = parse(pdfgen.wrapped_text_pdf(pdf_dir))
    text = doc.text
    assert (
        "年假需要提前三个工作日在系统中提交申请，由直属主管审批。当年未休完的年假可以顺延到"
        "次年第一季度，逾期未休的部分不再保留，也不折算成工资发放。"
    ) in text
    assert (
        "The installer checks every example configuration before it starts the agent, "
        "so a typo in the settings file is reported at once."
    ) in text


def test_a_page_pypdf_cannot_read_is_read_with_pdfium(
    pdf_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = PageObject.extract_text

    def extract_text(self: PageObject, *args: object, **kwargs: object) -> str:
        if self.page_number == 1:
            raise ValueError("broken content stream")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(PageObject, "extract_text", extract_text)
    doc = parse(pdfgen.english_outline_pdf(pdf_dir))
    assert {b.extractor for b in doc.blocks if b.page == 2} == {"pdfium"}
    assert {b.extractor for b in doc.blocks if b.page != 2} == {"pypdf"}
    assert "pdf-fallback-pages=1" in doc.notes
    assert not any(n.startswith("pdf-unreadable") for n in doc.notes)
    assert "Installing takes about ten minutes." in " ".join(doc.text.split())
    assert ("2 Installing", 2) in [(b.text, b.page) for b in doc.blocks]


def test_a_page_over_pypdfs_size_limit_is_not_inflated_by_pdfium(pdf_dir: Path) -> None:
    # PDFium has no decompression cap: a bomb page handed to it would inflate in full.
    text = reason(pdfgen.decompression_bomb_pdf(pdf_dir))
    assert "over the size limit" in text and "OCR" not in text


def reason(path: Path) -> str:
    with pytest.raises(IngestError) as info:
        parse(path)
    return info.value.reason


def test_image_only_pages_need_ocr(pdf_dir: Path) -> None:
    assert "needs OCR" in reason(pdfgen.scanned_pdf(pdf_dir))


def test_pages_without_images_are_not_sent_to_ocr(pdf_dir: Path) -> None:
    text = reason(pdfgen.vector_only_pdf(pdf_dir))
    assert "OCR" not in text
    assert "could not be extracted" in text
    blank = reason(pdfgen.blank_pdf(pdf_dir))
    assert "OCR" not in blank and "blank" in blank


@pytest.mark.parametrize(
    "line", ["12", "- 12 -", "— 7 —", "第 12 页", "第 3 页 共 9 页", "Page 3 of 9", "3 / 9", "xii"]
)
def test_page_numbers(line: str) -> None:
    assert is_page_number(line)


@pytest.mark.parametrize("line", ["12 apples", "Chapter 12", "第十二章", "Page layout", "mix"])
def test_not_page_numbers(line: str) -> None:
    assert not is_page_number(line)


def test_running_lines_repeat_at_page_edges_with_their_numbers_changing() -> None:
    pages = [
        [
            f"{n} K. Smith",
            *(f"Body line {k} about {word}" for k in "abcdefgh"),
            "The end.",
            "MNRAS 000, 1-10",
        ]
        for n, word in enumerate(["apples", "pears", "plums", "figs", "limes"], start=1)
    ]
    pages[2][5] = "3 K. Smith"  # in the middle of a page: no header there
    keys = running_keys(pages)
    assert "#k.smith" in keys and "mnras#,#-#" in keys
    assert "theend." in keys  # the last lines of every page
    assert not any("body" in k for k in keys)
    assert strip_furniture("\n".join(pages[2]), keys).count("K. Smith") == 1
    assert running_keys([["Only one page"]]) == frozenset()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("中文\n句子", "中文句子"),
        ("合 肥 工 业", "合肥工业"),
        ("exam-\nple", "example"),
        ("Jean-\nPaul", "Jean-\nPaul"),
        ("a line that\nruns on", "a line that runs on"),
        ("Ends here.\nNext sentence", "Ends here.\nNext sentence"),
        ("x = 1\ny = 2", "x = 1\ny = 2"),
        ("使用命令\n\\maketitle", "使用命令\n\\maketitle"),
    ],
)
def test_join_lines(text: str, expected: str) -> None:
    assert join_lines(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 Introduction", ("decimal", 1)),
        ("1.2 Scope", ("decimal", 2)),
        ("1.2.3 Title", ("decimal", 3)),
        ("1. Unplug it", ("decimal-dot", 1)),
        ("A.1 Details", ("decimal", 2)),
        ("第三章 总则", ("chapter", 1)),
        ("第1节 范围", ("section", 1)),
        ("一、要求", ("cn-enum", 1)),
        ("（一）检查", ("cn-paren", 1)),
        ("Chapter 3 Setup", ("chapter", 1)),
        ("Appendix A Codes", ("chapter", 1)),
        ("2024 was a year", None),
        ("A title", None),
        ("Plain words", None),
    ],
)
def test_numbering(text: str, expected: tuple[str, int] | None) -> None:
    assert numbering(text) == expected


def test_two_columns_read_left_before_right(pdf_dir: Path) -> None:
    doc = parse(pdfgen.two_column_pdf(pdf_dir))
    text = " ".join(doc.text.split())
    title = text.index("Backups on the Lumen Hub")
    abstract = text.index("Abstract. How the hub copies photos")
    left = text.index(pdfgen.TWO_COLUMN_LEFT)  # whole: its wrapped lines are joined
    right = text.index(pdfgen.TWO_COLUMN_RIGHT)
    assert title < abstract < left < right


@pytest.mark.parametrize("chinese", [False, True])
def test_interleaved_two_columns_are_read_column_by_column(pdf_dir: Path, chinese: bool) -> None:
    doc = parse(pdfgen.interleaved_two_column_pdf(pdf_dir, chinese=chinese))
    assert "pdf-column-pages=1" in doc.notes
    assert {b.extractor for b in doc.blocks} == {"pdfium"}
    assert all(b.page == 1 for b in doc.blocks)
    left = pdfgen.INTERLEAVED_CHINESE_LEFT if chinese else pdfgen.INTERLEAVED_LEFT
    right = pdfgen.INTERLEAVED_CHINESE_RIGHT if chinese else pdfgen.INTERLEAVED_RIGHT
    title = "集线器的备份与恢复" if chinese else "Backups on the Lumen Hub"
    assert doc.blocks[0].kind is BlockKind.HEADING and doc.blocks[0].text == title
    text = " ".join(doc.text.split()) if not chinese else "".join(doc.text.split())
    if chinese:
        left, right = "".join(left.split()), "".join(right.split())
    # Whole: each column's wrapped lines are joined, one after the other.
    assert text.index(title) < text.index(left) < text.index(right)
    assert not text.rstrip().endswith("7")  # the page number is still recognised


@pytest.mark.parametrize("chinese", [False, True])
def test_two_columns_drawn_column_by_column_keep_pypdf_text(pdf_dir: Path, chinese: bool) -> None:
    doc = parse(pdfgen.interleaved_two_column_pdf(pdf_dir, chinese=chinese, interleaved=False))
    assert not any(n.startswith("pdf-column-pages") for n in doc.notes)
    assert {b.extractor for b in doc.blocks} == {"pypdf"}


def test_single_column_pages_keep_pypdf_text(manual: ParsedDocument) -> None:
    assert not any(n.startswith("pdf-column-pages") for n in manual.notes)
    assert {b.extractor for b in manual.blocks} == {"pypdf"}


def test_column_text_keeps_lines_across_the_gutter_in_place() -> None:
    band = (280.0, 310.0)
    pieces = [
        Piece("Title", (72, 760, 400, 780)),
        *(
            Piece(f"{side}{row}", (x, 700 - 13 * row, x + 200, 709 - 13 * row))
            for row in range(3)
            for side, x in (("L", 72.0), ("R", 312.0))
        ),
        Piece("Wide caption", (72, 600, 500, 609)),
        Piece("L9", (72, 580, 270, 589)),
        Piece("R9", (312, 580, 500, 589)),
    ]
    lines = column_text(pieces, band).split("\n")
    assert [x for x in lines if x] == [
        "Title",
        "L0",
        "L1",
        "L2",
        "R0",
        "R1",
        "R2",
        "Wide caption",
        "L9",
        "R9",
    ]
    assert lines[1] == ""  # the title stands apart
