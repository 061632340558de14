"""HTML pages -> blocks of their main content: headings, lists, tables, code, charsets."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.text.plain import markdown_plain
from ingest.chunk import chunk
from ingest.errors import IngestError
from ingest.parse import parse
from ingest.parse.htmlpage import NO_TEXT_HTML, NOT_HTML, TOO_DEEP_HTML, decode_html
from ingest.types import BlockKind, ParsedDocument

PAGE = """<!DOCTYPE html>
<html lang="en"><head>
<meta charset="utf-8">
<title>Deploy guide - Team Wiki</title>
<meta property="og:title" content="Deploy guide">
<link rel="stylesheet" href="http://example.invalid/site.css">
<script>document.write("tracking")</script>
<style>.x { color: red }</style>
</head><body>
<header class="site-header"><a href="/">Team Wiki</a><nav><a href="/a">All pages</a></nav></header>
<div class="breadcrumbs">Home / Ops / Deploy</div>
<aside>Recently viewed</aside>
<div id="cookie-banner">We use cookies</div>
<main>
  <h1>Deploy guide</h1>
  <div class="toc">Contents: Steps, Owners</div>
  <p>Deploys run on <b>Tuesdays</b> and <a href="/t">Thursdays</a>.<br>Never on Fridays.</p>
  <h2>Steps</h2>
  <ol>
    <li>Freeze the branch
      <ul><li>announce in chat</li><li>lock merges<ol><li>in the settings</li></ol></li></ul>
    </li>
    <li>Run the pipeline</li>
  </ol>
  <h2>Owners</h2>
  <table>
    <caption>Who to call</caption>
    <thead><tr><th>Area</th><th>Owner | backup</th></tr></thead>
    <tbody><tr><td>Backend</td><td>Mei Lin</td></tr>
    <tr><td>Mobile</td><td>Jonas<br>Priya</td></tr></tbody>
  </table>
  <h3>Commands</h3>
  <pre><code class="language-bash">kb deploy --env prod
kb status</code></pre>
  <blockquote><p>Rollbacks are cheap.</p><p>Use them.</p></blockquote>
  <p style="display:none">hidden text</p>
  <p># not a heading, and &lt;div&gt; is text</p>
  <form><input value="search here"></form>
