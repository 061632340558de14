"""The document view of long documents: one bounded part per page, each part rendered once
(cached by content hash), links to a passage open the part that holds it; the page reads
a file as ingest does (UTF-16 without a BOM)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from markupsafe import Markup
from sqlalchemy import select

import app.documents.rendered as rendered
from app.db import transaction
from app.documents import service as documents
from app.documents.models import Chunk, Document
from app.runtime import Runtime
from app.text.decode import NotText, decode_text
from app.text.parts import PART_BYTES, locate, split_parts
from app.text.render import Heading, link_references, render_markdown
from ingest.errors import IngestError
from ingest.parse import decode_text as ingest_decode_text
from ingest.worker import Worker
from tests.factories import store_parsed, store_upload
from tests.samples import big_list
from tests.webclient import dom

# One part's rendered text, and a whole page (metadata, text, chunks, navigation).
ARTICLE_CAP = 160 * 1024
PAGE_CAP = 320 * 1024


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the sources the document page renders (a spy around the real renderer)."""
    calls: list[int] = []
    real = rendered.render_markdown

    def spy(source: str, **kwargs: object) -> tuple[Markup, list[Heading]]:
        calls.append(len(source.encode()))
        return real(source, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rendered, "render_markdown", spy)
    return calls


def chunk_ids(rt: Runtime, doc_id: int) -> list[int]:
    with rt.sessions() as s:
        query = select(Chunk.id).where(Chunk.document_id == doc_id).order_by(Chunk.ordinal)
        return list(s.scalars(query))


def many_headings(sections: int) -> bytes:
    out = ["# Handbook", ""]
    for i in range(sections):
        out += [
            f"## Rule {i}",
            "",
            f"Rule {i} says: keep record {i * 31 % 9973} for {i % 12} months.",
            "",
        ]
    return "\n".join(out).encode()


def walk(c: TestClient, doc_id: int) -> list[tuple[str, BeautifulSoup]]:
    """Every part of the document's view in order, by its "next" links: (html, page)."""
    pages = []
    url: str | None = f"/documents/{doc_id}"
    while url is not None:
        r = c.get(url)
        assert r.status_code == 200, r.text
        page = dom(r.text)
        pages.append((r.text, page))
        nxt = page.select_one("nav.parts a[rel=next]")
        url = f"/documents/{doc_id}{nxt['href']}" if nxt is not None else None
        assert len(pages) < 1000
    return pages


def cache_dir(rt: Runtime, doc_id: int) -> Path:
    with rt.sessions() as s:
        digest = s.get_one(Document, doc_id).content_hash
    return rt.settings.data_dir / "render-cache" / f"v{rendered.VERSION}" / digest[:2] / digest


# --- cutting a text into parts ------------------------------------------------------------


def _check_cover(text: str, max_bytes: int = PART_BYTES) -> list[tuple[int, int, str]]:
    parts = split_parts(text, max_bytes=max_bytes)
    assert parts[0].start == 0 and parts[-1].end == len(text)
    assert all(a.end == b.start for a, b in itertools.pairwise(parts))
    return [(p.start, p.end, p.prefix) for p in parts]


def test_a_tight_list_is_cut_between_items() -> None:
    text = big_list(20_000, {}).decode()
    parts = _check_cover(text, 16 * 1024)
    assert len(parts) > 10
    for start, end, prefix in parts:
        assert len(text[start:end].encode()) <= 16 * 1024 and prefix == ""
        assert text[start:].startswith(("# Inventory", "- item "))


def test_a_long_code_block_is_reopened_and_never_cut_elsewhere() -> None:
    code = "".join(f"line {i} # not a heading\n\n" for i in range(4000))
    text = f"# Log\n\nIntro.\n\n~~~text\n{code}~~~\n\nAfter.\n"
    parts = _check_cover(text, 8 * 1024)
    assert len(parts) > 5
    for i, (start, end, prefix) in enumerate(parts):
        html, headings = render_markdown(prefix + text[start:end])
        if 0 < i < len(parts) - 1:
            assert prefix == "~~~text\n"
            assert str(html).startswith('<pre><code class="language-text">')
            assert headings == []  # "# not a heading" stays code


