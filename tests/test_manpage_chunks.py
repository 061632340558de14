"""Man pages converted to Markdown: each option of an option list is its own passage,
starting with the option's name and named by it in the heading path."""

from __future__ import annotations

import re

import pytest

from app.text.tokens import count_tokens
from ingest.chunk import chunk
from ingest.parse import parse_markdown
from ingest.structure import looks_like_man_page, option_term
from ingest.types import BlockKind, Chunk

# A made-up command, the way man-to-Markdown converters write options: the term on its
# own line ending in a hard break (two spaces, written <BR> here), its description on
# the next lines.
ENGLISH = """\
# NAME

frobnicate - bend widgets into shape

# SYNOPSIS

**frobnicate** \\[*options*\\] *WIDGET*

# DESCRIPTION

**frobnicate** bends each *WIDGET* until it fits. It reads options first:

- a dash on its own reads widgets from standard input
- -x in a list item is a list item, not an option

# OPTIONS

**-k** *NUM*, **--knots=***NUM*<BR>
Tie *NUM* knots in every widget before bending it. The default is three knots.

**-q**, **--quiet**<BR>
Print nothing. Errors still set the exit status.

**-\u200a-dry-run**<BR>
Show what would be bent without bending anything.
A second line of the same description.

**--colour\\[=*WHEN*\\]**<BR>
Colour the bent parts; *WHEN* is never, always or auto.

# EXIT STATUS

Zero when every widget was bent.
""".replace("<BR>", "  ")

# The same page in Chinese, written like a configuration file's manual: option terms
# as paragraphs of their own, descriptions indented as quotes.
CHINESE = """\
# 名称

widget.conf - 部件弯折器的配置文件

# 描述

这个文件控制 **frobnicate**(1) 的默认行为。

# 选项

下面的选项都位于 "\\[Widget\\]" 小节：

*BendLimit=*

> 接受一个正整数，表示每个部件最多弯折多少次。默认值是 3 。

*KnotStyle=*, *KnotSize=*

> 设置打结的样式与大小。样式可以是 "flat" 或 "round"。
>
> 大小以毫米为单位，默认值是 5 。

*RemoveScraps=*

> 接受一个布尔值。若设为 "yes"，弯折后丢弃碎屑。

以上选项修改后需要重新启动服务。

# 参见

**frobnicate**(1)
"""


def man_chunks(source: str, max_tokens: int = 400) -> list[Chunk]:
    doc = parse_markdown(source)
    assert looks_like_man_page(doc.blocks)
    return chunk(doc, max_tokens=max_tokens)


def plain(text: str) -> str:
    """Text without Markdown emphasis, escapes, hair spaces or whitespace runs."""
    text = re.sub(r"[*\\]", "", text).replace("-\u200a-", "--")
    return " ".join(text.split())


def under(chunks: list[Chunk], section: str) -> list[Chunk]:
    return [c for c in chunks if c.heading_path[:1] == (section,)]


def test_english_options_are_their_own_passages() -> None:
    chunks = under(man_chunks(ENGLISH), "OPTIONS")
    names = ["-k NUM, --knots=NUM", "-q, --quiet", "--dry-run", "--colour[=WHEN]"]
    assert [c.heading_path for c in chunks] == [("OPTIONS", n) for n in names]
    for c, name in zip(chunks, names, strict=True):
        assert plain(c.text).startswith(name)
    assert "Tie NUM knots" in plain(chunks[0].text)
    assert chunks[2].text.endswith("A second line of the same description.")


def test_chinese_options_are_their_own_passages() -> None:
    chunks = man_chunks(CHINESE)
    options = under(chunks, "选项")
    assert [c.heading_path for c in options] == [
        ("选项",),  # the line introducing the list
        ("选项", "BendLimit="),
        ("选项", "KnotStyle=, KnotSize="),
        ("选项", "RemoveScraps="),
        ("选项",),  # the paragraph after the indented descriptions
    ]
    assert options[0].text == '下面的选项都位于 "\\[Widget\\]" 小节：'
    assert options[1].text.startswith("*BendLimit=*")
    assert options[2].text.startswith("*KnotStyle=*, *KnotSize=*")
    assert "大小以毫米为单位" in options[2].text  # the whole description, both paragraphs
    assert options[4].text == "以上选项修改后需要重新启动服务。"


@pytest.mark.parametrize(
    ("source", "names"),
    [
        (ENGLISH, ["-k", "-q", "--dry-run", "--colour"]),
        (CHINESE, ["BendLimit=", "KnotStyle=", "RemoveScraps="]),
    ],
    ids=["english", "chinese"],
)
@pytest.mark.parametrize("max_tokens", [40, 80, 400])
def test_no_passage_ends_with_the_next_options_name(
    source: str, names: list[str], max_tokens: int
) -> None:
    # Small budgets too: packing several options per chunk used to cut right after a
    # term, leaving its description to the next chunk.
    chunks = man_chunks(source, max_tokens=max_tokens)
    for c in chunks:
        last_line = plain(c.text.splitlines()[-1])
        assert not any(last_line.startswith(name) for name in names), (c.heading_path, last_line)
    for name in names:
        found = [c for c in chunks if plain(c.text).startswith(name)]
        assert found, name
        assert found[0].heading_path[-1].startswith(name)


