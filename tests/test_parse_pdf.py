"""PDF parsing on real generated files: outline headings, pages, Chinese, bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

from ingest.chunk import chunk
from ingest.errors import IngestError
from ingest.parse import parse, parse_pdf
from ingest.parse.pdf import _better
from ingest.parse.pdf_text import PdfiumReader, score_text
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


def test_readable_pages_keep_pypdf_text(english: ParsedDocument, chinese: ParsedDocument) -> None:
    for doc in (english, chinese):
        assert {b.extractor for b in doc.blocks} == {"pypdf"}
        assert not any(n.startswith(("pdf-fallback", "pdf-garbled")) for n in doc.notes)


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


def test_pdf_without_outline_gets_headings_from_its_fonts(pdf_dir: Path) -> None:
    doc = parse(pdfgen.no_outline_pdf(pdf_dir))
    assert doc.title is None  # a guessed heading is no title
    assert doc.notes == ("pdf-font-headings",)
    got = [(b.level, b.text, b.page) for b in doc.blocks if b.kind is BlockKind.HEADING]
    assert got == [
        (1, "1 Getting started", 1),
        (2, "1.1 What is in the box", 1),
        (2, "1.2 Requirements", 1),
        (1, "2 Installing", 2),
        (2, "2.1 On Linux", 2),
        (3, "2.1.1 Debian and Ubuntu", 2),
    ]
    assert "Lumen Hub is a small home server" in doc.text
    chunks = {c.heading_path: c for c in chunk(doc)}
    debian = chunks[("2 Installing", "2.1 On Linux", "2.1.1 Debian and Ubuntu")]
    assert debian.text.startswith("Add the Lumen package source")
    assert (debian.page_start, debian.page_end) == (2, 2)


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


# --- Unreadable text layers: detection and the PDFium fallback --------------------------

# Adobe-GB1 CIDs of the ideographs used below (from Adobe's GB1 character collection; the
# CID of an ASCII character is its code minus 31). PDFium maps them back to Unicode;
# pypdf, without a ToUnicode map, returns each CID as a code point.
_GB1_CIDS = {
    "。": 98, "，": 273, "一": 4162, "上": 3336, "二": 1597, "到": 1438, "动": 1518,
    "变": 1101, "后": 1962, "启": 3091, "器": 3094, "备": 1057, "如": 3266, "安": 957,
    "常": 1224, "开": 2359, "待": 1408, "成": 1262, "打": 1397, "把": 988, "指": 4535,
    "接": 2212, "新": 3981, "是": 3422, "果": 1876, "浏": 5837, "源": 4343, "灯": 1447,
    "然": 3222, "用": 4264, "由": 4270, "电": 1480, "直": 4528, "示": 3413, "章": 4451,
    "第": 1467, "等": 1449, "红": 1955, "线": 3916, "络": 2702, "绿": 2675, "网": 3753,
    "色": 3300, "装": 4621, "见": 2158, "览": 2475, "设": 3361, "请": 3176, "路": 2654,
    "连": 2549, "重": 4567, "问": 3801, "题": 3637,
}  # fmt: skip


def _gb1_cid(ch: str) -> int:
    return ord(ch) - 31 if " " <= ch <= "~" else _GB1_CIDS[ch]


ENGLISH_PARAGRAPH = " ".join(b.text for b in pdfgen.ENGLISH_PAGES[0] if isinstance(b, pdfgen.P))
CHINESE_PARAGRAPH = "员工入职满一年后，每年可享受十天带薪年假。年假可以分几次休，但每次不少于半天。"


@pytest.mark.parametrize(
    "text",
    [
        ENGLISH_PARAGRAPH,
        CHINESE_PARAGRAPH,
        # Chinese with Latin, pinyin, digits, TeX commands, math and full-width punctuation.
        "使用 xpinyin 宏包的\\pinyin{lao3shi1}命令注音：Wáng lǎo shī（王老师）。∑ α_i ≤ 2，见第 3 节。",
        "Привет, мир! Это обычный русский текст с цифрами 2024 и «кавычками».",
        "ภาษาไทยเป็นภาษาราชการของประเทศไทย",
        "اللغة العربية هي لغة رسمية في كثير من الدول",
        "हिन्दी भारत की राजभाषा है।",
        "Straße, café, naïve, smørrebrød, Ærø — ½ °C ± 3 © 2024",
        "目录 ··········································· 3",  # dot leaders are not mojibake
        "東京の天気は晴れです。한국어 문장도 괜찮습니다.",
        "Ship it \u2764\ufe0f \U0001f680 \u200bzero\u00adwidth \ufeff",  # emoji, format chars
        # A few private-use glyphs (bracket pieces of a math font) in a long page.
        ENGLISH_PARAGRAPH * 2 + " A = \uf8eb 1 0 \uf8f6",
        "",
    ],
)
def test_detector_passes_readable_text(text: str) -> None:
    score = score_text(text)
    assert not score.unreadable, score
    assert score.salad_letters == 0


def _as_raw_cids(text: str) -> str:
    """What pypdf makes of ``text`` set in a CID font without a ToUnicode map."""
    return "".join(chr(_gb1_cid(ch)) for ch in text)


@pytest.mark.parametrize(
    "text",
    [
        # A CJK font without ToUnicode: raw CIDs read as code points (Hebrew, Myanmar ...).
        _as_raw_cids("把设备接上电源，等待指示灯变成绿色。然后打开浏览器。"),
        "\ue000\ue001\ue002 \ue010\ue011 text \ue020\ue021\ue022\ue023",  # private use
        "The r\ufffd\ufffdsult w\ufffds \ufffd\ufffd\ufffd r\ufffdd",  # replacement characters
        # TeX math fonts without ToUnicode: \x01 for dot leaders, \x00 for minus.
        "1. 在下列等式中，正确的结果是 " + "\x01 " * 30 + "( C ) \x001 \x002",
        "Ã¤Ã¶Ã¼ und Ã© sind kaputt: Ã„Ã–Ãœ",  # UTF-8 read as Latin-1
        "⽇⽉⽔⽕⽊⾦⼟ ⽇⽉⽔⽕",  # Kangxi radicals instead of ideographs
    ],
)
def test_detector_flags_mojibake(text: str) -> None:
    assert score_text(text).unreadable, score_text(text)


def test_a_short_script_salad_flags_a_long_clean_page() -> None:
    # A code listing whose only Chinese, the running header, came out as raw CIDs: the
    # share is tiny, but single letters of unrelated rare scripts are never real text.
    header = _as_raw_cids("第二章") + " 40"
    score = score_text(header + "\n" + "\\draw_path_lineto:n 216, 218, 220, 222\n" * 60)
    assert score.share < 0.01
    assert score.unreadable


_Item = tuple[int, str]  # (heading level, or 0 for a paragraph; text)

NO_TOUNICODE_PAGES: list[list[_Item]] = [
    [
        (1, "第一章 安装"),
        (0, "把设备接上电源，等待指示灯变成绿色。"),
        (2, "1.1 连接网络"),
        (0, "用网线把设备连到路由器上，然后打开浏览器。"),
    ],
    [
        (1, "第二章 常见问题"),
        (0, "如果指示灯一直是红色，请重新启动设备。"),
    ],
]
ENGLISH_LINE = "Lumen Hub is a small home server that keeps photos and notes in one place."
ENGLISH_PAGE: list[_Item] = [(1, "Getting started"), (0, ENGLISH_LINE)]


def no_tounicode_pdf(path: Path, pages: list[list[_Item]]) -> Path:
    """A PDF whose Chinese is set in a CID font (Adobe-GB1, Identity-H) with no ToUnicode
    map, like TeX output with Fandol fonts; pages of ASCII text use Helvetica instead.

    reportlab always writes ToUnicode maps (or uses a Unicode CMap), so this is built
    with pypdf. The CID font is not embedded: text extraction does not need its glyphs.
    """
    writer = PdfWriter()
    descriptor = {
        "/Type": NameObject("/FontDescriptor"),
        "/FontName": NameObject("/STSong-Light"),
        "/Flags": NumberObject(6),
        "/FontBBox": ArrayObject([NumberObject(n) for n in (-25, -254, 1000, 880)]),
        "/ItalicAngle": NumberObject(0),
        "/Ascent": NumberObject(880),
        "/Descent": NumberObject(-120),
        "/CapHeight": NumberObject(880),
        "/StemV": NumberObject(93),
    }
    system_info = {
        "/Registry": TextStringObject("Adobe"),
        "/Ordering": TextStringObject("GB1"),
        "/Supplement": NumberObject(2),
    }
    cid_font = {
        "/Type": NameObject("/Font"),
        "/Subtype": NameObject("/CIDFontType0"),
        "/BaseFont": NameObject("/STSong-Light"),
        "/CIDSystemInfo": _dict(system_info),
        "/FontDescriptor": writer._add_object(_dict(descriptor)),
        "/DW": NumberObject(1000),
    }
    cjk = {
        "/Type": NameObject("/Font"),
        "/Subtype": NameObject("/Type0"),
        "/BaseFont": NameObject("/STSong-Light"),
        "/Encoding": NameObject("/Identity-H"),
        "/DescendantFonts": ArrayObject([writer._add_object(_dict(cid_font))]),
    }
    latin = {
        "/Type": NameObject("/Font"),
        "/Subtype": NameObject("/Type1"),
        "/BaseFont": NameObject("/Helvetica"),
    }
    fonts = _dict({"/F1": writer._add_object(_dict(cjk)), "/F2": writer._add_object(_dict(latin))})
    parents: dict[int, IndirectObject | None] = {0: None}
    for number, items in enumerate(pages):
        page = writer.add_blank_page(595, 842)
        page[NameObject("/Resources")] = _dict({"/Font": fonts})
        ops = ["BT 72 770 Td"]
        for level, text in items:
            size = 16 if level else 11
            if text.isascii():
                escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
                ops.append(f"/F2 {size} Tf ({escaped}) Tj 0 -28 Td")
            else:
                codes = "".join(f"{_gb1_cid(ch):04X}" for ch in text)
                ops.append(f"/F1 {size} Tf <{codes}> Tj 0 -28 Td")
        ops.append("ET")
        stream = DecodedStreamObject()
        stream.set_data("\n".join(ops).encode("ascii"))
        page[NameObject("/Contents")] = writer._add_object(stream)
        for level, text in items:
            if level:
                item = writer.add_outline_item(
                    title=text, page_number=number, parent=parents[level - 1]
                )
                parents[level] = item
    with path.open("wb") as f:
        writer.write(f)
    return path


def _dict(entries: dict[str, object]) -> DictionaryObject:
    return DictionaryObject({NameObject(k): v for k, v in entries.items()})


def _squash(text: str) -> str:
    return "".join(text.split())


def test_pdf_without_tounicode_is_read_with_pdfium(pdf_dir: Path) -> None:
    pytest.importorskip("pypdfium2")
    path = no_tounicode_pdf(pdf_dir / "no-tounicode.pdf", NO_TOUNICODE_PAGES)
    # The premise: pypdf returns raw CIDs, and the detector sees it.
    raw = PdfReader(path).pages[0].extract_text()
    assert "设备" not in raw
    assert score_text(raw).unreadable

    doc = parse(path)
    assert "pdf-fallback-pages=2" in doc.notes
    assert not any(n.startswith("pdf-garbled") for n in doc.notes)
    assert {b.extractor for b in doc.blocks} == {"pdfium"}
    # Outline headings are still found in the page text and split it.
    got = [(b.level, b.text, b.page) for b in doc.blocks if b.kind is BlockKind.HEADING]
    assert got == [(1, "第一章 安装", 1), (2, "1.1 连接网络", 1), (1, "第二章 常见问题", 2)]
    chunks = {c.heading_path[-1]: _squash(c.text) for c in chunk(doc)}
    assert chunks["1.1 连接网络"] == "用网线把设备连到路由器上，然后打开浏览器。"
    assert chunks["第二章 常见问题"] == "如果指示灯一直是红色，请重新启动设备。"
    assert "第一章" not in chunks["第一章 安装"]  # the heading's own line is consumed


def test_only_unreadable_pages_are_read_again(pdf_dir: Path) -> None:
    pytest.importorskip("pypdfium2")
    pages = [ENGLISH_PAGE, NO_TOUNICODE_PAGES[1]]
    doc = parse(no_tounicode_pdf(pdf_dir / "mixed-tounicode.pdf", pages))
    assert "pdf-fallback-pages=1" in doc.notes
    assert {(b.page, b.extractor) for b in doc.blocks} == {(1, "pypdf"), (2, "pdfium")}
    assert ENGLISH_LINE in doc.text
    assert "如果指示灯一直是红色，请重新启动设备。" in _squash(doc.text)


def test_without_pdfium_unreadable_pages_keep_pypdf_text(
    pdf_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pypdfium2", None)  # import fails
    doc = parse(no_tounicode_pdf(pdf_dir / "no-pdfium.pdf", NO_TOUNICODE_PAGES))
    assert {b.extractor for b in doc.blocks} == {"pypdf"}
    assert "pdf-garbled-pages=2" in doc.notes
    assert not any(n.startswith("pdf-fallback") for n in doc.notes)
    # Titles not found in the (garbled) text: the headings still open their pages.
    assert [(b.kind, b.text) for b in doc.blocks[:3]] == [
        (BlockKind.HEADING, "第一章 安装"),
        (BlockKind.HEADING, "1.1 连接网络"),
        (BlockKind.PARAGRAPH, doc.blocks[2].text),
    ]


def test_fallback_text_is_kept_only_when_it_is_better(
    pdf_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    garbage = _as_raw_cids("如果指示灯一直是红色，请重新启动设备。")
    clean = "如果指示灯一直是红色，请重新启动设备。"
    assert _better(clean, garbage)
    assert not _better(garbage, garbage)  # no better: keep pypdf's
    assert not _better(clean[:5], garbage * 2)  # far shorter: PDFium missed text
    assert not _better(garbage, clean)

    # PDFium's text of a page is used only where it beats pypdf's.
    monkeypatch.setattr(PdfiumReader, "page_text", lambda self, index: "\ufffd" * 200)
    doc = parse(no_tounicode_pdf(pdf_dir / "worse-fallback.pdf", NO_TOUNICODE_PAGES))
    assert {b.extractor for b in doc.blocks} == {"pypdf"}
    assert "pdf-garbled-pages=2" in doc.notes
