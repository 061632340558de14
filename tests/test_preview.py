"""The page preview of PDF hits: a page drawn with PDFium (cached by content hash, ETag,
bounded size), and the passage marked on it where PDFium's characters say it is."""

from __future__ import annotations

import io
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pypdfium2
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from app.db import transaction
from app.documents import preview
from app.documents.models import Chunk, Document
from app.runtime import Runtime
from ingest.worker import Worker
from tests import pdfgen
from tests.factories import store_upload
from tests.samples import GUIDE_MD
from tests.webclient import dom

PNG = b"\x89PNG\r\n\x1a\n"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def backend() -> str:
    return "sqlite"


@dataclass(frozen=True)
class Docs:
    english: int
    chinese: int
    markdown: int
    english_pdf: Path
    chinese_pdf: Path


@pytest.fixture
def docs(rt: Runtime, tmp_path: Path) -> Docs:
    en = pdfgen.english_outline_pdf(tmp_path)
    zh = pdfgen.chinese_outline_pdf(tmp_path)
    ids = [store_upload(rt, p.name, p.read_bytes()) for p in (en, zh)]
    md = store_upload(rt, "guide.md", GUIDE_MD.encode())
    Worker(rt).run_until_idle()
    with rt.sessions() as s:
        assert all(s.get_one(Document, i).status == "ready" for i in [*ids, md])
    return Docs(ids[0], ids[1], md, en, zh)


def chunk_id(rt: Runtime, doc_id: int, starts: str) -> int:
    with rt.sessions() as s:
        query = select(Chunk.id).where(Chunk.document_id == doc_id, Chunk.text.startswith(starts))
        found = s.scalars(query).one()
    return found


def marks(html: str) -> list[preview.Box]:
    """The mark rectangles of a preview, in percent of the page."""
    boxes = []
    for m in dom(html).select(".preview-page mark.preview-mark"):
        values = dict(re.findall(r"(left|top|width|height):([\d.]+)%", m["style"]))
        boxes.append(preview.Box(*(float(values[k]) for k in ("left", "top", "width", "height"))))
    return boxes


def phrase_box(pdf: Path, page: int, phrase: str) -> tuple[float, float, float, float]:
    """Where PDFium draws ``phrase`` on ``page``: (left, top, right, bottom) in percent."""
    doc = pypdfium2.PdfDocument(pdf)
    try:
        p = doc[page - 1]
        width, height = p.get_size()
        text = p.get_textpage()
        found = text.search(phrase).get_next()
        assert found is not None, phrase
        index, count = found
        boxes = [text.get_charbox(i) for i in range(index, index + count)]
        left, right = min(b[0] for b in boxes), max(b[2] for b in boxes)
        bottom, top = min(b[1] for b in boxes), max(b[3] for b in boxes)
        return (
            left / width * 100,
            (height - top) / height * 100,
            right / width * 100,
            (height - bottom) / height * 100,
        )
    finally:
        doc.close()


def covers(box: preview.Box, phrase: tuple[float, float, float, float]) -> bool:
    """Whether the mark lies over the phrase's line (and starts left of its end)."""
    _left, top, right, bottom = phrase
    middle = (top + bottom) / 2
    return box.top <= middle <= box.top + box.height and box.left <= right


def on_line(boxes: list[preview.Box], phrase: tuple[float, float, float, float]) -> bool:
    middle = (phrase[1] + phrase[3]) / 2
    return any(b.top <= middle <= b.top + b.height for b in boxes)


# --- the page picture -----------------------------------------------------------------------


