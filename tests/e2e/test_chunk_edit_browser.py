"""Editing a chunk on the document page in a real browser (issue 16, "Chunks"): the edit
is saved in place by htmx and searchable at once; disabling it greys it out and takes it
out of search; its history lists both.

Screenshot: chunk-edit."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.browser import LiveServer, log_in, screenshot, upload_in_browser
from tests.e2e.test_browser import wait_ready

pytestmark = pytest.mark.slow


def hits_with(page: Page, word: str) -> int:
    """How many search hits for ``word`` show it (the closest passages come back anyway)."""
    page.goto("/?q=" + word)
    return page.locator("ol.hits > *", has_text=word).count()


def test_edit_and_disable_a_chunk_on_the_document_page(
    new_context: Callable[..., BrowserContext], live_server: LiveServer, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    old_word, new_word = f"wombat{tag}", f"narwhal{tag}"
    md = tmp_path / f"chunk-edit-{tag}.md"
    md.write_text(
        f"# Office guide {tag}\n\n## Parking\n\nVisitors park in the {old_word} lot.\n\n"
        "## Lunch\n\nThe canteen serves noodles at noon.\n",
        encoding="utf-8",
    )
    page = new_context().new_page()
    log_in(page, live_server.admin_user, live_server.admin_password)
    upload_in_browser(page, [md])
    page.goto("/documents")
    wait_ready(page, [md.name])
    page.locator("#doc-rows tr", has_text=md.name).locator("td.name a").click()

    page.locator("a.edit-passages").click()
    chunk = page.locator("li.chunk", has_text=old_word)
    expect(chunk).to_have_count(1)
    chunk_id = chunk.get_attribute("id")
    assert chunk_id
    item = page.locator(f"li#{chunk_id}")
    item.locator("a.chunk-edit-link").click()
    item.locator("textarea[name=text]").fill(f"Visitors park in the {new_word} garage.")
    item.locator("form.chunk-edit button[type=submit]").click()
    expect(page.locator(f"li#{chunk_id} pre.chunk-text")).to_have_text(
        f"Visitors park in the {new_word} garage."
    )
    # Swapped in place by htmx: still the document page, the other chunk untouched.
    assert "/documents/" in page.url and "/chunks/" not in page.url
    expect(page.locator("li.chunk", has_text="noodles")).to_have_count(1)

    page.locator(f"li#{chunk_id} a.chunk-edit-link").click()
    page.locator(f"li#{chunk_id} .chunk-tools button", has_text="Disable").click()
    expect(page.locator(f"li#{chunk_id} .chunk-disabled")).to_be_visible()
    expect(page.locator(f"li#{chunk_id}")).to_have_class("chunk chunk-off")
    page.locator(f"li#{chunk_id} a.chunk-edit-link").click()
    page.locator(f"li#{chunk_id} a.chunk-history-link").click()
    history = page.locator(f"li#{chunk_id} .chunk-history")
    expect(history.locator("li")).to_have_count(2)
    page.locator(f"li#{chunk_id}").scroll_into_view_if_needed()
    screenshot(page, "chunk-edit")

    doc_url = page.url
    assert hits_with(page, new_word) == 0  # disabled: in no search
    page.goto(doc_url)
    page.locator(f"li#{chunk_id} a.chunk-edit-link").click()
    page.locator(f"li#{chunk_id} .chunk-tools button", has_text="Enable").click()
    expect(page.locator(f"li#{chunk_id} .chunk-disabled")).to_have_count(0)
    page.goto("/?q=" + new_word)
    expect(page.locator("ol.hits").first).to_contain_text(new_word)
