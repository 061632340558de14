"""Titles people recognise: front matter, meaningful PDF metadata, a heading that is not
generic, man pages as ``find(1)``, else the file name; never empty, shown with the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.db import transaction
from app.documents.models import Document
from app.runtime import Runtime
from app.text.titles import (
    display_title,
    is_generic_heading,
    is_meaningful_metadata_title,
    man_page_title,
    title_from_filename,
)
from ingest.worker import Worker
from tests import pdfgen
from tests.factories import get_document, settle, store_upload
from tests.webclient import dom, post_upload

FAQ_MD = (
    "# FAQ\n\n## How do I reset the flux capacitor?\n\n"
    "Hold the reset button for ten seconds until the light blinks.\n"
)
FRONT_MATTER_MD = "---\ntitle: Flux capacitor handbook\n---\n\n# Introduction\n\nSome text.\n"
MAN_MD = (
    "# NAME\n\nfind - search for files in a directory hierarchy\n\n"
    "# SYNOPSIS\n\nfind [path...] [expression]\n\n"
    "# DESCRIPTION\n\nfind searches the directory tree rooted at each given starting-point.\n"
)


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.mark.parametrize(
    ("heading", "generic"),
    [
        ("NAME", True),
        ("名称", True),
        (" faq ", True),
        ("Table  of contents", True),
        ("1. Introduction", True),
        ("Chapter 1", True),
        ("第一章", True),
        ("常见问题", True),
        ("", True),
        ("第一章 年假", False),
        ("Installing Lumen", False),
        ("Hatch FAQ", False),
    ],
)
def test_generic_headings(heading: str, generic: bool) -> None:
    assert is_generic_heading(heading) is generic


def test_metadata_titles_and_file_names() -> None:
    for junk in ("", "untitled", "Microsoft Word - a.doc", "C:\\tmp\\x", "/tmp/x", "2019", "a.pdf"):
        assert not is_meaningful_metadata_title(junk), junk
    assert is_meaningful_metadata_title("MNRAS LaTeX guide")
    assert title_from_filename("mnras_guide.pdf") == "mnras guide"
    assert title_from_filename("dir/Hatch-FAQ.md") == "Hatch FAQ"
    assert man_page_title("notes.md", "NAME", "**ls** \\- list directory contents") == "ls"
    assert man_page_title("ls.1.md", "NAME", None) == "ls(1)"
    assert man_page_title("notes.md", "NAME", "Just a name.") is None
    assert display_title("NAME", "ls.1.md") == "ls(1)"
    assert display_title(None, "mnras_guide.pdf") == "mnras guide"
    assert display_title("Lumen guide", "x.md") == "Lumen guide"


def _ingest(rt: Runtime, name: str, data: bytes) -> str:
    doc_id = store_upload(rt, name, data)
    settle(rt)
    doc = get_document(rt, doc_id)
    assert doc.status == "ready", doc.error
    assert doc.title
    return doc.title


def test_markdown_titles_at_ingest(rt: Runtime) -> None:
    assert _ingest(rt, "Hatch_faq.md", FAQ_MD.encode()) == "Hatch faq"
    assert _ingest(rt, "intro.md", FRONT_MATTER_MD.encode()) == "Flux capacitor handbook"
    assert _ingest(rt, "find.1.md", MAN_MD.encode()) == "find(1)"


def test_pdf_metadata_title_unless_junk(rt: Runtime, tmp_path: Path) -> None:
    for title, expected in (
        ("MNRAS LaTeX guide", "MNRAS LaTeX guide"),
        ("untitled", "mnras guide"),
        ("Microsoft Word - a.doc", "mnras guide"),
    ):
        pdf = pdfgen.no_outline_pdf(tmp_path, title=title)
        # Each one differs in its bytes (the metadata), so none is a duplicate.
        assert _ingest(rt, "mnras_guide.pdf", pdf.read_bytes()) == expected, title


def test_api_title_never_empty_and_file_shown_beside_title(rt: Runtime, admin: TestClient) -> None:
    post_upload(admin, ("Hatch_faq.md", FAQ_MD.encode()))
    Worker(rt).run_until_idle()
    # A document ingested before titles were chosen: no title, or a generic one.
    with transaction(rt.sessions) as s:
        s.execute(update(Document).values(title=None))
    docs = admin.get("/api/v1/documents").json()
    assert [d["title"] for d in docs] == ["Hatch faq"]
    one = admin.get(f"/api/v1/documents/{docs[0]['id']}").json()
    assert one["title"] == "Hatch faq"
    with transaction(rt.sessions) as s:
        s.execute(update(Document).values(title="FAQ"))
    hits = admin.get("/api/v1/search", params={"q": "reset the flux capacitor"}).json()
    assert hits["results"] and all(h["title"] == "Hatch faq" for h in hits["results"])
    for path, items in (("/", "#results li.hit"), ("/ask", "#answers li.answer")):
        page = dom(admin.get(path, params={"q": "How do I reset the flux capacitor?"}).text)
        first = page.select_one(items)
        assert first is not None, path
        head = first.select_one(".hit-head")
        assert head.select_one("a.title").get_text() == "Hatch faq", path
        assert head.select_one(".file").get_text() == "Hatch_faq.md", path
