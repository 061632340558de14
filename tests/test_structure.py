"""FAQ and question-bank structure: one chunk per question, kind and question text set."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.chunk import chunk
from ingest.parse import parse
from ingest.structure import question_headings
from ingest.types import Block, BlockKind, Chunk, ChunkKind, ParsedDocument

FIXTURES = Path(__file__).parent / "fixtures"
FAST = settings(max_examples=100, deadline=None)
S, F, Q = ChunkKind.SECTION, ChunkKind.FAQ, ChunkKind.QUESTION


def h(level: int, text: str, page: int | None = None) -> Block:
    return Block(BlockKind.HEADING, text, level=level, page=page)


def p(text: str, page: int | None = None) -> Block:
    return Block(BlockKind.PARAGRAPH, text, page=page)


def doc(*blocks: Block) -> ParsedDocument:
    return ParsedDocument(blocks=blocks)


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def summary(chunks: list[Chunk]) -> list[tuple[ChunkKind, str | None, str]]:
    """(kind, question, first line of text) per chunk."""
    return [(c.kind, c.question, c.text.splitlines()[0]) for c in chunks]


# ---------------------------------------------------------------- FAQ documents


def test_english_faq_headings_bold_lines_and_q_a_pairs() -> None:
    chunks = chunk(parse(FIXTURES / "faq_en.md"))
    assert summary(chunks) == [
        (S, None, "Answers to the questions the help desk hears most often."),
        (F, "How do I reset my password?", "Open the sign-in page and choose \"Forgot password\". "
         "A reset link arrives by email within five minutes."),
        (F, "Can I change my username?", "No. Usernames are fixed once the account is created, "
         "but your display name can be changed under Settings."),
        (S, None, "Billing questions are answered by the finance team."),
        (F, "Why was I charged twice this month?", "**Why was I charged twice this month?**"),
        (F, "How do I download an invoice?", "**How do I download an invoice?**"),
        (F, "What are the support hours?", "Q: What are the support hours?"),
        (F, "Is phone support available?", "Q: Is phone support available?"),
        (F, "Where do I report a security problem?", "***Q***: Where do I report a security problem?"),
    ]  # fmt: skip
    by_question = {c.question: c for c in chunks}
    # (a) the question heading ends the path; its whole section is the answer.
    reset = by_question["How do I reset my password?"]
    assert reset.heading_path == ("Team Portal FAQ", "Accounts", "How do I reset my password?")
    assert reset.text.endswith("only the latest link works.")
    # (b) a bold question keeps every answer paragraph up to the next question.
    twice = by_question["Why was I charged twice this month?"]
    assert twice.heading_path == ("Team Portal FAQ", "Billing")
    assert twice.text.endswith("issued automatically within ten days.")
    assert "invoice" not in twice.text
    # (c) Q:/A: pairs in one section are one chunk each, with the section's path.
    hours = by_question["What are the support hours?"]
    assert hours.heading_path == ("Team Portal FAQ", "Support")
    assert hours.text == (
        "Q: What are the support hours?\nA: Weekdays from 9:00 to 18:00 Central European Time."
    )
    security = by_question["Where do I report a security problem?"]
    assert security.text.endswith("Do not open a public ticket.")


def test_chinese_wen_da_pairs_with_both_colons() -> None:
    chunks = chunk(parse(FIXTURES / "faq_wenda_zh.md"))
    assert summary(chunks) == [
        (S, None, "以下问答整理自财务部的答疑记录，如有变化以财务部通知为准。"),
        (F, "出差的餐费可以报销吗？", "问：出差的餐费可以报销吗？"),
        (F, "打车费用需要什么凭证？", "问:打车费用需要什么凭证？"),
        (F, "报销单提交后多久到账？", "问：报销单提交后多久到账？"),
    ]
    # The answer in later paragraphs stays with its question.
    assert chunks[-1].text.endswith("如遇节假日，到账时间顺延。")
    assert all(c.heading_path == ("报销常见问题",) for c in chunks)


def test_chinese_question_headings() -> None:
    chunks = chunk(parse(FIXTURES / "faq_zh.md"))
    assert [(c.kind, c.question) for c in chunks] == [
        (S, None),
        (F, "年假有多少天？"),
        (F, "年假可以跨年使用吗？"),
        (S, None),
        (S, None),
    ]


def test_q_marker_and_numbered_question_headings_lose_their_marks() -> None:
    chunks = chunk(
        doc(
            h(1, "Help"),
            h(2, "Q1: How do I export data?"),
            p("Use the export button."),
            h(2, "5.2.1 Why is my upload slow?"),
            p("Large PDFs are parsed page by page."),
        )
    )
    assert [(c.kind, c.question, c.heading_path[-1]) for c in chunks] == [
        (F, "How do I export data?", "Q1: How do I export data?"),
        (F, "Why is my upload slow?", "5.2.1 Why is my upload slow?"),
    ]


def test_question_like_openings_need_company() -> None:
    readme = [
        ("Guide",),
        ("Guide", "Installation"),
        ("Guide", "How it works"),
        ("Guide", "Usage"),
        ("Guide", "License"),
    ]
    assert question_headings(readme) == {}
    bot = [("Bot",), *(("Bot", t) for t in ["what is a wave", "who wrote it", "how far is it"])]
    assert set(question_headings(bot)) == set(bot[1:])
    assert question_headings([("FAQ",), ("FAQ", "How to get a text translated")]) == {
        ("FAQ", "How to get a text translated"): "How to get a text translated"
    }
    # A question mark (or 吗) needs no company.
    assert question_headings([("Guide", "Fast CLI?"), ("Guide", "可以退款吗")]) == {
        ("Guide", "Fast CLI?"): "Fast CLI?",
        ("Guide", "可以退款吗"): "可以退款吗",
    }


def test_lone_bold_question_in_prose_stays_a_section() -> None:
    chunks = chunk(doc(h(1, "Essay"), p("Intro."), p("**Why does this matter?**"), p("Because.")))
    assert [(c.kind, c.text) for c in chunks] == [
        (S, "Intro.\n\n**Why does this matter?**\n\nBecause."),
    ]


def test_oversized_faq_answer_is_split_and_every_piece_keeps_the_question() -> None:
    answer = " ".join(f"Step {i} takes a while to finish." for i in range(60))
    chunks = chunk(
        doc(h(1, "FAQ"), p(f"Q: Why is it slow?\nA: {answer}"), p("Q: Is it safe?\nA: Yes.")),
        max_tokens=40,
    )
    assert len(chunks) > 3 and all(c.token_count <= 40 for c in chunks)
    *slow, safe = chunks
    assert all((c.kind, c.question) == (F, "Why is it slow?") for c in slow)
    assert (safe.kind, safe.question, safe.text) == (F, "Is it safe?", "Q: Is it safe?\nA: Yes.")
    assert squash("".join(c.text for c in slow)) == squash(f"Q: Why is it slow?\nA: {answer}")


# ---------------------------------------------------------------- question banks


def test_chinese_question_bank() -> None:
    chunks = chunk(parse(FIXTURES / "exam_zh.md"))
    choice = ("信息技术基础测验", "一、单项选择题（每题 5 分）")
    short = ("信息技术基础测验", "二、简答题")
    assert [(c.kind, c.heading_path, c.question) for c in chunks] == [
        (S, ("信息技术基础测验",), None),
        (Q, choice, "下列哪一项是计算机的输入设备？"),
        (Q, choice, "一个字节由几个二进制位组成？"),
        (Q, choice, "下列软件中，属于操作系统的是（ ）"),
        (Q, short, "什么是局域网？请举一个例子。"),
        (Q, short, "简述备份数据的两种常见方法。"),
    ]
    # Each question keeps its options, answer and explanation, and nothing of the next.
    first, second = chunks[1].text.splitlines(), chunks[2].text.splitlines()
    assert first[-2:] == [
        "答案：C",
        "解析：键盘把人的操作转换为信号输入计算机，其余三项都是输出设备。",
    ]
    assert second[0] == "2. 一个字节由几个二进制位组成？"
    assert second[-1] == "【解析】一个字节等于八个二进制位。"
    assert chunks[3].text.endswith("正确答案：A")


def test_english_question_bank() -> None:
    chunks = chunk(parse(FIXTURES / "exam_en.md"))
    assert [(c.kind, c.question) for c in chunks] == [
        (S, None),
        (Q, "Which layer of the OSI model routes packets between networks?"),
        (Q, "Which port does HTTPS use by default?"),
        (Q, "What does DNS translate?"),
    ]
    assert chunks[1].text.splitlines()[-1].strip().startswith("Explanation: Routers")
    assert chunks[2].text.splitlines()[-1].strip() == "Answer: C"
    assert all(c.heading_path[-1] == "Part A: Multiple choice" for c in chunks[1:])


def test_numbered_how_to_lists_stay_sections() -> None:
    chunks = chunk(parse(FIXTURES / "howto_en.md"))
    assert [c.kind for c in chunks] == [S, S, S]
    assert all(c.question is None for c in chunks)
    assert chunks[0].text.startswith("Follow these steps")  # not cut before the list


def test_pdf_like_bank_across_blocks_and_pages() -> None:
    """Several questions in one page block, one question across a page break."""
    page1 = (
        "一、选择题（每题 3 分，共 9 分）\n"
        "答题须知：请将答案写在答题卡上。\n"
        "1. 下列数中最大的是（ ）\n"
        "A. 0.5 B. 0.25 C. 1 D. 0.75\n"
        "2. 方程 x + 1 = 3 的解是（ ）\n"
        "A. 1\nB. 2\nC. 3\nD. 4\n"
        "3. 下列图形中，\n一定是轴对称图形的是（ ）"
    )
    page2 = "A. 平行四边形 B. 梯形\nC. 圆 D. 三角形\n【答案】C\n【解析】圆沿任意直径对折都能重合。"
    page2b = "二、解答题（共 10 分）\n1. 计算 2 + 3 × 4。\n解. 原式 = 2 + 12 = 14.\n2. 解方程 2x = 8。\n解. x = 4."
    chunks = chunk(doc(h(1, "期末试卷"), p(page1, page=1), p(page2, page=2), p(page2b, page=2)))
    part1 = ("期末试卷", "一、选择题（每题 3 分，共 9 分）")
    part2 = ("期末试卷", "二、解答题（共 10 分）")
    assert [(c.kind, c.heading_path, c.question, c.page_start, c.page_end) for c in chunks] == [
        (S, part1, None, 1, 1),
        (Q, part1, "下列数中最大的是（ ）", 1, 1),
        (Q, part1, "方程 x + 1 = 3 的解是（ ）", 1, 1),
        (Q, part1, "下列图形中，一定是轴对称图形的是（ ）", 1, 2),
        (S, part2, None, 2, 2),
        (Q, part2, "计算 2 + 3 × 4。", 2, 2),
        (Q, part2, "解方程 2x = 8。", 2, 2),
    ]
    # The instructions are their own small chunk under the part's path.
    assert chunks[0].text == "一、选择题（每题 3 分，共 9 分）\n答题须知：请将答案写在答题卡上。"
    assert chunks[3].text.endswith("【解析】圆沿任意直径对折都能重合。")
    assert chunks[4].text == "二、解答题（共 10 分）"
    assert squash("".join(c.text for c in chunks)) == squash(page1 + page2 + page2b)


def test_sub_questions_and_stray_numbers_stay_inside_their_question() -> None:
    text = (
        "三、计算题\n"
        "1. 设 f(x) = x2，求\n(1) f(2);\n(2) f(3).\n解. (1) 4; (2) 9.\n"
        "2. 求 1 + 1 的值．\n解. 原式 =\n6. ······6分\n= 2 ······8分"
    )
    chunks = chunk(doc(p(text, page=3)))
    assert [(c.kind, c.question) for c in chunks] == [
        (S, None),
        (Q, "设 f(x) = x2，求"),
        (Q, "求 1 + 1 的值．"),
    ]
    assert chunks[2].text.endswith("= 2 ······8分")


def test_options_on_the_stem_line_and_inline_answers_are_not_the_stem() -> None:
    text = (
        "1. 下列说法正确的是· · · · · · ·( C ) (A) 甲\n(B) 乙\n(C) 丙\n(D) 丁\n"
        "2. 证明 1 + 1 = 2．证. 由定义可得．\n"
        "3. 最小的质数是 ( ). A. 1 B. 2 C. 3 D. 4"
    )
    chunks = chunk(doc(h(1, "Exam"), p(text)))
    assert [c.question for c in chunks] == [
        "下列说法正确的是 ( C )",
        "证明 1 + 1 = 2．",
        "最小的质数是 ( ).",
    ]


def test_oversized_question_is_split_and_every_piece_keeps_kind_and_question() -> None:
    explanation = "解析：" + "因为每一步都需要仔细计算，所以答案是乙。" * 12
    bank = f"1. 哪个对？\nA. 甲 B. 乙\n答案：B\n{explanation}\n2. 哪个错？\nA. 甲 B. 乙\n答案：A"
    chunks = chunk(doc(h(1, "练习"), p(bank)), max_tokens=60)
    assert all(c.token_count <= 60 for c in chunks)
    *first, last = chunks
    assert len(first) > 2
    assert all((c.kind, c.question) == (Q, "哪个对？") for c in first)
    assert (last.kind, last.question, last.text) == (
        Q,
        "哪个错？",
        "2. 哪个错？\nA. 甲 B. 乙\n答案：A",
    )


def test_q_numbered_items_with_options_are_exam_questions() -> None:
    text = "Q1. Which is a prime?\nA. 4 B. 6 C. 7 D. 9\nQ2. Which is even?\nA. 3 B. 8 C. 5 D. 1"
    chunks = chunk(doc(h(1, "Practice"), p(text)))
    assert [(c.kind, c.question) for c in chunks] == [
        (Q, "Which is a prime?"),
        (Q, "Which is even?"),
    ]


def test_a_question_heading_with_options_is_an_exam_question() -> None:
    chunks = chunk(doc(h(2, "1. 下列哪个是偶数？"), p("A. 3 B. 4 C. 5 D. 7\n答案：B")))
    assert [(c.kind, c.question) for c in chunks] == [(Q, "下列哪个是偶数？")]


def test_other_numbering_styles() -> None:
    for first, second in [
        ("1、", "2、"),
        ("（1）", "（2）"),
        ("(1)", "(2)"),
        ("第1题 ", "第2题 "),
        ("第一题 ", "第二题 "),
        ("例1 ", "例2 "),
        ("1．", "2．"),
    ]:
        text = (
            f"{first}甲是什么？\nA、一 B、二\n答案：A\n{second}乙是什么？\n(A) 三 (B) 四\n答案：B"
        )
        chunks = chunk(doc(p(text)))
        assert [(c.kind, c.question) for c in chunks] == [
            (Q, "甲是什么？"),
            (Q, "乙是什么？"),
        ], first


def test_numbered_prose_with_a_stray_option_letter_stays_a_section() -> None:
    text = "1. Open the app.\n2. Choose plan A. Then pay.\n3. Done."
    chunks = chunk(doc(h(1, "Steps"), p(text)))
    assert [(c.kind, c.text) for c in chunks] == [(S, text)]
    # A "Questions" heading is where a README says how to get help, not an exam.
    help_text = "1. Check the documentation.\n2. Open an issue."
    chunks = chunk(doc(h(2, "Questions"), p(help_text)))
    assert [(c.kind, c.text) for c in chunks] == [(S, help_text)]


# ---------------------------------------------------------------- properties

_safe_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10) | st.text(
    alphabet="年假病事工资员的申请天", min_size=1, max_size=6
)
_safe_line = st.lists(_safe_word, min_size=1, max_size=8).map(" ".join)
_NUMBERS = {
    "dot": "{}. ",
    "comma": "{}、",
    "paren": "（{}）",
    "ti": "第{}题 ",
    "li": "例{} ",
}


@st.composite
def _bank(draw: st.DrawFn) -> tuple[list[Block], str | None, list[tuple[str, str, set[int]]]]:
    """A question bank cut into PDF-like page blocks at random lines.

    Returns the blocks, the part header (or None) and each question's stem, squashed
    text and pages.
    """
    number = _NUMBERS[draw(st.sampled_from(sorted(_NUMBERS)))]
    items: list[tuple[str, list[str]]] = []
    for k in range(1, draw(st.integers(2, 6)) + 1):
        stem = f"{draw(_safe_line)}{draw(st.sampled_from(['', '？', '?', '（ ）']))}"
        if draw(st.booleans()):
            options = ["A. " + draw(_safe_word) + " B. " + draw(_safe_word)]
        else:
            options = [f"{m} {draw(_safe_line)}" for m in ["(A)", "(B)", "(C)", "(D)"]]
        answer = draw(st.sampled_from(["答案：A", "【答案】B", "Answer: C", "正确答案：D", ""]))
        explain = draw(st.sampled_from(["", "解析：", "【解析】", "Explanation: "]))
        lines = [number.format(k) + stem, *options]
        lines += [answer] if answer else []
        lines += [explain + draw(_safe_line)] if explain else []
        items.append((stem, lines))
    part = draw(st.sampled_from([None, "一、选择题（每题 3 分）", "Part II: Multiple choice"]))
    all_lines = ([part] if part else []) + [line for _, lines in items for line in lines]
    owner = ([-1] if part else []) + [k for k, (_, lines) in enumerate(items) for _ in lines]
    cuts = sorted(draw(st.sets(st.integers(1, len(all_lines) - 1), max_size=6)))
    blocks: list[Block] = [h(1, "H0 bank")]
    pages: list[set[int]] = [set() for _ in items]
    page = 1
    for a, b in zip([0, *cuts], [*cuts, len(all_lines)], strict=True):
        page += draw(st.integers(0, 1))
        blocks.append(p("\n".join(all_lines[a:b]), page))
        for k in owner[a:b]:
            if k >= 0:
                pages[k].add(page)
    out = [
        (" ".join(stem.split()), squash("".join(lines)), pages[k])
        for k, (stem, lines) in enumerate(items)
    ]
    return blocks, part, out


def _runs(pairs: list[tuple[str | None, str]]) -> list[tuple[str | None, str]]:
    """Join consecutive texts with the same question (the pieces of one unit)."""
    out: list[tuple[str | None, str]] = []
    for q, t in pairs:
        if out and out[-1][0] == q:
            out[-1] = (q, out[-1][1] + t)
        else:
            out.append((q, t))
    return out


@FAST
@given(bank=_bank(), max_tokens=st.integers(8, 300) | st.just(5000))
def test_property_each_bank_question_is_its_own_chunks(
    bank: tuple[list[Block], str | None, list[tuple[str, str, set[int]]]], max_tokens: int
) -> None:
    blocks, part, items = bank
    chunks = chunk(ParsedDocument(blocks=tuple(blocks)), max_tokens=max_tokens)
    path = ("H0 bank", part) if part else ("H0 bank",)
    assert all(c.heading_path == path for c in chunks)
    assert all(c.token_count <= max_tokens for c in chunks)
    if part:
        assert squash(part) == squash("".join(c.text for c in chunks if c.kind is S))
    else:
        assert all(c.kind is Q for c in chunks)
    questions = [c for c in chunks if c.kind is Q]
    # Pieces of one question are consecutive, carry its stem, and hold exactly its text
    # (two equal stems in a row can't be told apart, so they are compared joined).
    got = _runs([(c.question, squash(c.text)) for c in questions])
    assert got == _runs([(stem, text) for stem, text, _ in items])
    if max_tokens == 5000:
        assert len(questions) == len(items)
        for c, (_, _, pages) in zip(questions, items, strict=True):
            assert (c.page_start, c.page_end) == (min(pages), max(pages))


_Q_FORMS = [
    ("Q: {}", "A: {}"),
    ("Q1. {}", "A1. {}"),
    ("Question: {}", "Answer: {}"),
    ("问：{}", "答：{}"),
    ("问:{}", "答:{}"),
    ("**{}?**", "{}"),
    ("***Q***: {}", "***A***: {}"),
]


@FAST
@given(
    form=st.sampled_from(_Q_FORMS),
    pairs=st.lists(st.tuples(_safe_line, st.lists(_safe_line, min_size=1, max_size=4)), min_size=2),
    split_answers=st.booleans(),
    max_tokens=st.integers(8, 300) | st.just(5000),
)
def test_property_each_faq_pair_is_its_own_chunks(
    form: tuple[str, str],
    pairs: list[tuple[str, list[str]]],
    split_answers: bool,
    max_tokens: int,
) -> None:
    ask, answer = form
    blocks = [h(1, "H0 help")]
    units: list[tuple[str, str]] = []
    for question, answer_lines in pairs:
        text = [ask.format(question), answer.format(answer_lines[0]), *answer_lines[1:]]
        if split_answers:
            blocks += [p(t) for t in text]
        else:
            blocks.append(p("\n".join(text)))
        expected_q = " ".join(question.split()) + ("?" if ask.startswith("**{") else "")
        units.append((expected_q, squash("".join(text))))
    chunks = chunk(ParsedDocument(blocks=tuple(blocks)), max_tokens=max_tokens)
    assert all(c.kind is F and c.heading_path == ("H0 help",) for c in chunks)
    assert all(c.token_count <= max_tokens for c in chunks)
    got = _runs([(c.question, squash(c.text)) for c in chunks])
    assert got == _runs([(q, t) for q, t in units])
    if max_tokens == 5000:
        assert len(chunks) == len(units)