@pytest.mark.parametrize("source", [ENGLISH, CHINESE], ids=["english", "chinese"])
@pytest.mark.parametrize("max_tokens", [3, 8, 17, 40, 400])
def test_nothing_is_dropped_or_reordered_and_budgets_hold(source: str, max_tokens: int) -> None:
    doc = parse_markdown(source)
    chunks = chunk(doc, max_tokens=max_tokens)
    body = "".join(b.text for b in doc.blocks if b.kind is not BlockKind.HEADING)
    joined = "".join(c.text for c in chunks)
    assert re.sub(r"\s+", "", joined) == re.sub(r"\s+", "", body)
    assert all(c.token_count == count_tokens(c.text) <= max_tokens for c in chunks)


def test_an_oversized_option_keeps_its_name_in_every_piece() -> None:
    long = " ".join(["Bend the widget once more and check it again."] * 40)
    source = ENGLISH.replace("Print nothing.", long + " Print nothing.")
    chunks = [c for c in man_chunks(source, max_tokens=60) if c.heading_path[-1] == "-q, --quiet"]
    assert len(chunks) > 2
    assert plain(chunks[0].text).startswith("-q, --quiet")
    assert chunks[-1].text.endswith("Errors still set the exit status.")


def test_an_ordinary_list_in_a_man_page_stays_a_section() -> None:
    chunks = under(man_chunks(ENGLISH), "DESCRIPTION")
    assert len(chunks) == 1
    assert chunks[0].heading_path == ("DESCRIPTION",)
    assert chunks[0].text.endswith("- -x in a list item is a list item, not an option")


def test_ordinary_markdown_is_unchanged() -> None:
    # The same option lines outside a man page (no NAME heading) stay one section, and
    # a list of dashed items is a list, never option terms.
    source = ENGLISH.replace("# NAME\n\nfrobnicate - bend widgets into shape\n\n", "")
    doc = parse_markdown(source)
    assert not looks_like_man_page(doc.blocks)
    options = [c for c in chunk(doc) if c.heading_path[:1] == ("OPTIONS",)]
    assert [c.heading_path for c in options] == [("OPTIONS",)]
    notes = chunk(
        parse_markdown(
            "# Notes\n\n- -v prints more\n- -q prints less\n\n**-k**  \nnot a man page\n"
        )
    )
    assert [c.heading_path for c in notes] == [("Notes",)]


def test_a_lone_option_like_line_is_not_a_list() -> None:
    source = "# NAME\n\ntool - do things\n\n# NOTES\n\n**-x**  \nOnly one of these.\n"
    chunks = man_chunks(source)
    assert [c.heading_path for c in chunks] == [("NAME",), ("NOTES",)]


def test_consecutive_terms_share_one_description() -> None:
    source = (
        "# NAME\n\ntool - do things\n\n# OPTIONS\n\n**-R**\n\n**-r**\n\n"
        "> Recurse into folders.\n\n**-v**\n\n> Say more.\n"
    )
    chunks = man_chunks(source)
    assert [c.heading_path for c in chunks[1:]] == [("OPTIONS", "-R, -r"), ("OPTIONS", "-v")]
    assert chunks[1].text.startswith("**-R**")


@pytest.mark.parametrize(
    ("line", "term"),
    [
        ("**-A** *NUM*, **--after-context=***NUM*  ", "-A NUM, --after-context=NUM"),
        ("**-A*** NUM***, -\u200a-after-context=***NUM*  ", "-A NUM, --after-context=NUM"),
        ("** -\u200a-include=**PATTERN  ", "--include=PATTERN"),
        ("**\u2212\u2212verbose**", "--verbose"),
        ("*KillAllThings=*", "KillAllThings="),
        ("*OnlyUsers=*, *ExceptUsers=*", "OnlyUsers=, ExceptUsers="),
        ("`-o` *file*:", "-o file"),
        ("\\-\\-verbose\\", "--verbose"),
        ("**-q**, **--quiet**, **--silent**", "-q, --quiet, --silent"),
        (
            "**--colour\\[=*WHEN*\\]***, ***--color\\[=*WHEN*\\]**",
            "--colour[=WHEN], --color[=WHEN]",
        ),
    ],
)
def test_option_terms(line: str, term: str) -> None:
    assert option_term(line) == term


@pytest.mark.parametrize(
    "line",
    [
        "-5 degrees is what the thermometer showed this morning",
        "**-q** 安静模式",
        "**GREP_COLOR**",
        "Zero when every widget was bent.",
        "**frobnicate** \\[*options*\\] *WIDGET*",
        "",
    ],
)
def test_not_option_terms(line: str) -> None:
    assert option_term(line) is None