def test_page_picture_is_a_bounded_png_cached_by_content(
    rt: Runtime, admin: TestClient, docs: Docs, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"/documents/{docs.english}/pages/1.png"
    r = admin.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.content.startswith(PNG)
    assert r.headers["cache-control"].startswith("private, max-age=")
    tag = r.headers["etag"]
    image = Image.open(io.BytesIO(r.content))
    # A4 at 120 dpi: fits a 60rem column at about its own size.
    assert 950 <= image.width <= 1000 and image.width * image.height <= preview.MAX_PIXELS
    with rt.sessions() as s:
        digest = s.get_one(Document, docs.english).content_hash
    cached = preview.picture_path(rt.settings.render_cache_dir, digest, 1, 1)
    assert cached.read_bytes() == r.content

    # Served from the cache after that: drawing again would fail.
    def no_drawing(*_a: object) -> bytes:
        raise AssertionError("drawn again")

    monkeypatch.setattr(preview, "_draw", no_drawing)
    again = admin.get(url)
    assert again.status_code == 200 and again.content == r.content
    assert again.headers["etag"] == tag
    r304 = admin.get(url, headers={"If-None-Match": tag})
    assert r304.status_code == 304 and r304.content == b""
    assert admin.get(url, headers={"If-None-Match": '"other"'}).status_code == 200

    monkeypatch.undo()
    big = admin.get(url, params={"x": 2})
    assert big.status_code == 200 and big.headers["etag"] != tag
    assert Image.open(io.BytesIO(big.content)).width == pytest.approx(2 * image.width, abs=2)


def test_page_picture_404s_for_what_is_no_page_of_a_pdf(
    rt: Runtime, admin: TestClient, docs: Docs
) -> None:
    for url in [
        f"/documents/{docs.english}/pages/5.png",  # 4 pages
        f"/documents/{docs.english}/pages/0.png",
        f"/documents/{docs.english}/pages/-1.png",
        f"/documents/{docs.english}/pages/{2**64}.png",
        f"/documents/{docs.markdown}/pages/1.png",
        "/documents/987654/pages/1.png",
    ]:
        assert admin.get(url).status_code == 404, url
    for url in [
        f"/documents/{docs.english}/pages/abc.png",
        f"/documents/{docs.english}/pages/1.png?x=3",
        f"/documents/{docs.english}/pages/1.png?x=0",
    ]:
        assert admin.get(url).status_code == 422, url
    # A document whose page count is not recorded: PDFium says there is no such page.
    with transaction(rt.sessions) as s:
        s.get_one(Document, docs.chinese).page_count = None
    assert admin.get(f"/documents/{docs.chinese}/pages/3.png").status_code == 404
    assert admin.get(f"/documents/{docs.chinese}/pages/2.png").status_code == 200
    # The original gone: 404, not a 500.
    with rt.sessions() as s:
        doc = s.get_one(Document, docs.english)
        (rt.settings.files_dir / doc.storage_key).unlink()
    assert admin.get(f"/documents/{docs.english}/pages/1.png").status_code == 404


def test_a_broken_pdf_is_a_422_with_a_reason(rt: Runtime, admin: TestClient, docs: Docs) -> None:
    with rt.sessions() as s:
        doc = s.get_one(Document, docs.english)
        (rt.settings.files_dir / doc.storage_key).write_bytes(
            pdfgen.corrupt_pdf(rt.settings.data_dir).read_bytes()
        )
    r = admin.get(f"/documents/{docs.english}/pages/1.png")
    assert r.status_code == 422
    assert "cannot be read" in r.text
    chunk = chunk_id(rt, docs.english, "Lumen Hub is a small")
    r = admin.get(f"/documents/{docs.english}/preview", params={"chunk": chunk}, headers=HTMX)
    assert r.status_code == 422
    fragment = dom(r.text)
    assert "cannot be read" in fragment.select_one(".preview .error").get_text()
    assert "Lumen Hub is a small" in fragment.select_one(".preview-text").get_text()


def test_concurrent_requests_draw_a_page_once(
    rt: Runtime, docs: Docs, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = preview._draw

    def slow(original: Path, page: int, scale: int) -> bytes:
        calls.append(page)
        time.sleep(0.2)
        return real(original, page, scale)

    monkeypatch.setattr(preview, "_draw", slow)
    results: list[preview.Picture] = []

    def fetch() -> None:
        results.append(
            preview.page_picture(rt.settings.render_cache_dir, "ab" * 32, docs.english_pdf, 2, 1)
        )

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [2]
    assert len({r.path for r in results}) == 1 and results[0].path is not None


# --- the passage marked ---------------------------------------------------------------------


def test_marks_lie_on_the_lines_of_the_passage(rt: Runtime, admin: TestClient, docs: Docs) -> None:
    chunk = chunk_id(rt, docs.english, "The box holds the hub")
    r = admin.get(f"/documents/{docs.english}/preview", params={"chunk": chunk}, headers=HTMX)
    assert r.status_code == 200, r.text
    fragment = dom(r.text)
    assert fragment.select_one("main") is None  # the fragment alone
    img = fragment.select_one(".preview-page img")
    assert img["src"] == f"/documents/{docs.english}/pages/1.png"
    assert "Page 1 of lumen-guide.pdf" in img["alt"]
    boxes = marks(r.text)
    assert len(boxes) == 2  # the paragraph's two lines
    first = phrase_box(docs.english_pdf, 1, "The box holds the hub")
    last = phrase_box(docs.english_pdf, 1, "Keep the card somewhere safe")
    assert covers(boxes[0], first) and covers(boxes[1], last)
    assert boxes[0].left == pytest.approx(first[0], abs=0.5)
    # Nothing else on the page is marked: the heading above, the paragraphs around.
    for other in ["1.1 What is in the box", "This guide walks through", "You need a router"]:
        assert not on_line(boxes, phrase_box(docs.english_pdf, 1, other)), other
    assert fragment.select_one(".preview-note") is None
    assert "The box holds the hub" in fragment.select_one(".preview-text").get_text()


def test_a_passage_over_two_pages_is_marked_on_each(
    rt: Runtime, admin: TestClient, docs: Docs
) -> None:
    chunk = chunk_id(rt, docs.english, "Add the Lumen package source")
    url = f"/documents/{docs.english}/preview"
    r = admin.get(url, params={"chunk": chunk}, headers=HTMX)
    fragment = dom(r.text)
    assert fragment.select_one(".preview")["data-page"] == "2"
    links = [a["href"] for a in fragment.select(".preview-pages a")]
    assert any(h.endswith("&page=3") for h in links)
    boxes = marks(r.text)
    assert on_line(boxes, phrase_box(docs.english_pdf, 2, "Add the Lumen package source"))
    assert on_line(boxes, phrase_box(docs.english_pdf, 2, "finds the hub on the local"))
    assert not on_line(boxes, phrase_box(docs.english_pdf, 2, "2.1.1 Debian and Ubuntu"))
    assert not on_line(boxes, phrase_box(docs.english_pdf, 2, "Installing takes about"))

    r = admin.get(url, params={"chunk": chunk, "page": 3}, headers=HTMX)
    assert r.status_code == 200
    boxes = marks(r.text)
    assert on_line(boxes, phrase_box(docs.english_pdf, 3, "When the agent has found the hub"))
    assert not on_line(boxes, phrase_box(docs.english_pdf, 3, "Fedora users install"))
    assert dom(r.text).select_one(".preview-page img")["src"].endswith("/pages/3.png")
    # Only the passage's own pages.
    assert admin.get(url, params={"chunk": chunk, "page": 4}).status_code == 404
    assert admin.get(url, params={"chunk": chunk, "page": 1}).status_code == 404


def test_a_chinese_passage_is_marked_and_not_its_similar_heading(
    rt: Runtime, admin: TestClient, docs: Docs
) -> None:
    chunk = chunk_id(rt, docs.chinese, "年假可以分多次使用")
    r = admin.get(
        f"/documents/{docs.chinese}/preview",
        params={"chunk": chunk},
        headers={**HTMX, "Accept-Language": "zh-CN"},
    )
    assert r.status_code == 200
    boxes = marks(r.text)
    assert len(boxes) == 1
    assert covers(boxes[0], phrase_box(docs.chinese_pdf, 1, "年假可以分多次使用"))
    assert not on_line(boxes, phrase_box(docs.chinese_pdf, 1, "年假可以分几次休"))
    fragment = dom(r.text)
    assert fragment.select_one(".preview-text summary").get_text() == "段落文字"
    assert fragment.select_one(".preview-text .passage")["lang"] == "zh"


def test_a_passage_not_on_its_page_shows_the_page_and_a_note(
    rt: Runtime, admin: TestClient, docs: Docs
) -> None:
    chunk = chunk_id(rt, docs.english, "Check that the computer")
    with transaction(rt.sessions) as s:
        s.get_one(Chunk, chunk).text = "Words that are printed nowhere in this guide at all."
    r = admin.get(f"/documents/{docs.english}/preview", params={"chunk": chunk}, headers=HTMX)
    assert r.status_code == 200
    fragment = dom(r.text)
    assert marks(r.text) == []
    assert fragment.select_one(".preview-page img") is not None
    assert "could not be located" in fragment.select_one(".preview-note").get_text()
    assert fragment.select_one(".preview-text").has_attr("open")


def test_preview_without_htmx_is_a_whole_page(rt: Runtime, admin: TestClient, docs: Docs) -> None:
    chunk = chunk_id(rt, docs.english, "The box holds the hub")
    page = dom(admin.get(f"/documents/{docs.english}/preview", params={"chunk": chunk}).text)
    assert page.select_one("main h1").get_text() == pdfgen.ENGLISH_TITLE
    assert page.select_one("main .preview mark.preview-mark") is not None
    assert page.select_one(".preview-close") is None  # nothing to close: a page of its own
    back = page.select_one("main p a")["href"]
    assert back == f"/documents/{docs.english}?chunk={chunk}#chunk-{chunk}"


def test_preview_refuses_hostile_values(rt: Runtime, admin: TestClient, docs: Docs) -> None:
    url = f"/documents/{docs.english}/preview"
    other = chunk_id(rt, docs.chinese, "年假可以分多次使用")
    md_chunk = chunk_ids_of(rt, docs.markdown)[0]
    assert admin.get(url, params={"chunk": other}).status_code == 404  # another document's
    assert admin.get(url, params={"chunk": 987654}).status_code == 404
    assert (
        admin.get(f"/documents/{docs.markdown}/preview", params={"chunk": md_chunk}).status_code
        == 404
    )
    assert admin.get("/documents/987654/preview", params={"chunk": other}).status_code == 404
    assert admin.get(url).status_code == 404  # no passage named
    for params in [{"chunk": "-1"}, {"chunk": "0"}, {"chunk": str(2**64)}, {"chunk": "x"}]:
        assert admin.get(url, params=params).status_code == 422, params
    chunk = chunk_id(rt, docs.english, "The box holds the hub")
    for page in ["-1", "0", str(2**64), "1e309"]:
        assert admin.get(url, params={"chunk": chunk, "page": page}).status_code == 422, page


def chunk_ids_of(rt: Runtime, doc_id: int) -> list[int]:
    with rt.sessions() as s:
        query = select(Chunk.id).where(Chunk.document_id == doc_id).order_by(Chunk.ordinal)
        return list(s.scalars(query))


# --- where the Preview controls are ---------------------------------------------------------


def test_pdf_hits_and_pdf_chunks_offer_a_preview(
    rt: Runtime, admin: TestClient, docs: Docs
) -> None:
    page = dom(admin.get("/", params={"q": "recovery code card in the box"}).text)
    hits = page.select("li.hit")
    assert hits
    for hit in hits:
        control = hit.select_one("[data-preview]")
        doc_id = int(hit["data-document-id"])
        if doc_id in (docs.english, docs.chinese):
            assert control is not None
            expected = f"/documents/{doc_id}/preview?chunk={hit['data-chunk-id']}"
            assert control["hx-get"] == expected == control["href"]
            assert control["hx-target"] == "closest li" and control["aria-expanded"] == "false"
        else:
            assert control is None  # Markdown keeps what it had
    assert any(h.select_one("[data-preview]") for h in hits)

    view = dom(admin.get(f"/documents/{docs.english}").text)
    chunks = view.select("li.chunk")
    assert chunks and all(c.select_one("[data-preview]") is not None for c in chunks)
    view = dom(admin.get(f"/documents/{docs.markdown}").text)
    assert view.select_one("[data-preview]") is None


# --- matching -------------------------------------------------------------------------------


def test_matching_survives_reflow_hyphenation_and_joined_headings() -> None:
    page_text = (
        "2.1 Setup\r\nInstall the lumen-\r\nagent package with apt. The agent starts at boot."
    )
    page, where = preview.normalise(page_text)
    chunk, _ = preview.normalise(
        "Setup Install the lumenagent package  with apt.\nThe agent starts"
    )
    spans = preview.match_spans(page, chunk)
    assert spans and spans[0][0] <= page.index("install")
    covered = "".join(page[a:b] for a, b in spans)
    assert "installthelumenagentpackagewithapttheagentstarts" in covered
    assert page_text[where[spans[-1][1] - 1]] == "s"  # "starts", in the page's own text
    # A chunk that continues on the next page: its first part is found.
    chunk, _ = preview.normalise("The agent starts at boot. Then it finds the hub next door.")
    spans = preview.match_spans(page, chunk)
    assert ["".join(page[a:b] for a, b in spans)] == ["theagentstartsatboot"]
    assert preview.match_spans(page, preview.normalise("nothing of the sort here")[0]) == []


def test_drawing_resolution_is_capped() -> None:
    assert preview.dpi_for(595, 842, 1) == preview.PAGE_DPI  # A4
    huge = preview.dpi_for(14400, 14400, 2)  # a 200-inch square poster
    assert (14400 / 72 * huge) ** 2 <= preview.MAX_PIXELS * 1.001
    strip = preview.dpi_for(100, 14400, 1)
    assert 14400 / 72 * strip <= preview.MAX_SIDE + 1
