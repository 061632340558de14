"""A PDF original is served sandboxed (CSP ``sandbox``) and Chromium still shows it inline,
in its PDF viewer, at the page named in the link."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests import pdfgen
from tests.e2e.browser import LiveServer, log_in, screenshot, upload_in_browser

pytestmark = pytest.mark.slow

PDF_VIEWER = "chrome-extension://mhjfbmdgcfjbbpaeojofohoefgiehjai/"
# The page number in the viewer's toolbar (inside its shadow roots); null until it is up.
CURRENT_PAGE = """() => {
  const tb = document.querySelector('pdf-viewer')?.shadowRoot?.querySelector('viewer-toolbar');
  const sel = tb?.shadowRoot?.querySelector('viewer-page-selector');
  return sel?.shadowRoot?.querySelector('input')?.value ?? null;
}"""


def test_sandboxed_pdf_original_opens_inline_at_its_page(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    pdf = pdfgen.english_outline_pdf(tmp_path)
    pdf = pdf.rename(tmp_path / f"sandboxed-{uuid.uuid4().hex[:6]}.pdf")
    log_in(page, live_server.admin_user, live_server.admin_password)
    upload_in_browser(page, [pdf])
    page.goto("/documents")
    link = page.locator("#doc-rows tr", has_text=pdf.name).locator("a[href^='/documents/']")
    href = link.first.get_attribute("href")
    assert href is not None
    original = href.split("#")[0].rstrip("/") + "/original"

    response = page.goto(original + "#page=2")
    assert response is not None and response.status == 200
    # header_value, not .headers: Playwright's .headers leaves security headers out.
    assert (response.header_value("content-security-policy") or "").startswith("sandbox")
    assert response.header_value("x-content-type-options") == "nosniff"
    # Chromium's PDF viewer shows it, at page 2 (a blocked or downloaded PDF shows none).
    page_shown = None
    for _ in range(100):
        viewer = [f for f in page.frames if f.url.startswith(PDF_VIEWER)]
        page_shown = viewer[0].evaluate(CURRENT_PAGE) if viewer else None
        if page_shown == "2":
            break
        page.wait_for_timeout(100)
    assert page_shown == "2", [f.url for f in page.frames]
    screenshot(page, "pdf-original-sandboxed")