def test_a_long_table_repeats_its_header() -> None:
    rows = "".join(f"| {i} | value {i} |\n" for i in range(5000))
    text = f"Intro.\n\n| n | value |\n| ---: | :--- |\n{rows}\nAfter.\n"
    parts = _check_cover(text, 8 * 1024)
    assert len(parts) > 5
    for start, end, prefix in parts[1:-1]:
        assert prefix == "| n | value |\n| ---: | :--- |\n"
        page = dom(str(render_markdown(prefix + text[start:end])[0]))
        assert [th.get_text() for th in page.select("th")] == ["n", "value"]
        assert len(page.select("tbody tr")) > 50


def test_front_matter_and_sections_are_kept_whole() -> None:
    front = "---\ntitle: T\n\nnotes: |\n" + "".join(f"\n  - {i}\n" for i in range(300)) + "---\n"
    text = front + "".join(f"## S{i}\n\nBody {i}.\n\n" for i in range(3000))
    parts = _check_cover(text, 4 * 1024)
    assert parts[0][1] >= len(front)  # no cut inside the front matter
    for start, _end, _prefix in parts[1:]:
        assert text[start:].startswith("## S")  # each part starts at a block


def test_one_huge_line_is_cut_at_spaces() -> None:
    text = "# One line\n\n" + "lorem ipsum " * 50_000
    for start, end, _ in _check_cover(text, 8 * 1024):
        assert len(text[start:end].encode()) <= 8 * 1024
        assert not text[start:].startswith(" ")


def test_markup_dense_text_gets_smaller_parts() -> None:
    text = "| a | b |\n| - | - |\n" + "| x | y |\n" * 40_000
    for start, end, prefix in _check_cover(text):
        assert len(str(render_markdown(prefix + text[start:end])[0])) < ARTICLE_CAP


def test_reference_links_resolve_in_every_part() -> None:
    text = "See [the spec][spec].\n\n" + "".join(f"Para {i}.\n\n" for i in range(5000))
    text += '[spec]: https://example.com/spec "Spec"\n'
    refs = link_references(text)
    start, end, _ = _check_cover(text, 4 * 1024)[0]
    page = dom(str(render_markdown(text[start:end], references=refs)[0]))
    assert page.select_one("a")["href"] == "https://example.com/spec"


def test_locate_finds_chunks_in_order() -> None:
    text = "# T\n\n" + "".join(f"- same line\n- item {i}\n" for i in range(100))
    at = locate(text, ["T", "- same line\n- item 0", "- same line\n- item 1", "**T**", "- item 2"])
    assert at[:3] == [2, 5, text.index("- same line\n- item 1")]
    assert at[3] == at[2]  # not found: stays where the previous one was
    assert at[4] == text.index("- item 2")


# --- decoding as ingest does --------------------------------------------------------------


def test_page_and_ingest_share_one_decoder() -> None:
    zh = "# 年假\n\n员工入职满一年后享有十天带薪年假。\n"
    for encoding in ("utf-16-le", "utf-16-be"):
        assert decode_text(zh.encode(encoding)) == ingest_decode_text(zh.encode(encoding)) == zh
    with pytest.raises(NotText):
        decode_text(bytes(range(256)) * 8)
    with pytest.raises(IngestError, match="binary"):
        ingest_decode_text(bytes(range(256)) * 8)


def test_utf16_without_bom_is_shown_as_text(rt: Runtime, admin: TestClient) -> None:
    text = "# 员工休假制度\n\n## 病假\n\n病假超过三天需要提供医院出具的证明。Sick leave needs a note.\n"
    doc_id = store_upload(rt, "leave-utf16.md", text.encode("utf-16-le"))
    Worker(rt).run_until_idle()
    page = dom(admin.get(f"/documents/{doc_id}").text)
    assert page.select_one(".badge.status-ready") is not None
    article = page.select_one("article.markdown")
    assert [h.get_text() for h in article.select("h1, h2")] == ["员工休假制度", "病假"]
    assert "病假超过三天需要提供医院出具的证明" in article.get_text()
    assert "\x00" not in article.get_text() and "\ufffd" not in article.get_text()
    assert page.select_one("nav.parts") is None  # a short document is one part