</main>
<footer>Copyright Example Corp</footer>
<noscript>Enable JavaScript</noscript>
</body></html>
"""


def _parse_page(tmp_path: Path, html: str | bytes, name: str = "page.html") -> ParsedDocument:
    path = tmp_path / name
    path.write_bytes(html.encode() if isinstance(html, str) else html)
    return parse(path)


@pytest.fixture
def page(tmp_path: Path) -> ParsedDocument:
    return _parse_page(tmp_path, PAGE)


def test_main_content_only(page: ParsedDocument) -> None:
    text = page.text
    for furniture in (
        "tracking",
        "color: red",
        "Team Wiki",
        "All pages",
        "Home / Ops",
        "Recently viewed",
        "cookies",
        "Contents:",
        "hidden text",
        "search here",
        "Copyright",
        "Enable JavaScript",
    ):
        assert furniture not in text
    assert "Deploys run on Tuesdays and Thursdays." in text


def test_headings_and_title(page: ParsedDocument) -> None:
    headings = [(b.level, b.text) for b in page.blocks if b.kind is BlockKind.HEADING]
    assert headings == [(1, "Deploy guide"), (2, "Steps"), (2, "Owners"), (3, "Commands")]
    assert page.meta_title == page.title == "Deploy guide"
    assert page.page_count is None


def test_lists_nest(page: ParsedDocument) -> None:
    (lst,) = [b for b in page.blocks if b.kind is BlockKind.LIST]
    assert lst.text.splitlines() == [
        "1. Freeze the branch",
        "   - announce in chat",
        "   - lock merges",
        "     1. in the settings",
        "2. Run the pipeline",
    ]
    assert markdown_plain(lst.text).splitlines()[:2] == [
        "1. Freeze the branch",
        "  • announce in chat",
    ]


def test_tables_code_and_quotes(page: ParsedDocument) -> None:
    (table,) = [b for b in page.blocks if b.kind is BlockKind.TABLE]
    assert table.text.splitlines() == [
        "| Area | Owner \\| backup |",
        "|---|---|",
        "| Backend | Mei Lin |",
        "| Mobile | Jonas Priya |",
    ]
    assert "Who to call" in page.text
    (code,) = [b for b in page.blocks if b.kind is BlockKind.CODE]
    assert code.text == "```bash\nkb deploy --env prod\nkb status\n```"
    (quote,) = [b for b in page.blocks if b.kind is BlockKind.QUOTE]
    assert quote.text == "> Rollbacks are cheap.\n>\n> Use them."
    assert markdown_plain(quote.text) == "Rollbacks are cheap.\nUse them."


def test_text_that_looks_like_markup_stays_text(page: ParsedDocument) -> None:
    last = [b for b in page.blocks if b.kind is BlockKind.PARAGRAPH][-1]
    assert markdown_plain(last.text) == "# not a heading, and <div> is text"
    first = next(b for b in page.blocks if b.kind is BlockKind.PARAGRAPH)
    # A <br> is a line of its own in the chunk; the plain rendering reads it as a space.
    assert first.text == "Deploys run on Tuesdays and Thursdays.\nNever on Fridays."


def test_chunks_follow_headings(page: ParsedDocument) -> None:
    paths = [c.heading_path for c in chunk(page)]
    assert ("Deploy guide", "Owners") in paths
    assert ("Deploy guide", "Owners", "Commands") in paths


def test_confluence_main_content(tmp_path: Path) -> None:
    html = """<html><head><title>Ops : Runbook</title></head><body>
    <div id="header"><ul class="menu"><li>Spaces</li></ul></div>
    <div id="main"><h1 id="title-heading">Ops : Runbook</h1>
    <div id="main-content" class="wiki-content"><h2>Restart</h2><p>Restart the agent.</p></div>
    <div class="pageSection">Attachments: none</div></div>
    <div id="footer">Powered by Confluence</div></body></html>"""
    doc = _parse_page(tmp_path, html)
    assert [b.text for b in doc.blocks] == ["Restart", "Restart the agent."]
    assert doc.title == "Ops : Runbook"


def test_body_without_main_drops_furniture(tmp_path: Path) -> None:
    html = """<html><body><header><h1>Leave policy</h1></header>
    <nav>Home</nav><div class="sidebar-left">links</div>
    <p>Staff get 15 days.</p><footer>contact us</footer></body></html>"""
    doc = _parse_page(tmp_path, html, "leave.htm")
    assert [b.text for b in doc.blocks] == ["Leave policy", "Staff get 15 days."]
    assert doc.title == "Leave policy"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('<meta charset="gbk"><p>病假需要证明</p>'.encode("gbk"), "病假需要证明"),
        (
            '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">'
            "<p>caf\xe9 \x93quoted\x94</p>".encode("latin-1"),
            "café “quoted”",
        ),
        (b"\xef\xbb\xbf<p>\xe4\xbc\x91\xe5\x81\x87</p>", "休假"),
        ("\ufeff<p>休假 UTF-16</p>".encode("utf-16-le"), "休假 UTF-16"),
        ("<p>没有声明的 GB18030</p>".encode("gb18030"), "没有声明的 GB18030"),
        # The declaration lies (UTF-16 in ASCII): read as UTF-8, as browsers do.
        ('<meta charset="utf-16"><p>naïve</p>'.encode(), "naïve"),
        ('<?xml version="1.0" encoding="utf-8"?><html><p>XHTML ✓</p></html>'.encode(), "XHTML ✓"),
    ],
)
def test_charsets(tmp_path: Path, data: bytes, expected: str) -> None:
    assert _parse_page(tmp_path, data).text == expected


def test_png_named_html_is_refused() -> None:
    with pytest.raises(IngestError) as err:
        decode_html(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    assert err.value.reason == NOT_HTML.format(suffix=".html")


@pytest.mark.parametrize(
    "html",
    [
        "<html><head><title>Only a title</title><script>x()</script></head><body></body></html>",
        "<nav>menu only</nav>",
        "<!-- a comment -->",
    ],
)
def test_page_without_text_is_refused(tmp_path: Path, html: str) -> None:
    with pytest.raises(IngestError) as err:
        _parse_page(tmp_path, html)
    assert err.value.reason == NO_TEXT_HTML


def test_deep_nesting_is_refused_not_half_read(tmp_path: Path) -> None:
    html = "<p>start</p>" + "<div>" * 5000 + "bottom" + "</div>" * 5000 + "<p>end</p>"
    with pytest.raises(IngestError) as err:
        _parse_page(tmp_path, html)
    assert err.value.reason == TOO_DEEP_HTML.format(depth=256)


def test_nesting_within_the_parser_limit_is_read_without_recursion(tmp_path: Path) -> None:
    # 80 tables one in another's only cell (240 elements deep), and a list 120 deep.
    tables = "<table><tr><td>" * 80 + "inner cell" + "</td></tr></table>" * 80
    lists = "<ul><li>item" * 120 + "</li></ul>" * 120
    doc = _parse_page(tmp_path, f"<p>top</p>{tables}{lists}")
    assert "inner cell" in doc.text
    (lst,) = [b for b in doc.blocks if b.kind is BlockKind.LIST]
    assert lst.text.count("item") == 120
    assert max(len(line) - len(line.lstrip()) for line in lst.text.splitlines()) <= 16


def test_external_references_are_not_fetched(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    html = f"""<!DOCTYPE html [<!ENTITY x SYSTEM "file://{secret}">]>
    <html><body><p>before &x; after</p><img src="file://{secret}" alt="diagram">
    <iframe src="file://{secret}"></iframe><object data="file://{secret}"></object></body></html>"""
    doc = _parse_page(tmp_path, html)
    assert "TOP SECRET" not in doc.text
    assert "before" in doc.text and "diagram" in doc.text


def test_a_long_table_is_cut_between_rows_under_its_header(tmp_path: Path) -> None:
    rows = "".join(f"<tr><td>host-{i:03d}</td><td>rack {i % 7}</td></tr>" for i in range(200))
    html = f"<h1>Inventory</h1><table><tr><th>Host</th><th>Rack</th></tr>{rows}</table>"
    chunks = chunk(_parse_page(tmp_path, html), max_tokens=120)
    assert len(chunks) > 3
    for c in chunks:
        assert c.text.startswith("| Host | Rack |\n|---|---|\n| host-"), c.text[:80]
    assert sum(c.text.count("| host-") for c in chunks) == 200
