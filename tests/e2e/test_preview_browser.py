"""The page preview of a PDF hit, in a real browser: Preview opens the page picture in the
hit card with the passage marked on it, and closes again. Screenshots go to
test-artifacts/screenshots/ (preview-highlight.png at 1280x900, preview-highlight-mobile.png
at 390x844)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests import pdfgen
from tests.e2e.browser import LiveServer, log_in, screenshot, upload_in_browser
from tests.e2e.test_browser import wait_ready

pytestmark = pytest.mark.slow


def open_preview(page: Page, filename: str) -> None:
    # Straight to the results: typed into the box, the search-as-you-type request that
    # follows would replace the results (and the preview in them) a moment later.
    page.goto("/?q=recovery+code+card+in+the+box")
    hit = page.locator("#results li.hit", has=page.locator(".file", has_text=filename)).first
    control = hit.locator("[data-preview]")
    expect(control).to_have_attribute("aria-expanded", "false")
    control.click()
    preview = hit.locator(".preview")
    expect(preview).to_be_visible()
    expect(control).to_have_attribute("aria-expanded", "true")
    img = preview.locator(".preview-page img")
    expect(img).to_be_visible()
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=img.element_handle()
    )
    mark = preview.locator("mark.preview-mark").first
    expect(mark).to_be_visible()
    # The mark lies inside the picture, on the passage's lines (upper part of page 1).
    image_box, mark_box = img.bounding_box(), mark.bounding_box()
    assert image_box is not None and mark_box is not None
    assert image_box["x"] <= mark_box["x"] and image_box["y"] <= mark_box["y"]
    assert mark_box["x"] + mark_box["width"] <= image_box["x"] + image_box["width"] + 1
    assert mark_box["y"] + mark_box["height"] <= image_box["y"] + image_box["height"] / 2
    assert mark_box["width"] > image_box["width"] / 3  # a line of text, not a speck
    preview.scroll_into_view_if_needed()


def test_preview_shows_the_page_with_the_passage_marked(
    new_context: Callable[..., BrowserContext], live_server: LiveServer, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    pdf = pdfgen.no_outline_pdf(tmp_path, title=f"Preview guide {tag}")  # bytes of its own
    pdf = pdf.rename(tmp_path / f"preview-guide-{tag}.pdf")
    page = new_context().new_page()
    log_in(page, live_server.admin_user, live_server.admin_password)
    upload_in_browser(page, [pdf])
    page.goto("/documents")
    wait_ready(page, [pdf.name])

    open_preview(page, pdf.name)
    screenshot(page, "preview-highlight")
    # Pressed again, it closes.
    hit = page.locator("#results li.hit", has=page.locator(".file", has_text=pdf.name)).first
    hit.locator("[data-preview]").click()
    expect(hit.locator(".preview")).to_have_count(0)
    expect(hit.locator("[data-preview]")).to_have_attribute("aria-expanded", "false")

    # The same session on a phone-sized screen.
    state = page.context.storage_state()
    phone = new_context(viewport={"width": 390, "height": 844}, storage_state=state).new_page()
    open_preview(phone, pdf.name)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width  # the picture fits the phone's width
    screenshot(phone, "preview-highlight-mobile")
    # Its own close button closes it too.
    hit = phone.locator("#results li.hit", has=phone.locator(".file", has_text=pdf.name)).first
    hit.locator(".preview-close").click()
    expect(hit.locator(".preview")).to_have_count(0)