def test_deleting_a_document_removes_its_rendered_parts(rt: Runtime, admin: TestClient) -> None:
    doc_id = store_upload(rt, "short.md", b"# Title\n\nSome text to render.\n")
    Worker(rt).run_until_idle()
    assert admin.get(f"/documents/{doc_id}").status_code == 200
    folder = cache_dir(rt, doc_id)
    assert folder.is_dir()
    with transaction(rt.sessions) as s:
        removed = documents.delete_document(s, s.get_one(Document, doc_id))
    documents.remove_files(rt.settings, removed)
    assert not folder.exists()


def test_a_binary_file_named_md_shows_no_text(rt: Runtime, admin: TestClient) -> None:
    doc_id = store_upload(rt, "blob.md", bytes(range(256)) * 64)
    r = admin.get(f"/documents/{doc_id}")
    assert r.status_code == 200
    assert dom(r.text).select_one("article.markdown") is None


# --- long documents -----------------------------------------------------------------------


@pytest.mark.slow
def test_a_huge_list_is_shown_in_bounded_cached_parts(
    rt: Runtime, admin: TestClient, renders: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = 170_000
    data = big_list(lines, {123_456: "the quartermaster's xylophone ledger"})
    assert len(data) > 5_000_000
    doc_id = store_parsed(rt, "inventory.md", data, embed="xylophone")
    cuts: list[int] = []
    real_split = rendered.split_parts

    def split_spy(text: str, **kwargs: int) -> object:
        cuts.append(len(text))
        return real_split(text, **kwargs)

    monkeypatch.setattr(rendered, "split_parts", split_spy)

    # First view: one part is rendered, of at most one part's source.
    r = admin.get(f"/documents/{doc_id}")
    assert r.status_code == 200
    assert len(renders) == 1 and renders[0] <= PART_BYTES and len(cuts) == 1
    assert len(r.content) < PAGE_CAP
    page = dom(r.text)
    article = page.select_one("article.markdown")
    assert len(str(article)) < ARTICLE_CAP
    assert page.select_one("nav.parts .part-of").get_text().startswith("Part 1 of ")
    folder = cache_dir(rt, doc_id)
    assert {"outline.json", "source.txt", "part-1.json"} <= {p.name for p in folder.iterdir()}

    # Second view: read back, nothing cut or rendered again; it shows what the cache holds.
    cached = json.loads((folder / "part-1.json").read_text())
    cached["html"] = cached["html"].replace("<ul>", "<ul><li>from the cache</li>", 1)
    (folder / "part-1.json").write_text(json.dumps(cached))
    again = dom(admin.get(f"/documents/{doc_id}").text)
    assert len(renders) == 1 and len(cuts) == 1
    assert again.select_one("article.markdown li").get_text() == "from the cache"

    # Every part in turn: bounded, and together the whole list, each item once.
    pages = walk(admin, doc_id)
    count = len(pages)
    assert count >= len(data) // PART_BYTES
    assert len(renders) == count  # part 1 came from the cache
    seen: list[int] = []
    shown: list[int] = []
    for html, part in pages:
        assert len(html.encode()) < PAGE_CAP
        body = part.select_one("article.markdown")
        assert len(str(body)) < ARTICLE_CAP
        items = [li.get_text() for li in body.select("li")]
        seen += [int(m.group(1)) for t in items if (m := re.match(r"item (\d+):", t))]
        shown += [int(li["id"][6:]) for li in part.select("li.chunk")]
    assert seen == list(range(lines))
    assert shown == chunk_ids(rt, doc_id)  # each chunk on exactly one page, in order
    last = pages[-1][1]
    assert last.select_one("nav.parts a[rel=next]") is None
    assert last.select_one("nav.parts a[rel=prev]") is not None

    # A search hit deep in the list links to the part that holds it.
    results = dom(admin.get("/", params={"q": "xylophone quartermaster"}).text)
    link = results.select_one("#results li.hit a.title")["href"]
    chunk_id = link.rsplit("#chunk-", 1)[1]
    part = dom(admin.get(link.split("#")[0]).text)
    assert part.select_one(f"#chunk-{chunk_id}") is not None
    assert "xylophone ledger" in part.select_one("article.markdown").get_text()
    number = int(re.search(r"Part (\d+) of", part.select_one(".part-of").get_text()).group(1))
    assert number > count // 2
    # Nothing more was rendered for it: that part had been rendered and cached already.
    assert len(renders) == count


@pytest.mark.slow
def test_many_headings_paginate_with_working_section_links(
    rt: Runtime, admin: TestClient, renders: list[int]
) -> None:
    doc_id = store_parsed(rt, "handbook.md", many_headings(30_000))
    with rt.sessions() as s:
        query = select(Chunk).where(Chunk.document_id == doc_id).order_by(Chunk.ordinal)
        deep = next(c for c in s.scalars(query) if c.heading_path[-1:] == ["Rule 25000"])
    r = admin.get(f"/documents/{doc_id}", params={"chunk": deep.id})
    assert len(renders) == 1 and len(r.content) < PAGE_CAP
    page = dom(r.text)
    number = int(re.search(r"Part (\d+) of (\d+)", page.select_one(".part-of").get_text()).group(1))
    assert number > 1
    item = page.select_one(f"#chunk-{deep.id}")
    assert item is not None
    # "Open section" points at the heading rendered on this same page.
    anchor = item.select_one("a.page")["href"].removeprefix("#")
    heading = page.select_one(f"article.markdown [id='{anchor}']")
    assert heading is not None and "Rule 25000" in heading.get_text()
    assert anchor.startswith(f"p{number}-sec-")
    ids = [h["id"] for h in page.select("article.markdown [id]")]
    assert len(ids) == len(set(ids)) > 100
    # The navigation goes back to the first part, whose anchors are those of a short document.
    first = dom(admin.get(f"/documents/{doc_id}?part=1").text)
    assert first.select_one("article.markdown h1")["id"] == "sec-1-handbook"
    # Past the end: the last part, not an error.
    last = dom(admin.get(f"/documents/{doc_id}?part=999999").text)
    assert last.select_one("nav.parts a[rel=next]") is None


@pytest.mark.slow
def test_a_reingest_maps_its_new_chunks_and_a_view_without_text_pages_by_chunks(
    rt: Runtime, admin: TestClient
) -> None:
    data = big_list(40_000, {})
    doc_id = store_parsed(rt, "inventory.md", data)
    assert admin.get(f"/documents/{doc_id}").status_code == 200
    folder = cache_dir(rt, doc_id)

    def maps() -> list[str]:
        return sorted(p.name for p in folder.glob("chunks-*.json"))

    before = maps()
    assert len(before) == 1
    # A re-ingest (new, smaller chunks) gets its own map; the old one is dropped.
    assert store_parsed(rt, "inventory.md", data, max_tokens=100) == doc_id
    shown = [int(li["id"][6:]) for _, p in walk(admin, doc_id) for li in p.select("li.chunk")]
    assert shown == chunk_ids(rt, doc_id)
    assert len(maps()) == 1 and maps() != before
    # Without the original and the cache (a PDF has neither), pages go by chunks alone.
    (rt.settings.files_dir / _storage_key(rt, doc_id)).unlink()
    shutil.rmtree(folder)
    pages = walk(admin, doc_id)
    assert len(pages) > 1
    assert all(p.select_one("article.markdown") is None for _, p in pages)
    shown = [int(li["id"][6:]) for _, p in pages for li in p.select("li.chunk")]
    assert shown == chunk_ids(rt, doc_id)
    assert all(len(html.encode()) < PAGE_CAP for html, _ in pages)


def _storage_key(rt: Runtime, doc_id: int) -> str:
    with rt.sessions() as s:
        return s.get_one(Document, doc_id).storage_key
