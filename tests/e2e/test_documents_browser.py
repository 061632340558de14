"""The documents and upload pages in a real browser (issue 16): the empty state, the file
list before an upload, a folder upload, the filters swapped in by htmx, and the rows as
cards on a phone; English and Chinese. A server of its own, so that it starts empty.

Screenshots: documents-empty, upload-file-list, documents-filters, documents-mobile."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.browser import (
    DEFAULT_TIMEOUT_MS,
    VIEWPORT,
    LiveServer,
    log_in,
    screenshot,
    start_live_server,
    stop_live_server,
)

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    try:
        live = start_live_server(tmp_path_factory.mktemp("documents-server"))
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield live
    finally:
        stop_live_server(live)


@pytest.fixture
def context(browser: Browser, server: LiveServer) -> Iterator[Callable[..., BrowserContext]]:
    made: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        kwargs: dict[str, Any] = {
            "viewport": VIEWPORT,
            "locale": "en-US",
            "base_url": server.base_url,
        }
        kwargs.update(options)
        ctx = browser.new_context(**kwargs)
        ctx.set_default_timeout(DEFAULT_TIMEOUT_MS)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.close()


def admin_page(server: LiveServer, make: Callable[..., BrowserContext], **options: Any) -> Page:
    """Logged in as the admin (on a desktop-sized window: a phone folds the menu that
    ``log_in`` waits for), then at ``viewport`` if one is given."""
    viewport = options.pop("viewport", None)
    page = make(**options).new_page()
    log_in(page, server.admin_user, server.admin_password)
    if viewport is not None:
        page.set_viewport_size(viewport)
    return page


def test_empty_state_in_both_languages(
    server: LiveServer, context: Callable[..., BrowserContext]
) -> None:
    page = admin_page(server, context)
    page.goto("/documents")
    empty = page.locator(".docs-empty")
    expect(empty).to_contain_text("No documents yet.")
    expect(empty.locator("a[href='/upload']")).to_be_visible()
    screenshot(page, "documents-empty")
    zh = admin_page(server, context, locale="zh-CN")
    zh.goto("/documents")
    expect(zh.locator(".docs-empty")).to_contain_text("还没有文档")
    phone = admin_page(server, context, viewport=PHONE)
    phone.goto("/documents")
    expect(phone.locator(".docs-empty")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_file_list_before_upload_and_folder_upload(
    server: LiveServer, context: Callable[..., BrowserContext], tmp_path: Path
) -> None:
    files = []
    for name, body in [
        ("alpha-handbook.md", "# Alpha handbook\n\nHow alpha works.\n"),
        ("beta-notes.txt", "Beta notes: the beta process.\n"),
        ("setup.exe", "MZ not a document"),
    ]:
        path = tmp_path / name
        path.write_text(body, encoding="utf-8")
        files.append(path)
    page = admin_page(server, context)
    page.goto("/upload")
    page.set_input_files("#dropzone input[type=file]", [str(f) for f in files])
    items = page.locator("#chosen-files li")
    expect(items).to_have_count(3)
    expect(items.nth(0)).to_contain_text("alpha-handbook.md")
    expect(items.nth(0)).to_contain_text(".md")
    expect(page.locator("#chosen-files li.will-reject")).to_contain_text("setup.exe")
    expect(page.locator(".chosen-summary")).to_contain_text("3 files")
    screenshot(page, "upload-file-list")
    zh = admin_page(server, context, locale="zh-CN")
    zh.goto("/upload")
    zh.set_input_files("#dropzone input[type=file]", [str(files[0])])
    expect(zh.locator(".chosen-summary")).to_contain_text("1 个文件")
    expect(zh.locator("#chosen-files button.remove-file")).to_have_text("移除")
    phone = admin_page(server, context, viewport=PHONE)
    phone.goto("/upload")
    phone.set_input_files("#dropzone input[type=file]", [str(f) for f in files])
    expect(phone.locator("#chosen-files li")).to_have_count(3)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    items.filter(has_text="setup.exe").locator("button.remove-file").click()
    expect(items).to_have_count(2)
    page.evaluate("window.__noReload = true")
    page.click("#upload-form button[type=submit]")
    results = page.locator("#upload-results li")
    expect(results).to_have_count(2)
    expect(results.nth(0)).to_have_class("result-accepted")
    assert page.evaluate("window.__noReload") is True  # sent by script, the page stayed
    expect(page.locator("#chosen-files li")).to_have_count(0)

    # A folder: each file keeps its folder as a tag.
    folder = tmp_path / "kb"
    (folder / "hr").mkdir(parents=True)
    (folder / "hr" / "gamma-leave.md").write_text("# Gamma leave\n\nLeave rules.\n", "utf-8")
    (folder / "delta-intro.md").write_text("# Delta intro\n\nIntro.\n", "utf-8")
    page.set_input_files("#folder-input", str(folder))
    expect(page.locator("#chosen-files li")).to_have_count(2)
    expect(page.locator("#chosen-files")).to_contain_text("kb/hr/gamma-leave.md")
    page.click("#upload-form button[type=submit]")
    # The result line names the file (a path in a sent name is never kept in it); its
    # folder is the tag.
    done = page.locator("#upload-results li.result-accepted", has_text="gamma-leave.md")
    expect(done).to_have_count(1)
    expect(page.locator("#upload-results li")).to_have_count(2)  # this upload's lines only
    page.goto("/documents?tag=kb/hr")
    expect(page.locator("#doc-rows tr")).to_have_count(1)
    expect(page.locator("#doc-rows tr")).to_contain_text("gamma-leave.md")


def test_filters_swap_the_table_in_both_languages(
    server: LiveServer, context: Callable[..., BrowserContext]
) -> None:
    page = admin_page(server, context)
    page.goto("/documents")
    expect(page.locator("#doc-rows tr")).to_have_count(4)
    page.evaluate("window.__noReload = true")
    page.fill(".doc-filters input[name=q]", "beta")
    expect(page.locator("#doc-rows tr")).to_have_count(1)
    expect(page.locator("#doc-rows tr")).to_contain_text("beta-notes.txt")
    expect(page).to_have_url(re.compile(r"q=beta"))
    page.fill(".doc-filters input[name=q]", "")
    page.fill(".doc-filters input[name=tag]", "kb")
    page.press(".doc-filters input[name=tag]", "Enter")
    expect(page.locator("#doc-rows tr")).to_have_count(1)
    expect(page.locator("#doc-rows tr")).to_contain_text("delta-intro.md")
    page.fill(".doc-filters input[name=tag]", "")
    page.select_option(".doc-filters select[name=type]", "markdown")  # .md and .txt alike
    expect(page.locator("#doc-rows tr")).to_have_count(4)
    page.select_option(".doc-filters select[name=sort]", "name")
    page.select_option(".doc-filters select[name=order]", "asc")
    expect(page.locator("#doc-rows tr").first).to_contain_text("alpha-handbook.md")
    assert page.evaluate("window.__noReload") is True  # htmx swapped the results only
    screenshot(page, "documents-filters")
    page.fill(".doc-filters input[name=q]", "nothing-is-called-this")
    expect(page.locator(".docs-no-match")).to_be_visible()
    page.locator(".docs-no-match a.clear-filters").click()
    expect(page.locator("#doc-rows tr")).to_have_count(4)

    # Without JavaScript the same form reloads the page with the filter applied.
    plain = admin_page(server, context, java_script_enabled=False)
    plain.goto("/documents")
    plain.fill(".doc-filters input[name=q]", "alpha")
    plain.click(".doc-filters button[type=submit]")
    expect(plain.locator("#doc-rows tr")).to_have_count(1)

    zh = admin_page(server, context, locale="zh-CN")
    zh.goto("/documents?q=zzz-none")
    expect(zh.locator(".docs-no-match")).to_contain_text("没有符合这些筛选条件的文档")
    expect(zh.locator(".doc-filters")).to_contain_text("排序方式")


def test_rows_are_cards_on_a_phone(
    server: LiveServer, context: Callable[..., BrowserContext]
) -> None:
    for locale in ("en-US", "zh-CN"):
        page = admin_page(server, context, viewport=PHONE, locale=locale)
        page.goto("/documents")
        row = page.locator("#doc-rows tr").first
        expect(row).to_be_visible()
        assert row.evaluate("el => getComputedStyle(el).display") == "block"
        label = row.locator("td[data-label]").nth(1)
        before = label.evaluate("el => getComputedStyle(el, '::before').content")
        assert before.strip('"') == label.get_attribute("data-label")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        if locale == "en-US":
            screenshot(page, "documents-mobile")
