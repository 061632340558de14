"""The browser harness works: Chromium reaches the live server, and the vendored htmx is served."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page

from tests.e2e.browser import ROOT, LiveServer, screenshot

pytestmark = pytest.mark.slow


def test_healthz_in_the_browser(page: Page, live_server: LiveServer) -> None:
    response = page.goto(live_server.url("/healthz"))
    assert response is not None and response.status == 200
    assert response.json() == {"status": "ok"}
    # What the page shows is the same JSON (Chromium renders it as text in a <pre>).
    assert json.loads(page.locator("pre").inner_text()) == {"status": "ok"}
    assert screenshot(page, "smoke-healthz").stat().st_size > 0


def test_vendored_htmx_is_served(page: Page) -> None:
    if not (ROOT / "web/static/vendor/htmx.min.js").is_file():
        pytest.fail("web/static/vendor/htmx.min.js is missing: run scripts/fetch_assets.py")
    response = page.goto("/static/vendor/htmx.min.js")  # relative: base_url is the live server
    assert response is not None and response.status == 200
    assert "htmx" in response.text()
