"""The new file types through the upload page, the API, the worker, search and the
document page: one table (``app.text.filetypes``) decides what is accepted, and an
uploaded HTML page is never served as a page of this site."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import select

from app.auth.models import Role
from app.documents.models import Chunk, DocumentStatus
from app.main import create_app
from app.runtime import Runtime
from app.text.filetypes import ACCEPTED, accept_attribute, accepted_list
from ingest.worker import Worker
from tests import hostile
from tests.factories import get_document, token_for
from tests.test_parse_pptx import make_deck
from tests.webclient import dom, post_upload

HTML_PAGE = b"""<!DOCTYPE html><html><head><meta charset="utf-8">
<title>Onboarding - Wiki</title><script>alert("from the upload")</script></head>
<body><nav>Home | Spaces</nav><main>
<h1>Onboarding checklist</h1><p>Every new engineer gets a laptop on the first day.</p>
<h2>Accounts</h2><ul><li>Request VPN access from the service desk</li>
<li>Join the on-call rotation after two weeks</li></ul>
</main></body></html>"""


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def api(rt: Runtime) -> Iterator[TestClient]:
    token = token_for(rt, "editor1", Role.EDITOR)
    with TestClient(create_app(runtime=rt), headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def _docx() -> bytes:
    from docx import Document as WordDocument

    out = io.BytesIO()
    doc = WordDocument()
    doc.add_heading("Expenses", level=1)
    doc.add_paragraph("Receipts are due within thirty days.")
    doc.save(out)
    return out.getvalue()


def _xlsx() -> bytes:
    out = io.BytesIO()
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Question", "Answer"])
    sheet.append(["Where is the office?", "Building 4"])
    book.save(out)
    return out.getvalue()


def _pptx(tmp_path: Path) -> bytes:
    return make_deck(tmp_path).read_bytes()


NEW_TYPES = {
    "slides.pptx": _pptx,
    "page.html": lambda _: HTML_PAGE,
    "page2.htm": lambda _: HTML_PAGE.replace(b"laptop", b"monitor"),
    "letter.docx": lambda _: _docx(),
    "faq.xlsx": lambda _: _xlsx(),
    "people.csv": lambda _: b"name,team\nMei Lin,Backend\n",
    "scan.png": lambda _: hostile.png_bytes(),
}


# --- the page lists the table -------------------------------------------------------------


def test_upload_page_lists_exactly_the_accepted_types(admin: TestClient) -> None:
    page = dom(admin.get("/upload").text)
    field = page.find("input", attrs={"type": "file"})
    assert field is not None
    # An admin may also send a .zip of documents (unpacked on the server).
    assert set(str(field["accept"]).split(",")) == {*ACCEPTED, ".zip"}
    assert str(field["accept"]).startswith(accept_attribute())
    assert f"Accepted: {accepted_list()}" in page.get_text()
    for ext in (".pptx", ".html", ".htm", ".docx", ".xlsx", ".csv", ".png", ".pdf", ".md"):
        assert ext in accepted_list().split(", ")


# --- what the upload accepts and refuses ------------------------------------------------


def test_api_accepts_the_new_types(api: TestClient, tmp_path: Path) -> None:
    files = [("files", (name, make(tmp_path))) for name, make in NEW_TYPES.items()]
    r = api.post("/api/v1/documents", files=files)
    assert r.status_code == 201, r.text
    items = r.json()["items"]
    assert [i["filename"] for i in items] == list(NEW_TYPES)
    assert [i["result"] for i in items] == ["accepted"] * len(NEW_TYPES)


@pytest.mark.parametrize("name", ["setup.exe", "README", "archive.rar"])
def test_api_refuses_other_types_listing_the_accepted_ones(api: TestClient, name: str) -> None:
    r = api.post("/api/v1/documents", files=[("files", (name, b"MZ binary"))])
    assert r.status_code == 400
    reason = r.json()["detail"][0]["reason"]
    assert "unsupported file type" in reason
    assert ", ".join(sorted(ACCEPTED)) in reason


def test_page_accepts_the_new_types_and_refuses_exe(admin: TestClient, tmp_path: Path) -> None:
    results = post_upload(
        admin,
        ("deck.pptx", _pptx(tmp_path)),
        ("wiki.html", HTML_PAGE),
        ("tool.exe", b"MZ"),
        ("noext", b"text"),
    )
    classes = [li["class"][0] for li in results]
    assert classes == ["result-accepted", "result-accepted", "result-rejected", "result-rejected"]
    for li in results[2:]:
        text = li.get_text()
        assert "unsupported file type" in text and ".pptx" in text and ".html" in text


# --- end to end: ingest, chunks, search, document page ------------------------------------


def _chunks(rt: Runtime, doc_id: int) -> list[Chunk]:
    with rt.sessions() as s:
        query = select(Chunk).where(Chunk.document_id == doc_id).order_by(Chunk.ordinal)
        return list(s.scalars(query))


def test_pptx_and_html_become_searchable_documents(
    api: TestClient, rt: Runtime, tmp_path: Path
) -> None:
    r = api.post(
        "/api/v1/documents",
        files=[("files", ("release.pptx", _pptx(tmp_path))), ("files", ("wiki.html", HTML_PAGE))],
    )
    deck_id, page_id = (i["document_id"] for i in r.json()["items"])
    outcomes = Worker(rt).run_until_idle()
    assert [o.status for o in outcomes] == ["ready", "ready"], [o.error for o in outcomes]

    deck = get_document(rt, deck_id)
    assert (deck.status, deck.doc_type, deck.title, deck.page_count) == (
        DocumentStatus.READY,
        "pptx",
        "Release Process",
        4,
    )
    pages = {tuple(c.heading_path or []): (c.page_start, c.page_end) for c in _chunks(rt, deck_id)}
    assert pages[("Freeze week",)] == (2, 2)
    assert pages[("Owners",)] == (3, 3)

    page = get_document(rt, page_id)
    assert (page.status, page.doc_type, page.title) == (
        DocumentStatus.READY,
        "html",
        "Onboarding - Wiki",
    )
    paths = [c.heading_path for c in _chunks(rt, page_id)]
    assert ["Onboarding checklist", "Accounts"] in paths
    assert all("alert" not in c.text and "Spaces" not in c.text for c in _chunks(rt, page_id))

    hit = api.get("/api/v1/search", params={"q": "who owns the mobile app?", "k": 3}).json()
    top = hit["results"][0]
    assert top["file"] == "release.pptx" and top["heading_path"] == ["Owners"]
    assert top["page"] == 3 and top["doc_type"] == "pptx"
    hit = api.get("/api/v1/search", params={"q": "How do I get VPN access?", "k": 3}).json()
    top = hit["results"][0]
    assert top["file"] == "wiki.html"
    assert top["heading_path"] == ["Onboarding checklist", "Accounts"]


def test_document_page_shows_slides_and_serves_originals_safely(
    admin: TestClient, rt: Runtime, tmp_path: Path
) -> None:
    deck_bytes = _pptx(tmp_path)
    results = post_upload(admin, ("release.pptx", deck_bytes), ("wiki.html", HTML_PAGE))
    deck_id, page_id = (int(li.find("a")["href"].rsplit("/", 1)[1]) for li in results)
    Worker(rt).run_until_idle()

    view = dom(admin.get(f"/documents/{deck_id}").text)
    crumbs = [[s.get_text() for s in nav.find_all("span")] for nav in view.select(".chunk .crumbs")]
    assert ["Freeze week"] in crumbs and ["Owners"] in crumbs
    slides = [el.get_text() for el in view.select(".chunk .page")]
    assert "slide 2" in slides and "slide 3" in slides
    # Only a PDF links to a page of its original.
    assert not view.select('.chunk a[href*="#page="]')
    assert "Slides" in [dt.get_text() for dt in view.select(".facts dt")]

    view = dom(admin.get(f"/documents/{page_id}").text)
    crumbs = [[s.get_text() for s in nav.find_all("span")] for nav in view.select(".chunk .crumbs")]
    assert ["Onboarding checklist", "Accounts"] in crumbs
    assert "<script>alert" not in admin.get(f"/documents/{page_id}").text

    original = admin.get(f"/documents/{deck_id}/original")
    assert original.status_code == 200
    assert original.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    )
    assert original.headers["content-disposition"].startswith("attachment")
    assert original.content == deck_bytes


def test_uploaded_html_is_never_served_as_html(admin: TestClient, rt: Runtime) -> None:
    (li,) = post_upload(admin, ("evil.html", HTML_PAGE))
    doc_id = int(li.find("a")["href"].rsplit("/", 1)[1])
    r = admin.get(f"/documents/{doc_id}/original")
    assert r.status_code == 200
    assert r.content == HTML_PAGE
    content_type = r.headers["content-type"]
    assert "html" not in content_type.lower()
    assert content_type == "application/octet-stream"
    assert r.headers["content-disposition"].startswith("attachment")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"].startswith("sandbox")


@pytest.mark.parametrize(
    ("name", "media"),
    [
        ("letter.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("faq.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("people.csv", "text/csv"),
        ("scan.png", "image/png"),
        ("page2.htm", "application/octet-stream"),
    ],
)
def test_originals_download_with_their_media_type(
    admin: TestClient, tmp_path: Path, name: str, media: str
) -> None:
    (li,) = post_upload(admin, (name, NEW_TYPES[name](tmp_path)))
    doc_id = int(li.find("a")["href"].rsplit("/", 1)[1])
    r = admin.get(f"/documents/{doc_id}/original")
    assert r.headers["content-type"].split(";")[0] == media
    assert r.headers["content-disposition"].startswith("attachment")
    assert r.headers["content-security-policy"].startswith("sandbox")
