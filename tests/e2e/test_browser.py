"""The product in a real browser: log in, upload, watch progress, search across languages,
open the source, delete, roles, failures, both interface languages. Screenshots of the
main pages go to test-artifacts/screenshots/."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests import pdfgen
from tests.e2e.browser import LiveServer, log_in, screenshot, upload_in_browser

pytestmark = pytest.mark.slow

GUIDE = """\
# Orbit Sync Handbook

## 5 Offline mode

### 5.1 Conflicts

When two people edit the same note offline, Orbit Sync keeps both versions and marks
the newer one as the current copy. Open the history panel to merge them by hand.
"""


def wait_ready(page: Page, filenames: list[str], timeout_ms: int = 120_000) -> None:
    """On the documents page, without reloading it, until every file shows a final status."""
    for name in filenames:
        row = page.locator("#doc-rows tr", has_text=name)
        expect(row).to_have_attribute("data-status", re.compile("ready|failed"), timeout=timeout_ms)


def test_admin_uploads_watches_progress_searches_across_languages_and_deletes(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    pdf = pdfgen.chinese_outline_pdf(tmp_path)
    pdf = pdf.rename(tmp_path / f"leave-faq-{tag}.pdf")
    md = tmp_path / f"orbit-{tag}.md"
    md.write_text(GUIDE, encoding="utf-8")

    log_in(page, live_server.admin_user, live_server.admin_password)
    screenshot(page, "search-empty")
    upload_in_browser(page, [pdf, md])
    results = page.locator("#upload-results li")
    expect(results.nth(0)).to_have_class("result-accepted")
    expect(results.nth(1)).to_have_class("result-accepted")
    screenshot(page, "upload-results")

    page.goto("/documents")
    page.evaluate("window.__noReload = true")
    wait_ready(page, [pdf.name, md.name])
    assert page.evaluate("window.__noReload") is True  # progress arrived without a reload
    expect(page.locator("#doc-rows tr", has_text=pdf.name)).to_have_attribute(
        "data-status", "ready"
    )
    screenshot(page, "documents")

    # An English question finds the Chinese passage; the hit says where it is.
    page.goto("/")
    page.fill("input[name=q]", "How is salary paid during sick leave?")
    page.select_option("select[name=doc_type]", "pdf")
    page.click("form[role=search] button[type=submit]")
    first = page.locator("#results li.hit").first
    expect(first.locator(".file")).to_have_text(pdf.name)
    expect(first.locator(".page")).to_have_text("page 2")
    expect(first.locator(".crumbs")).to_contain_text("病假期间工资怎么算？")
    expect(first.locator(".passage")).to_contain_text("全额发放工资")
    assert "doc_type=pdf" in page.url  # htmx pushed the query into the address bar
    screenshot(page, "search-results")

    # "Open at page 2" opens the PDF itself at its page.
    source = first.locator("a.source")
    href = source.get_attribute("href")
    assert href is not None and href.endswith("/original#page=2")
    response = page.request.get(href.split("#")[0])
    assert response.headers["content-type"] == "application/pdf"
    # The title opens the document view at that passage.
    first.locator("a.title").click()
    target = page.url.split("#")[1]
    expect(page.locator(f"#{target}")).to_contain_text("全额发放工资")
    expect(page.locator(f"#{target} a.page")).to_have_text("page 2")
    screenshot(page, "document-view")

    # Ask: the answering sentence is highlighted.
    page.goto("/ask?q=" + "what happens to notes edited offline by two people")
    answer = page.locator("#answers li.answer").first
    expect(answer.locator("a.title")).to_have_text("Orbit Sync Handbook")
    expect(answer.locator("mark").first).to_contain_text("keeps both versions")
    screenshot(page, "ask")

    # Delete the Markdown document: it disappears from the results.
    page.goto("/documents")
    page.once("dialog", lambda d: d.accept())
    page.locator("#doc-rows tr", has_text=md.name).locator("form[action$=delete] button").click()
    expect(page.locator("#doc-rows tr", has_text=md.name)).to_have_count(0)
    page.goto("/?q=two+people+edit+the+same+note+offline")
    expect(page.locator("#results .file", has_text=md.name)).to_have_count(0)


def test_failed_file_shows_its_reason(page: Page, live_server: LiveServer, tmp_path: Path) -> None:
    bad = tmp_path / f"scan-{uuid.uuid4().hex[:6]}.pdf"
    bad.write_bytes(pdfgen.scanned_pdf(tmp_path).read_bytes())
    log_in(page, live_server.admin_user, live_server.admin_password)
    upload_in_browser(page, [bad])
    page.goto("/documents")
    wait_ready(page, [bad.name])
    row = page.locator("#doc-rows tr", has_text=bad.name)
    expect(row).to_have_attribute("data-status", "failed")
    expect(row.locator(".reason")).to_contain_text("needs OCR")
    expect(row.locator("form[action$=reingest] button")).to_have_text("Retry")


@pytest.mark.parametrize("locale", ["zh-CN"])
def test_admin_manages_users_in_chinese_and_reader_is_limited(
    new_context: Callable[..., BrowserContext], live_server: LiveServer, tmp_path: Path
) -> None:
    admin = new_context().new_page()
    log_in(admin, live_server.admin_user, live_server.admin_password)
    expect(admin.locator("html")).to_have_attribute("lang", "zh-CN")  # from the browser
    expect(admin.locator("header nav a").first).to_have_text("搜索")
    name = f"reader{uuid.uuid4().hex[:6]}"
    admin.goto("/admin/users")
    form = admin.locator("#create-user")
    form.locator("input[name=username]").fill(name)
    form.locator("input[name=password]").fill("reader-pass-1")
    form.locator("select[name=role]").select_option("reader")
    form.locator("button[type=submit]").click()
    expect(admin.locator(f"#user-{name}")).to_be_visible()
    screenshot(admin, "admin-users-zh")
    admin.goto("/admin/collections")
    screenshot(admin, "admin-collections-zh")

    reader = new_context(locale="en-US").new_page()
    log_in(reader, name, "reader-pass-1")
    expect(reader.locator("header nav a", has_text="Upload")).to_have_count(0)
    assert reader.goto("/upload").status == 403  # type: ignore[union-attr]
    expect(reader.locator(".error")).to_have_text("You do not have permission to do this.")
    # A reader's API token cannot upload either.
    reader.goto("/tokens")
    reader.fill("input[name=name]", "script")
    reader.click("form[action='/tokens'] button[type=submit]")
    token = reader.locator("#new-token").inner_text()
    r = reader.request.post(
        live_server.url("/api/v1/documents"),
        headers={"Authorization": f"Bearer {token}"},
        multipart={"files": {"name": "x.md", "mimeType": "text/markdown", "buffer": b"# X\n\ny\n"}},
    )
    assert r.status == 403
    assert reader.request.get(
        live_server.url("/api/v1/search?q=leave"), headers={"Authorization": f"Bearer {token}"}
    ).ok
    # The interface language can be switched, and the choice is remembered.
    reader.click("header .langs a[lang=zh]")
    expect(reader.locator("header nav a").first).to_have_text("搜索")
    reader.goto("/documents")
    expect(reader.locator("h1")).to_have_text("文档")


def test_search_page_fits_a_phone(
    new_context: Callable[..., BrowserContext], live_server: LiveServer
) -> None:
    page = new_context(viewport={"width": 390, "height": 844}).new_page()
    log_in(page, live_server.admin_user, live_server.admin_password)
    page.goto("/?q=sick+leave")
    # Nothing wider than the screen: no sideways scrolling on the search page.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "search-phone")
