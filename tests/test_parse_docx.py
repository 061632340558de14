"""Word documents: headings from styles, outline levels and numbering; lists, tables,
text boxes; exam papers with option tables and an answer key; FAQs; bad files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from docx.document import Document

from ingest.chunk import chunk
from ingest.errors import IngestError
from ingest.parse import parse
from ingest.parse.docx import DOCX_NO_TEXT
from ingest.parse.zipsafe import NOT_AN_OFFICE_FILE, PASSWORD_PROTECTED
from ingest.types import BlockKind, ChunkKind
from tests.officegen import (
    add_footnotes,
    bold,
    footnote_ref,
    new_list,
    numbered,
    outline,
    styled,
    table,
    text_box,
    write_docx,
)

S, F, Q = ChunkKind.SECTION, ChunkKind.FAQ, ChunkKind.QUESTION


def headings(path: Path) -> list[tuple[int, str]]:
    return [(b.level, b.text) for b in parse(path).blocks if b.kind is BlockKind.HEADING]


# ---------------------------------------------------------------- headings and title


def test_heading_styles_english_and_localized_with_paths_and_core_title(tmp_path: Path) -> None:
    def build(d: Document) -> None:
        d.add_heading("Orbit Notes Guide", level=0)  # the Title style
        d.add_paragraph("Orbit Notes is a small note-taking server for teams.")
        d.add_heading("Install", level=1)
        d.add_heading("Linux", level=2)
        d.add_paragraph("Run orbit-notes setup; the service listens on port 7020.")
        styled(d, "备份", "标题 1")
        styled(d, "恢复", "我的小标题", based_on="Heading 2")  # a heading by its base style
        d.add_paragraph("用 orbit-notes restore 恢复某天的备份。")

    path = write_docx(tmp_path / "guide.docx", build, title="Orbit Notes — Admin Guide")
    parsed = parse(path)
    assert headings(path) == [
        (1, "Orbit Notes Guide"), (1, "Install"), (2, "Linux"), (1, "备份"), (2, "恢复"),
    ]  # fmt: skip
    assert parsed.meta_title == parsed.title == "Orbit Notes — Admin Guide"
    assert "docx-styles" in parsed.notes
    paths = [(c.heading_path, c.text) for c in chunk(parsed)]
    assert (
        ("Install", "Linux"),
        "Run orbit-notes setup; the service listens on port 7020.",
    ) in paths
    assert (("备份", "恢复"), "用 orbit-notes restore 恢复某天的备份。") in paths


def test_placeholder_core_title_falls_back_to_first_heading(tmp_path: Path) -> None:
    def build(d: Document) -> None:
        d.add_heading("员工休假制度", level=1)
        d.add_paragraph("员工入职满一年后享有十天带薪年假。")

    parsed = parse(write_docx(tmp_path / "leave.docx", build, title="Document"))
    assert parsed.meta_title is None and parsed.title == "员工休假制度"


def test_outline_levels_make_headings(tmp_path: Path) -> None:
    def build(d: Document) -> None:
        outline(d, "第一章 总则", 1)
        d.add_paragraph("本制度适用于全体员工。")
        outline(d, "第一节 适用范围", 2)
        d.add_paragraph("包括试用期员工。")

    path = write_docx(tmp_path / "rules.docx", build)
    assert headings(path) == [(1, "第一章 总则"), (2, "第一节 适用范围")]
    assert [c.heading_path for c in chunk(parse(path))][-1] == ("第一章 总则", "第一节 适用范围")


def test_headings_inferred_from_numbering_and_bold_without_styles(tmp_path: Path) -> None:
    def build(d: Document) -> None:
        d.add_paragraph("第一部分 基础知识")
        d.add_paragraph("一、网络概念")
        d.add_paragraph("局域网覆盖一个较小的地理范围。")
        bold(d, "常用设备")
        d.add_paragraph("交换机和路由器是最常见的网络设备。")
        bold(d, "这一句虽然是粗体，但是它是一个完整的句子。")  # ends like a sentence
        d.add_paragraph("二、网络安全")
        d.add_paragraph("密码至少八位。")

    path = write_docx(tmp_path / "notes.docx", build)
    assert headings(path) == [
        (1, "第一部分 基础知识"), (2, "一、网络概念"), (3, "常用设备"), (2, "二、网络安全"),
    ]  # fmt: skip
    parsed = parse(path)
    assert "docx-inferred-headings" in parsed.notes
    assert parsed.title == "第一部分 基础知识"
    by_path = {c.heading_path: c.text for c in chunk(parsed)}
    assert by_path[("第一部分 基础知识", "一、网络概念", "常用设备")].startswith("交换机")


# ---------------------------------------------------------------- lists, tables, boxes


def test_lists_keep_their_computed_markers(tmp_path: Path) -> None:
    def build(d: Document) -> None:
        d.add_heading("Release steps", level=1)
        steps = new_list(d)
        for step in ("Freeze the branch", "Run the smoke tests", "Tag the release"):
            numbered(d, step, steps)
        d.add_paragraph("Then tell the team.")
        d.add_paragraph("Check the dashboard", style="List Bullet")
        d.add_paragraph("Watch the error rate", style="List Bullet")
        parts = new_list(d, "chineseCounting", "（%1）")
        numbered(d, "准备", parts)
        numbered(d, "发布", parts)

    blocks = parse(write_docx(tmp_path / "steps.docx", build)).blocks
    lists = [b.text for b in blocks if b.kind is BlockKind.LIST]
    assert lists == [
        "1. Freeze the branch\n2. Run the smoke tests\n3. Tag the release",
        "- Check the dashboard\n- Watch the error rate",
        "（一） 准备\n（二） 发布",
    ]


def test_tables_become_pipe_tables_and_text_boxes_are_kept(tmp_path: Path) -> None:
    def build(d: Document) -> None:
        d.add_heading("Ports", level=1)
        table(d, [["Service", "Port"], ["web", "7020"], ["db | replica", "5432"]])
        table(d, [["注意：升级前先备份。"]])  # a one-cell frame is a paragraph
        text_box(d, "See the box:", "Do not expose port 5432.")

    parsed = parse(write_docx(tmp_path / "ports.docx", build))
    tables = [b for b in parsed.blocks if b.kind is BlockKind.TABLE]
    assert [t.text for t in tables] == [
        "| Service | Port |\n|---|---|\n| web | 7020 |\n| db \\| replica | 5432 |"
    ]
    texts = [b.text for b in parsed.blocks]
    assert "注意：升级前先备份。" in texts and "Do not expose port 5432." in texts
    assert "See the box:" in texts


def test_long_docx_table_splits_between_rows_with_header_repeated(tmp_path: Path) -> None:
    rows = [["Item", "Description"]] + [
        [f"item {i}", f"description of item number {i} with several words"] for i in range(60)
    ]
    parsed = parse(write_docx(tmp_path / "big.docx", lambda d: table(d, rows)))
    chunks = chunk(parsed, max_tokens=120)
    assert len(chunks) > 3
    assert all(c.text.startswith("| Item | Description |\n|---|---|\n") for c in chunks)
    assert all(c.token_count <= 120 for c in chunks)
    body = [ln for c in chunks for ln in c.text.splitlines() if ln.startswith("| item")]
    assert body == [
        f"| item {i} | description of item number {i} with several words |" for i in range(60)
    ]


# ---------------------------------------------------------------- exam papers and FAQs


def _exam(d: Document) -> None:
    d.add_paragraph("信息技术基础测验")
    d.add_paragraph("考试时间 40 分钟，满分 100 分。")
    d.add_paragraph("一、单项选择题（每题 5 分）")
    items = new_list(d)
    numbered(d, "下列哪一项是计算机的输入设备？", items)
    table(d, [["A. 显示器", "B. 打印机"], ["C. 键盘", "D. 音箱"]])
    numbered(d, "我国的首都是哪座城市？", items)
    d.add_paragraph("A.北京\tB.上海\tC.广州\tD.深圳")
    numbered(d, "一个字节由几个二进制位组成？", items)
    table(d, [["A. 4", "B. 8", "C. 16", "D. 32"]])
    d.add_paragraph("解析：一个字节等于八个二进制位。")
    d.add_paragraph("二、判断题")
    d.add_paragraph("1. 内存断电后数据会丢失。")
    d.add_paragraph("2. 硬盘属于输出设备。")
    bold(d, "参考答案")
    d.add_paragraph("一、1.C 2.A 3.B")
    table(d, [["题号", "1", "2"], ["答案", "对", "错"]])


def test_exam_paper_options_in_tables_and_tabs_with_answer_key(tmp_path: Path) -> None:
    parsed = parse(write_docx(tmp_path / "exam.docx", _exam, title="信息技术基础测验"))
    assert "answer-key" in parsed.notes
    chunks = chunk(parsed)
    questions = [c for c in chunks if c.kind is Q]
    assert [(c.heading_path[-1], c.question) for c in questions] == [
        ("一、单项选择题（每题 5 分）", "下列哪一项是计算机的输入设备？"),
        ("一、单项选择题（每题 5 分）", "我国的首都是哪座城市？"),
        ("一、单项选择题（每题 5 分）", "一个字节由几个二进制位组成？"),
        ("二、判断题", "内存断电后数据会丢失。"),
        ("二、判断题", "硬盘属于输出设备。"),
    ]
    first, second, third, fourth, fifth = (c.text for c in questions)
    assert first == (
        "1. 下列哪一项是计算机的输入设备？\n\nA. 显示器\nB. 打印机\nC. 键盘\nD. 音箱\n\n答案：C"
    )
    assert second.endswith("A.北京\nB.上海\nC.广州\nD.深圳\n\n答案：A")
    # The answer goes before the explanation.
    assert third.endswith("D. 32\n\n答案：B\n\n解析：一个字节等于八个二进制位。")
    assert fourth.endswith("答案：对") and fifth.endswith("答案：错")
    # The key itself is gone: no chunk is made of it.
    assert not any("1.C 2.A" in c.text or "题号" in c.text for c in chunks)
    assert [c.kind for c in chunks if c.kind is not Q] == [S]


def test_english_answer_key_table_of_numbers_and_letters(tmp_path: Path) -> None:
    def build(d: Document) -> None:
        d.add_heading("Part I: Multiple Choice", level=1)
        d.add_paragraph("1. Which planet is closest to the sun?")
        d.add_paragraph("A. Venus\tB. Mercury\tC. Mars")
        d.add_paragraph("2. What is the boiling point of water at sea level?")
        d.add_paragraph("A. 90 °C\tB. 100 °C\tC. 110 °C")
        d.add_heading("Answer key", level=1)
        table(d, [["Question", "Answer"], ["1", "B"], ["2", "B"]])

    chunks = chunk(parse(write_docx(tmp_path / "quiz.docx", build)))
    assert [(c.kind, c.question) for c in chunks] == [
        (Q, "Which planet is closest to the sun?"),
        (Q, "What is the boiling point of water at sea level?"),
    ]
    assert all(c.text.endswith("\n\nAnswer: B") for c in chunks)


def test_word_faq_without_heading_styles(tmp_path: Path) -> None:
    def build(d: Document) -> None:
        d.add_paragraph("IT 服务台常见问题")
        bold(d, "忘记密码怎么办？")
        d.add_paragraph("在登录页点击“忘记密码”，重置链接会在五分钟内发到邮箱。")
        bold(d, "可以在家连公司网络吗？")
        d.add_paragraph("可以，先安装 VPN 客户端，再用工号登录。")
        d.add_paragraph("问：打印机没有反应怎么办")
        d.add_paragraph("答：先检查纸盒，再重启打印机。")
        d.add_paragraph("Q: How do I book a meeting room?")
        d.add_paragraph("A: Use the calendar and add the room as a guest.")

    chunks = chunk(parse(write_docx(tmp_path / "faq.docx", build)))
    assert [(c.kind, c.question) for c in chunks] == [
        (S, None),
        (F, "忘记密码怎么办？"),
        (F, "可以在家连公司网络吗？"),
        (F, "打印机没有反应怎么办"),
        (F, "How do I book a meeting room?"),
    ]
    assert chunks[2].text.endswith("可以，先安装 VPN 客户端，再用工号登录。")


# ---------------------------------------------------------------- bad input


def test_pdf_named_docx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "report.docx"
    path.write_bytes(b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n")
    with pytest.raises(IngestError, match="is a PDF"):
        parse(path)


def test_encrypted_docx_is_refused_as_password_protected(tmp_path: Path) -> None:
    # What Office writes for a password: an OLE2 compound file with an EncryptedPackage.
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
    path = tmp_path / "secret.docx"
    path.write_bytes(ole + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 512)
    with pytest.raises(IngestError) as err:
        parse(path)
    assert err.value.reason == PASSWORD_PROTECTED


def test_truncated_docx_is_refused(tmp_path: Path) -> None:
    good = write_docx(tmp_path / "good.docx", lambda d: d.add_paragraph("Hello " * 500))
    cut = tmp_path / "cut.docx"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(IngestError) as err:
        parse(cut)
    assert err.value.reason == NOT_AN_OFFICE_FILE.format(suffix=".docx", label="Word")


def test_docx_with_a_broken_document_part_is_refused_as_damaged(tmp_path: Path) -> None:
    good = write_docx(tmp_path / "good.docx", lambda d: d.add_paragraph("Hello"))
    bad = tmp_path / "bad.docx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "word/document.xml":
                data = data[: len(data) // 2]  # XML cut in the middle
            dst.writestr(info, data)
    with pytest.raises(IngestError, match="The Word file is damaged"):
        parse(bad)


def test_empty_docx_is_refused(tmp_path: Path) -> None:
    path = write_docx(tmp_path / "empty.docx", lambda d: None)
    with pytest.raises(IngestError) as err:
        parse(path)
    assert err.value.reason == DOCX_NO_TEXT


def test_footnotes_are_marked_and_appended(tmp_path: Path) -> None:
    def build(d: Document) -> None:
        d.add_heading("Leave policy", level=1)
        footnote_ref(d.add_paragraph("Staff get ten days of paid leave."))

    path = write_docx(tmp_path / "notes.docx", build)
    add_footnotes(path, "Part-time staff get a share by their hours.")
    texts = [b.text for b in parse(path).blocks]
    assert texts[-2:] == [
        "Staff get ten days of paid leave.[1]",
        "[1] Part-time staff get a share by their hours.",
    ]


def test_answer_key_ranges_are_spliced_into_multi_line_blocks() -> None:
    # Generic over blocks (a PDF page's paragraph holds several questions).
    from ingest.structure import attach_answer_key
    from ingest.types import Block

    blocks = [
        Block(BlockKind.HEADING, "一、选择题", level=1),
        Block(BlockKind.PARAGRAPH, "1. 2+2=?\nA. 3 B. 4\n2. 3+3=?\nA. 6 B. 7", page=1),
        Block(BlockKind.PARAGRAPH, "答案：1-2 BA", page=2),
    ]
    out, attached = attach_answer_key(blocks)
    assert attached
    assert [b.text for b in out] == [
        "一、选择题",
        "1. 2+2=?\nA. 3 B. 4\n答案：B\n2. 3+3=?\nA. 6 B. 7",
        "答案：A",
    ]
    # A key that matches no question changes nothing.
    lone = [
        Block(BlockKind.PARAGRAPH, "See the notes."),
        Block(BlockKind.PARAGRAPH, "答案：1.B 2.C"),
    ]
    assert attach_answer_key(lone) == (lone, False)
