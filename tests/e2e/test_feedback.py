"""Thumbs and Insights in a real browser, in both interface languages: a thumbs on a
search hit turns into the thanks in place (htmx, no reload), a thumbs on an Ask passage
too, and the admins' Insights page lists the question with its SVG charts. Screenshots
go to test-artifacts/screenshots/ (feedback-thanks-*, insights-*)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.e2e.browser import LiveServer, log_in, screenshot, upload_in_browser
from tests.e2e.test_browser import wait_ready

pytestmark = pytest.mark.slow

HARBOUR = """\
# Harbour Handbook {tag}

## Mooring fees

Boats of the {tag} harbour pay their mooring fee every quarter, at the harbour office.
A boat longer than twelve metres pays double. Fees are waived during repairs.
"""
TEXTS = {
    "en-US": {"thanks": "Thanks for your feedback.", "title": "Insights", "up": "Helpful"},
    "zh-CN": {"thanks": "感谢您的反馈。", "title": "洞察", "up": "有帮助"},
}


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_thumbs_say_thanks_and_insights_show_the_question(
    new_context: Callable[..., BrowserContext], live_server: LiveServer, tmp_path: Path, locale: str
) -> None:
    texts = TEXTS[locale]
    short = locale[:2]
    tag = uuid.uuid4().hex[:6]
    md = tmp_path / f"harbour-{tag}.md"
    md.write_text(HARBOUR.format(tag=tag), encoding="utf-8")
    page = new_context().new_page()
    log_in(page, live_server.admin_user, live_server.admin_password)
    upload_in_browser(page, [md])
    page.goto("/documents")
    wait_ready(page, [md.name])

    question = f"when do boats of harbour {tag} pay the mooring fee"
    page.goto("/")
    page.fill("input[name=q]", question)
    page.click("form[role=search] button[type=submit]")
    hit = page.locator("#results li.hit", has=page.locator(".file", has_text=md.name))
    expect(hit).to_be_visible()
    up = hit.locator("form.thumbs button[value=up]")
    expect(up).to_have_attribute("aria-label", texts["up"])
    page.evaluate("window.__noReload = true")
    up.click()
    thanks = hit.locator(".thumbs.thanks[role=status]")
    expect(thanks).to_have_text(texts["thanks"])
    expect(hit.locator("form.thumbs")).to_have_count(0)
    assert page.evaluate("window.__noReload") is True  # swapped in place, no navigation
    hit.scroll_into_view_if_needed()
    screenshot(page, f"feedback-thanks-search-{short}")

    page.goto(f"/ask?q={question.replace(' ', '+')}")
    answer = page.locator("#answers li.answer").first
    answer.locator("form.thumbs button[value=down]").click()
    expect(answer.locator(".thumbs.thanks")).to_have_text(texts["thanks"])
    screenshot(page, f"feedback-thanks-ask-{short}")

    page.goto("/admin/insights")
    expect(page.locator("h1")).to_have_text(texts["title"])
    row = page.locator("table.insights tr.question", has_text=question)
    expect(row).to_be_visible()
    expect(row.locator("td.up")).to_have_text("1")
    expect(row.locator("td.down")).to_have_text("1")
    charts = page.locator("section.charts svg.chart")
    expect(charts).to_have_count(3)
    expect(page.locator("#chart-ratings rect.bar.up")).to_have_count(1)
    box = charts.first.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 50
    screenshot(page, f"insights-{short}")
