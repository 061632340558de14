"""Markdown and text parsing: headings, code, front matter, decoding, bad input."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from ingest.errors import IngestError
from ingest.parse import decode_text, parse, parse_markdown
from ingest.types import Block, BlockKind

FIXTURES = Path(__file__).parent / "fixtures"


def headings(blocks: tuple[Block, ...]) -> list[tuple[int, str]]:
    return [(b.level, b.text) for b in blocks if b.kind is BlockKind.HEADING]


def bodies(blocks: tuple[Block, ...]) -> list[str]:
    return [b.text for b in blocks if b.kind is not BlockKind.HEADING]


def test_atx_and_closed_atx_headings() -> None:
    doc = parse_markdown("# One\n\n## Two ##\n\n### Three ###   \n\n###### Six\n\n#NotHeading\n")
    assert headings(doc.blocks) == [(1, "One"), (2, "Two"), (3, "Three"), (6, "Six")]
    assert bodies(doc.blocks) == ["#NotHeading"]


def test_heading_text_is_plain_inline_text() -> None:
    doc = parse_markdown(
        "# Use `kb serve` with **care** and [docs](http://x.test) ![logo](l.png)\n"
    )
    assert headings(doc.blocks) == [(1, "Use kb serve with care and docs logo")]


def test_setext_headings() -> None:
    doc = parse_markdown("Main title\n==========\n\nSub part\n--------\n\nBody text.\n")
    assert headings(doc.blocks) == [(1, "Main title"), (2, "Sub part")]
    assert bodies(doc.blocks) == ["Body text."]


@pytest.mark.parametrize("fence", ["```", "````", "`````", "~~~", "~~~~"])
def test_hash_lines_inside_fences_are_code(fence: str) -> None:
    source = f"# Real\n\n{fence}python\n# comment\n## another\n{fence}\n\nAfter.\n"
    doc = parse_markdown(source)
    assert headings(doc.blocks) == [(1, "Real")]
    code = [b for b in doc.blocks if b.kind is BlockKind.CODE]
    assert [b.text for b in code] == [f"{fence}python\n# comment\n## another\n{fence}"]


def test_nested_fences_keep_inner_fence_and_hash_lines() -> None:
    source = "`````md\n````\n```\n# deep\n```\n````\n`````\n\n~~~~\n```\n# x\n~~~~\n\n# Out\n"
    doc = parse_markdown(source)
    assert headings(doc.blocks) == [(1, "Out")]
    assert bodies(doc.blocks) == [
        "`````md\n````\n```\n# deep\n```\n````\n`````",
        "~~~~\n```\n# x\n~~~~",
    ]


def test_indented_code_is_not_a_heading() -> None:
    doc = parse_markdown("Intro.\n\n    # not a heading\n    echo hi\n\n# Real\n")
    assert headings(doc.blocks) == [(1, "Real")]
    assert doc.blocks[1] == Block(BlockKind.CODE, "    # not a heading\n    echo hi")


def test_front_matter_is_metadata_not_text() -> None:
    doc = parse_markdown("---\ntitle: 'Field: notes'\nauthor: me\n---\nFirst line.\n\n# H1\n")
    assert doc.title == "Field: notes"
    assert headings(doc.blocks) == [(1, "H1")]
    assert bodies(doc.blocks) == ["First line."]
    assert "author" not in doc.text


def test_front_matter_tags_are_read_as_metadata() -> None:
    doc = parse_markdown(
        "---\ntitle: Leave\ntags: [HR, policy, hr, 休假]\nkeywords: 'annual leave，policy'\n"
        "categories:\n  - handbook\n  - {nested: ignored}\n---\nBody.\n"
    )
    assert doc.tags == ("HR", "policy", "休假", "annual leave", "handbook")
    assert "policy" not in doc.text


def test_front_matter_tags_are_bounded() -> None:
    many = ", ".join(f"t{i}" for i in range(200))
    doc = parse_markdown(f"---\ntags: '{many}'\nkeywords: [{'x' * 500}]\n---\nBody.\n")
    assert len(doc.tags) == 50
    assert parse_markdown("---\ntags: [true, 3]\n---\nBody.\n").tags == ("3",)
    assert parse_markdown("No front matter.\n").tags == ()


def test_front_matter_without_title_falls_back_to_first_h1() -> None:
    doc = parse_markdown("---\nauthor: me\n---\n## Second level\n\n# First level\n")
    assert doc.title == "First level"
    assert headings(doc.blocks) == [(2, "Second level"), (1, "First level")]


def test_leading_dashes_that_are_not_yaml_metadata_stay_text() -> None:
    doc = parse_markdown("---\nJust a sentence, not metadata.\n---\n\nMore.\n")
    assert doc.title is None
    assert "Just a sentence, not metadata." in doc.text
    assert headings(doc.blocks) == []


def test_thematic_break_after_heading_is_not_setext() -> None:
    doc = parse_markdown("# Title\n---\nText under the rule.\n\n***\n\nMore.\n")
    assert headings(doc.blocks) == [(1, "Title")]
    assert bodies(doc.blocks) == ["Text under the rule.", "More."]


def test_dashes_under_paragraph_make_setext_heading_as_commonmark_says() -> None:
    doc = parse_markdown("Paragraph line\n---\n\nOther\n\n---\n\nEnd\n")
    assert headings(doc.blocks) == [(2, "Paragraph line")]
    assert bodies(doc.blocks) == ["Other", "End"]


def test_block_text_is_source_text() -> None:
    source = (
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "- item one\n  continued\n- item two\n\n"
        "> quoted *text*\n\n"
        "<div>\nraw html\n</div>\n\n"
        "[ref]: https://example.test/x\n\n"
        "Para with **bold** and a [link][ref].\n"
    )
    doc = parse_markdown(source)
    assert [(b.kind, b.text) for b in doc.blocks] == [
        (BlockKind.TABLE, "| a | b |\n|---|---|\n| 1 | 2 |"),
        (BlockKind.LIST, "- item one\n  continued\n- item two"),
        (BlockKind.QUOTE, "> quoted *text*"),
        (BlockKind.OTHER, "<div>\nraw html\n</div>"),
        (BlockKind.OTHER, "[ref]: https://example.test/x"),
        (BlockKind.PARAGRAPH, "Para with **bold** and a [link][ref]."),
    ]


def test_line_maps_hold_with_odd_line_separators() -> None:
    source = "# A\r\n\r\nform\x0cfeed and line\u2028separator\r\n\r\n## B\rlast\n"
    doc = parse_markdown(source)
    assert headings(doc.blocks) == [(1, "A"), (2, "B")]
    assert bodies(doc.blocks) == ["form\x0cfeed and line\u2028separator", "last"]


def test_fixture_keeps_every_non_markup_character() -> None:
    source = (FIXTURES / "guide_en.md").read_text(encoding="utf-8")
    doc = parse(FIXTURES / "guide_en.md")
    assert doc.title == "Lumen Hub Field Notes"
    assert headings(doc.blocks) == [
        (1, "Before you start"),
        (2, "Network setup"),
        (2, "Installing the agent"),
        (3, "Checking the result"),
        (1, "After installing"),
    ]
    body = "".join(bodies(doc.blocks))
    # Every non-blank source line outside front matter, headings and rules is in a block.
    after_front_matter = source.split("---\n", 2)[2]
    markup = {"---", "-------------", "Network setup"}  # a rule and a setext heading
    for line in after_front_matter.splitlines():
        if line.strip() and not line.startswith("#") and line not in markup:
            assert line in body, line
    assert "# this line is a shell comment, not a heading" in body
    assert "    # indented code, not a heading" in body


def test_title_none_without_front_matter_or_h1() -> None:
    assert parse_markdown("## Only level two\n\ntext\n").title is None


def test_chinese_fixture_in_gb18030(tmp_path: Path) -> None:
    text = (FIXTURES / "faq_zh.md").read_text(encoding="utf-8")
    path = tmp_path / "faq.md"
    path.write_bytes(text.encode("gb18030"))
    doc = parse(path)
    assert doc.title == "请假制度常见问题"
    assert (3, "年假可以跨年使用吗？") in headings(doc.blocks)
    assert "入职满一年的员工每年享有十天带薪年假，满五年后增加到十五天。" in bodies(doc.blocks)


def test_utf8_bom_is_stripped(tmp_path: Path) -> None:
    path = tmp_path / "bom.md"
    path.write_bytes(b"\xef\xbb\xbf# Title\n\nBody \xe6\x96\x87.\n")
    doc = parse(path)
    assert headings(doc.blocks) == [(1, "Title")]
    assert bodies(doc.blocks) == ["Body 文."]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom(encoding: str) -> None:
    text = "# 标题 Title\n\n正文，第一段。Body text.\n"
    assert decode_text(text.encode(encoding)) == text
    # Chinese only, apart from the markup: still enough ASCII to tell the byte order.
    zh = "# 年假\n\n员工入职满一年后享有十天带薪年假。\n"
    assert decode_text(zh.encode(encoding)) == zh


def test_binary_with_nuls_is_not_taken_for_utf16() -> None:
    with pytest.raises(IngestError, match="binary"):
        decode_text(bytes(range(256)) * 8)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom(tmp_path: Path, encoding: str) -> None:
    bom = b"\xff\xfe" if encoding.endswith("le") else b"\xfe\xff"
    path = tmp_path / "u16.markdown"
    path.write_bytes(bom + "# 标题\n\nText 正文.\n".encode(encoding))
    doc = parse(path)
    assert headings(doc.blocks) == [(1, "标题")]
    assert bodies(doc.blocks) == ["Text 正文."]


def test_plain_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("First paragraph\nstill first.\n\nSecond.\n", encoding="utf-8")
    assert bodies(parse(path).blocks) == ["First paragraph\nstill first.", "Second."]


def test_filename_argument_decides_the_type(tmp_path: Path) -> None:
    path = tmp_path / "stored-blob"
    path.write_text("# Hi\n", encoding="utf-8")
    assert headings(parse(path, filename="upload.md").blocks) == [(1, "Hi")]
    with pytest.raises(IngestError, match="Unsupported file type"):
        parse(path)


def reason(path: Path, filename: str | None = None) -> str:
    with pytest.raises(IngestError) as info:
        parse(path, filename=filename)
    return info.value.reason


@pytest.mark.parametrize("content", [b"", b"   \n\t\r\n  ", b"\xef\xbb\xbf \n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.md"
    path.write_bytes(content)
    assert "empty" in reason(path)


def test_binary_with_nul_bytes_named_md(tmp_path: Path) -> None:
    path = tmp_path / "image.md"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert "binary" in reason(path)


def test_binary_without_nul_bytes_named_md(tmp_path: Path) -> None:
    rng = random.Random(7)
    data = bytes(b or 1 for b in rng.randbytes(4096))
    path = tmp_path / "blob.md"
    path.write_bytes(data)
    assert "binary" in reason(path)


def test_text_full_of_control_characters_is_binary(tmp_path: Path) -> None:
    path = tmp_path / "ctrl.txt"
    path.write_bytes(b"abc\x01\x02\x03\x1b\x7f" * 50)
    assert "binary" in reason(path)


def test_unsupported_type_names_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "report.odt"
    path.write_bytes(b"PK\x03\x04 not a type we read")
    text = reason(path)
    assert "'.odt'" in text
    assert ".pdf" in text and ".md" in text


def test_markdown_named_pdf_is_not_a_pdf(tmp_path: Path) -> None:
    path = tmp_path / "notes.pdf"
    path.write_text("# Not a PDF\n", encoding="utf-8")
    assert "not a PDF" in reason(path)


def test_markup_only_file_has_no_text(tmp_path: Path) -> None:
    path = tmp_path / "rules.md"
    path.write_text("---\n\n***\n\n___\n", encoding="utf-8")
    assert re.search(r"no text", reason(path))
