"""Passages read as text: Markdown source -> plain text, and snippets of the best sentences
with their highlights (app/text/plain.py, app/text/snippets.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.text.highlight import ELLIPSIS, highlight_spans, highlight_terms, render_highlighted
from app.text.plain import BULLET, markdown_plain, plain_passage
from app.text.snippets import SNIPPET_CHARS, _squash, best_snippet

MANUAL = """\
---
title: Lantern CLI
---
## Options

**-W** *SECS*, **--wait**=*SECS*
: Wait SECS seconds \\[default 5\\] before the lamp is lit; see [the timing guide](https://lantern.example/timing).

> **Note:** a `--wait` of `0` lights the lamp at once.
> It never blocks.

- Install with `pip install lantern`
- Run ~~lantern-old~~ *lantern* **start**
  1. nested first
  2. nested second

3. third step
4. fourth step

| Flag | Meaning |
|------|---------|
| `-q` | quiet   |

```
lantern --wait 3 &amp;
```

<details><summary>More</summary>Hidden <b>detail</b> &amp; more.</details>

![lamp diagram](lamp.png) &copy; Lantern team<br>all rights kept
"""


def test_markdown_source_becomes_plain_text() -> None:
    text = markdown_plain(MANUAL)
    for markup in ("**", "\\[", "](", "> ", "`", "~~", "<b>", "<details>", "#", "---"):
        assert markup not in text, markup
    assert "-W SECS, --wait=SECS" in text
    assert "Wait SECS seconds [default 5] before the lamp is lit; see the timing guide." in text
    assert "Note: a --wait of 0 lights the lamp at once. It never blocks." in text
    assert f"{BULLET}Install with pip install lantern" in text
    assert f"{BULLET}Run lantern-old lantern start" in text
    assert "  1. nested first\n  2. nested second" in text  # a nested list is indented
    assert "3. third step\n4. fourth step" in text  # an ordered list keeps its numbers
    assert "Flag | Meaning\n-q | quiet" in text
    assert "lantern --wait 3 &amp;" in text  # code is kept exactly, entities and all
    assert "Hidden detail & more." in text
    assert "lamp diagram © Lantern team\nall rights kept" in text
    assert "title: Lantern CLI" not in text  # front matter is metadata


def test_headings_and_paragraphs() -> None:
    text = markdown_plain("# Title\n\nFirst *para*\nwrapped.\n\n### Sub\n\nSecond.\n")
    assert text == "Title\n\nFirst para wrapped.\n\nSub\n\nSecond."


def test_only_markdown_is_rendered() -> None:
    pdf_text = "1. First step\n* a starred line\n**not bold** and [x](y) \\[kept\\]"
    assert plain_passage(pdf_text, "pdf") == pdf_text
    assert plain_passage("**bold**", "markdown") == "bold"


def test_html_in_a_passage_stays_text() -> None:
    text = markdown_plain('<script>alert("x")</script>\n\nSafe <img src=x onerror=alert(1)> text')
    html = str(render_highlighted(text, []))
    assert "<script" not in html and "<img" not in html
    assert text.startswith('alert("x")') and "Safe" in text and "text" in text


def test_snippet_of_a_long_passage_is_short_and_marks_the_terms() -> None:
    filler = " ".join(f"Filler sentence number {i} says nothing useful." for i in range(20))
    text = filler + " The lamp timer can be reset from the settings page. " + filler
    spans = highlight_spans(text, highlight_terms("reset the lamp timer"))
    body, marks = best_snippet(text, spans)
    assert len(body) <= SNIPPET_CHARS
    assert "The lamp timer can be reset from the settings page." in body
    assert body.startswith(ELLIPSIS) and body.endswith(ELLIPSIS)
    assert [body[a:b].lower() for a, b in marks] == ["lamp", "timer", "reset"]


def test_snippet_joins_distant_sentences_with_an_ellipsis() -> None:
    filler = " ".join(f"Filler sentence number {i} says nothing useful at all." for i in range(12))
    text = f"Lamps need oil. {filler} Wicks need trimming. {filler}"
    spans = highlight_spans(text, highlight_terms("lamps wicks"))
    body, marks = best_snippet(text, spans, max_chars=200)
    assert len(body) <= 200
    assert [body[a:b] for a, b in marks] == ["Lamps", "Wicks"]
    assert f" {ELLIPSIS} " in body


def test_short_passage_is_whole_with_whitespace_squashed() -> None:
    text = "Line one\nwraps here.\n\n• item"
    body, marks = best_snippet(text, [(0, 4)])
    assert body == "Line one wraps here. • item"
    assert marks == [(0, 4)]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=" \n\t\u3000ab。", max_size=80))
def test_squash_maps_every_offset_to_the_characters_kept_before_it(text: str) -> None:
    body, where = _squash(text)
    assert body == " ".join(text.split())
    assert len(where) == len(text) + 1
    assert where == sorted(where) and where[0] == 0 and where[-1] == len(body)
    # Every other character lands on itself.
    assert all(body[where[i]] == ch for i, ch in enumerate(text) if not ch.isspace())


def test_one_long_sentence_is_cut_around_its_highlight() -> None:
    text = "word " * 100 + "target " + "word " * 100
    spans = highlight_spans(text, ["target"])
    body, marks = best_snippet(text, spans)
    assert len(body) <= SNIPPET_CHARS
    assert [body[a:b] for a, b in marks] == ["target"]


def test_chinese_snippet() -> None:
    text = "公司规定" * 30 + "。年假需要提前两周提交申请。" + "其他说明" * 40 + "。"
    body, marks = best_snippet(text, highlight_spans(text, highlight_terms("年假申请")))
    assert len(body) <= SNIPPET_CHARS
    assert "年假需要提前两周提交申请。" in body
    assert {body[a:b] for a, b in marks} == {"年假", "申请"}


_WORDS = st.sampled_from(["lamp", "oil", "wick", "灯", "油", "。", ".", "\n", " ", "- ", "1. "])


@settings(max_examples=200, deadline=None)
@given(st.lists(_WORDS, max_size=400), st.integers(20, 400))
def test_snippet_properties(words: list[str], max_chars: int) -> None:
    text = " ".join(words)
    spans = highlight_spans(text, ["lamp", "灯"])
    body, marks = best_snippet(text, spans, max_chars=max_chars)
    assert len(body) <= max_chars
    for a, b in marks:
        assert 0 <= a < b <= len(body)
        assert body[a:b] in "lamp" or body[a:b] == "灯"  # a cut may keep part of a word
