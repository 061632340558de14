"""Chunker: sections along headings, token budget, nothing dropped (with properties)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.text.tokens import count_tokens
from ingest.chunk import chunk
from ingest.parse import parse, parse_markdown
from ingest.types import Block, BlockKind, Chunk, ChunkKind, ParsedDocument

FIXTURES = Path(__file__).parent / "fixtures"
FAST = settings(max_examples=100, deadline=None)


def h(level: int, text: str, page: int | None = None) -> Block:
    return Block(BlockKind.HEADING, text, level=level, page=page)


def p(text: str, page: int | None = None) -> Block:
    return Block(BlockKind.PARAGRAPH, text, page=page)


def doc(*blocks: Block) -> ParsedDocument:
    return ParsedDocument(blocks=blocks)


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("   \n\t", 0),
        ("hello", 2),
        ("abcd", 1),
        ("internationalization", 5),
        ("a, b!", 4),
        ("你好，世界", 5),
        ("カタカナ 한국어", 7),
        ("version 3.14", 5),
        ("snake_case", 4),
        ("abc中文def", 4),
    ],
)
def test_count_tokens(text: str, tokens: int) -> None:
    assert count_tokens(text) == tokens


def test_heading_paths_follow_level_jumps() -> None:
    chunks = chunk(
        doc(
            p("Preamble."),
            h(1, "A"),
            h(3, "A.x.1"),
            p("deep"),
            h(2, "A.2"),
            p("second"),
            h(4, "A.2.x.1"),
            p("deeper"),
            h(1, "B"),
            p("top again"),
        )
    )
    assert [(c.heading_path, c.text) for c in chunks] == [
        ((), "Preamble."),
        (("A", "A.x.1"), "deep"),
        (("A", "A.2"), "second"),
        (("A", "A.2", "A.2.x.1"), "deeper"),
        (("B",), "top again"),
    ]
    assert [c.ordinal for c in chunks] == list(range(5))


def test_empty_leaf_heading_is_its_own_chunk_and_parents_are_not() -> None:
    chunks = chunk(doc(h(1, "Parent"), h(2, "Empty leaf"), h(2, "Full"), p("body"), h(1, "Last")))
    assert [(c.heading_path, c.text) for c in chunks] == [
        (("Parent", "Empty leaf"), "Empty leaf"),
        (("Parent", "Full"), "body"),
        (("Last",), "Last"),
    ]


def test_small_section_is_one_chunk_with_blocks_joined() -> None:
    (only,) = chunk(doc(h(1, "S"), p("one", page=2), p("two", page=3)))
    assert only.text == "one\n\ntwo"
    assert (only.page_start, only.page_end) == (2, 3)
    assert only.token_count == count_tokens(only.text)
    assert only.embed_text == "S\n\none\n\ntwo"


def test_long_section_splits_on_block_boundaries() -> None:
    paragraphs = [" ".join(f"w{i}x{j}" for j in range(10)) for i in range(7)]  # 10 tokens each
    chunks = chunk(doc(h(1, "Long"), *(p(t) for t in paragraphs)), max_tokens=35)
    assert [c.text.split("\n\n") for c in chunks] == [
        paragraphs[0:3],
        paragraphs[3:6],
        paragraphs[6:7],
    ]
    assert all(c.heading_path == ("Long",) for c in chunks)


def test_oversized_block_splits_on_lines_first() -> None:
    lines = [f"line {i} " + "word " * 6 for i in range(10)]  # 9 tokens each
    block = "\n".join(line.rstrip() for line in lines)
    chunks = chunk(doc(p("intro"), p(block), p("outro")), max_tokens=20)
    assert all(c.token_count <= 20 for c in chunks)
    assert chunks[0].text == "intro"  # an oversized block starts a fresh chunk
    for c in chunks[1:-1]:
        assert all(line.startswith("line ") for line in c.text.split("\n"))
    assert squash("".join(c.text for c in chunks)) == squash("intro" + block + "outro")


def test_cjk_sentences_split_at_full_stops() -> None:
    sentences = [
        "年假需要提前三个工作日申请。",
        "病假超过两天需要证明！",
        "事假不带薪；",
        "详情请咨询人事？",
    ]
    text = "".join(sentences * 4)
    chunks = chunk(doc(p(text)), max_tokens=30)
    assert len(chunks) > 1
    assert all(c.token_count <= 30 for c in chunks)
    assert all(c.text[-1] in "。！？；" for c in chunks)
    assert "".join(c.text for c in chunks) == text


def test_english_sentences_split_after_stops_not_inside_numbers() -> None:
    text = " ".join(["Version 3.14 is out, see e.g. the notes."] * 12)
    chunks = chunk(doc(p(text)), max_tokens=25)
    assert all(c.token_count <= 25 for c in chunks)
    assert all(c.text.endswith(".") for c in chunks)
    assert " ".join(c.text for c in chunks) == text


def test_hard_split_as_last_resort() -> None:
    blob = "x" * 1000  # one "word", 250 tokens
    chunks = chunk(doc(p(f"before {blob} after")), max_tokens=40)
    assert all(c.token_count <= 40 for c in chunks)
    assert "".join(c.text for c in chunks).replace(" ", "") == f"before{blob}after"


def test_max_tokens_must_be_positive() -> None:
    with pytest.raises(ValueError):
        chunk(doc(p("x")), max_tokens=0)


def test_chinese_fixture_sections() -> None:
    chunks = chunk(parse(FIXTURES / "faq_zh.md"))
    assert [c.heading_path for c in chunks] == [
        ("请假制度常见问题",),
        ("请假制度常见问题", "年假", "年假有多少天？"),
        ("请假制度常见问题", "年假", "年假可以跨年使用吗？"),
        ("请假制度常见问题", "病假"),
        ("请假制度常见问题", "事假"),
    ]


# ---------------------------------------------------------------- properties

_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12) | st.text(
    alphabet="年假病事工资员的申请天。，？", min_size=1, max_size=8
)
_line = st.lists(_word, min_size=1, max_size=12).map(" ".join)

# Lines of FAQ and question-bank shape, so the properties also cover structured sections:
# Q/A and 问/答 pairs, bold questions, numbered items (in sequence or not), options,
# answers, explanations and exam part headers ("一、选择题") that join the heading path.
_QA_LINE = st.sampled_from(
    [
        "Q: {}?",
        "A: {}",
        "Q1. {}",
        "Question: {}",
        "Answer: {}",
        "问：{}？",
        "答：{}",
        "问:{}",
        "**{}?**",
        "***Q***: {}",
        "1. {}",
        "2. {}",
        "3. {}",
        "1、{}",
        "2、{}",
        "（1）{}",
        "（2）{}",
        "第1题 {}",
        "第2题 {}",
        "A. {} B. {}",
        "(A) {}",
        "(B) {}",
        "C. {}",
        "答案：{}",
        "【答案】{}",
        "【解析】{}",
        "解析：{}",
        "Explanation: {}",
        "解. {}",
        "一、选择题（每题 3 分）",
        "二、解答题",
        "Part II: Multiple choice",
        "一、选择题（每题 3 分）\n1. {}\nA. {} B. {}\n2. {}\n(A) {}\n(B) {}\n答案：{}",
        "{}",
    ]
)


@st.composite
def _structured_text(draw: st.DrawFn) -> str:
    lines = []
    for template in draw(st.lists(_QA_LINE, min_size=1, max_size=16)):
        lines.append(template.format(*(draw(_line) for _ in range(template.count("{}")))))
    return "\n".join(lines)


@st.composite
def _blocks(draw: st.DrawFn) -> list[Block]:
    """Random block sequences: headings of any level (some of them questions), paragraphs
    of any text, and paragraphs of FAQ and question-bank lines."""
    blocks: list[Block] = []
    for i in range(draw(st.integers(0, 14))):
        page = draw(st.none() | st.integers(1, 9))
        if draw(st.booleans()):
            ending = draw(st.sampled_from(["", "", "?", "？", " 吗"]))
            blocks.append(h(draw(st.integers(1, 6)), f"H{i} {draw(_word)}{ending}", page))
        else:
            text = draw(
                st.text(min_size=1, max_size=300)
                | st.lists(_line, max_size=40).map("\n".join)
                | _structured_text()
            )
            blocks.append(p(text, page))
    return blocks


def _expected_sections(blocks: list[Block]) -> list[tuple[tuple[str, ...], str]]:
    """Oracle: (heading path, squashed text) of each section that must yield chunks."""
    out: list[tuple[tuple[str, ...], str]] = []
    stack: list[tuple[int, str]] = []
    current: list[str] = []
    path: tuple[str, ...] = ()
    heading: Block | None = None

    def close(next_level: int | None) -> None:
        body = "".join(squash(t) for t in current)
        if body:
            out.append((path, body))
        elif heading is not None and (next_level is None or next_level <= heading.level):
            out.append((path, squash(heading.text)))

    for block in blocks:
        if block.kind is BlockKind.HEADING:
            close(block.level)
            while stack and stack[-1][0] >= block.level:
                stack.pop()
            stack.append((block.level, block.text))
            path, heading, current = tuple(t for _, t in stack), block, []
        else:
            current.append(block.text)
    close(None)
    return out


def _group(
    chunks: list[Chunk], blocks: list[Block] | None = None
) -> list[tuple[tuple[str, ...], str]]:
    """Consecutive chunks of one section joined: (heading path, squashed text).

    A path one longer than a heading path of ``blocks`` ends in an exam part header
    found in the section's text; it must be one of the section's own lines.
    """
    headings = {p for p, _ in _expected_sections(blocks)} if blocks is not None else set()
    groups: list[tuple[tuple[str, ...], str]] = []
    for c in chunks:
        path = c.heading_path
        if blocks is not None and path not in headings:
            path, part = path[:-1], path[-1]
            assert path in headings and part in {
                line.strip() for b in blocks for line in b.text.splitlines()
            }
        if groups and groups[-1][0] == path:
            groups[-1] = (path, groups[-1][1] + squash(c.text))
        else:
            groups.append((path, squash(c.text)))
    return groups


@FAST
@given(blocks=_blocks(), max_tokens=st.integers(1, 120))
def test_property_blocks_nothing_dropped_and_within_budget(
    blocks: list[Block], max_tokens: int
) -> None:
    chunks = chunk(ParsedDocument(blocks=tuple(blocks)), max_tokens=max_tokens)
    assert _group(chunks, blocks) == _expected_sections(blocks)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.text and c.text == c.text.strip("\n")
        assert c.token_count == count_tokens(c.text) <= max_tokens
        assert c.kind is not ChunkKind.SECTION or c.question is None


@st.composite
def _markdown(draw: st.DrawFn) -> tuple[str, list[Block]]:
    """A Markdown source and the blocks it must parse to (fences hold '#' lines)."""
    parts: list[str] = []
    expected: list[Block] = []
    for i in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["heading", "setext", "paragraph", "fence", "indented"]))
        if kind == "heading":
            level = draw(st.integers(1, 6))
            text = f"H{i} {draw(_line)}"
            closing = " " + "#" * draw(st.integers(1, 3)) if draw(st.booleans()) else ""
            parts.append(f"{'#' * level} {text}{closing}")
            expected.append(h(level, text))
        elif kind == "setext":
            level = draw(st.integers(1, 2))
            text = f"S{i} {draw(_line)}"
            parts.append(f"{text}\n{'=-'[level - 1] * draw(st.integers(1, 5))}")
            expected.append(h(level, text))
        elif kind == "paragraph":
            text = "\n".join(draw(st.lists(_line, min_size=1, max_size=30)))
            parts.append(text)
            expected.append(p(text))

        elif kind == "fence":
            char = draw(st.sampled_from("`~"))
            fence = char * draw(st.integers(3, 5))
            other = "~" if char == "`" else "`"
            # '#' lines, the other fence character, and a shorter fence of the same one
            # (a ``` line inside a ```` fence) all stay inside the code block.
            inner = st.sampled_from(
                ["# not a heading", "## nor this", other * 3, char * (len(fence) - 1)]
            )
            lines = draw(st.lists(inner | _line, max_size=8))
            text = "\n".join([fence, *lines, fence])
            parts.append(text)
            expected.append(Block(BlockKind.CODE, text))
        else:
            text = "\n".join("    # " + ln for ln in draw(st.lists(_line, min_size=1, max_size=4)))
            parts.append(text)
            expected.append(Block(BlockKind.CODE, text))
    return "\n\n".join(parts) + "\n", expected


def _merge_code(blocks: list[Block]) -> list[Block]:
    """Adjacent indented code blocks separated by a blank line are one block in CommonMark."""
    out: list[Block] = []
    for b in blocks:
        prev = out[-1] if out else None
        if (
            prev
            and prev.kind is BlockKind.CODE
            and b.kind is BlockKind.CODE
            and (prev.text.startswith("    ") and b.text.startswith("    "))
        ):
            out[-1] = Block(BlockKind.CODE, prev.text + "\n\n" + b.text)
        else:
            out.append(b)
    return out


@FAST
@given(source=_markdown(), max_tokens=st.integers(8, 200))
def test_property_markdown_parse_then_chunk(
    source: tuple[str, list[Block]], max_tokens: int
) -> None:
    text, expected = source
    parsed = parse_markdown(text)
    got = [(b.kind, b.level, b.text) for b in parsed.blocks]
    assert got == [(b.kind, b.level, b.text) for b in _merge_code(expected)]
    chunks = chunk(parsed, max_tokens=max_tokens)
    assert _group(chunks) == _expected_sections(list(parsed.blocks))
    assert all(c.token_count <= max_tokens for c in chunks)


@st.composite
def _structured_markdown(draw: st.DrawFn) -> str:
    """Markdown of headings (some questions) and FAQ / question-bank paragraphs."""
    parts: list[str] = []
    for i in range(draw(st.integers(1, 10))):
        if draw(st.booleans()):
            ending = draw(st.sampled_from(["", "?", "？"]))
            parts.append(f"{'#' * draw(st.integers(1, 4))} H{i} {draw(_line)}{ending}")
        else:
            parts.append(draw(_structured_text()))
    return "\n\n".join(parts) + "\n"


@FAST
@given(source=_structured_markdown(), max_tokens=st.integers(8, 200))
def test_property_structured_markdown_nothing_dropped(source: str, max_tokens: int) -> None:
    parsed = parse_markdown(source)
    chunks = chunk(parsed, max_tokens=max_tokens)
    assert _group(chunks, list(parsed.blocks)) == _expected_sections(list(parsed.blocks))
    assert all(c.token_count <= max_tokens for c in chunks)


def test_long_tables_and_code_blocks_split_only_between_rows_and_lines() -> None:
    from ingest.parse import parse_markdown

    rows = "\n".join(
        f"| item {i} | description of item number {i} with several words |" for i in range(200)
    )
    code = "\n".join(f"x_{i} = compute({i})  # step {i}" for i in range(300))
    md = f"# Inventory\n\n| Name | Description |\n|---|---|\n{rows}\n\n```python\n{code}\n```\n"
    chunks = chunk(parse_markdown(md), max_tokens=200)
    assert len(chunks) > 10 and all(c.token_count <= 200 for c in chunks)
    lines = [line for c in chunks for line in c.text.splitlines()]
    table = [line for line in lines if line.startswith("| item")]
    assert len(table) == 200 and all(line.endswith("|") for line in table)
    steps = [line for line in lines if line.startswith("x_")]
    assert steps == code.splitlines()
