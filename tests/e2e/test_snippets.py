"""Hits that read well, in a real browser and both interface languages: a snippet of plain
text (no Markdown source), expanded in place to the whole passage and collapsed again, and
the notice for a question nothing matches well. Screenshots go to
test-artifacts/screenshots/ (snippet-*-{en,zh}.png, weak-match-{en,zh}.png)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.e2e.browser import LiveServer, log_in, screenshot, upload_in_browser
from tests.e2e.test_browser import wait_ready

pytestmark = pytest.mark.slow

LANTERN = """\
# Lantern Manual {tag}

## Lamp timer

**-W** *SECS*, **--wait**=*SECS*
: Wait SECS seconds \\[default 5\\] before the lamp is lit; see [the timing guide](https://lantern.example/timing).

> **Note:** a `--wait` of `0` lights the lamp at once.

The lamp timer of model {tag} keeps counting while the lantern is closed. Each lamp keeps its own timer,
so two lanterns started together may still drift apart over a long night. A drifting
timer is corrected at dawn, when every lantern resets its count to zero. Lanterns that
were switched off before dawn keep their old count until they are lit again, and the
status page marks them as *stale* until then. Use `lantern sync` to correct them by hand.
"""
TEXTS = {
    "en-US": {
        "expand": "Show the whole passage",
        "less": "Show less",
        "weak": "Nothing in the knowledge base matches this well; the closest passages are below.",
    },
    "zh-CN": {
        "expand": "显示整段",
        "less": "收起",
        "weak": "知识库中没有与此很好匹配的内容；下面是最接近的段落。",
    },
}
MARKUP = re.compile(r"\*\*|\\\[|\]\(|`|^> |^#", re.MULTILINE)


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_snippet_expands_and_collapses_and_weak_match_is_said(
    new_context: Callable[..., BrowserContext], live_server: LiveServer, tmp_path: Path, locale: str
) -> None:
    texts = TEXTS[locale]
    short = locale[:2]
    tag = uuid.uuid4().hex[:6]
    md = tmp_path / f"lantern-{tag}.md"
    md.write_text(LANTERN.format(tag=tag), encoding="utf-8")
    page = new_context().new_page()
    log_in(page, live_server.admin_user, live_server.admin_password)
    upload_in_browser(page, [md])
    page.goto("/documents")
    wait_ready(page, [md.name])

    page.goto("/")
    page.fill("input[name=q]", "lamp timer wait seconds")
    page.click("form[role=search] button[type=submit]")
    hit = page.locator("#results li.hit", has=page.locator(".file", has_text=md.name))
    box = hit.locator(".passage-box")
    expect(box).to_have_class(re.compile(r"\bsnippet\b"))
    snippet = box.locator(".passage").inner_text()
    assert len(snippet) <= 300 and not MARKUP.search(snippet), snippet
    expect(box.locator("mark").first).to_be_visible()
    toggle = box.locator("a.toggle")
    expect(toggle).to_have_text(texts["expand"])
    expect(toggle).to_have_attribute("aria-expanded", "false")
    hit.scroll_into_view_if_needed()
    screenshot(page, f"snippet-collapsed-{short}")

    page.evaluate("window.__noReload = true")
    toggle.click()
    expect(box).to_have_class(re.compile(r"\bfull\b"))
    full = box.locator(".passage")
    expect(full).to_contain_text("Use lantern sync to correct them by hand.")
    expect(full).to_contain_text("Wait SECS seconds [default 5] before the lamp is lit")
    assert not MARKUP.search(full.inner_text())
    expect(box.locator("a.toggle")).to_have_text(texts["less"])
    expect(box.locator("a.toggle")).to_have_attribute("aria-expanded", "true")
    assert page.evaluate("window.__noReload") is True  # swapped in place, no navigation
    screenshot(page, f"snippet-expanded-{short}")

    box.locator("a.toggle").click()
    expect(box).to_have_class(re.compile(r"\bsnippet\b"))
    expect(box.locator(".passage")).to_have_text(snippet)
    expect(box.locator("a.toggle")).to_have_text(texts["expand"])
    screenshot(page, f"snippet-collapsed-again-{short}")

    page.goto("/?q=sourdough+bread+baking+temperature")
    notice = page.locator("#results p.notice.weak-match[role=status]")
    expect(notice).to_have_text(texts["weak"])
    expect(page.locator("#results li.hit").first).to_be_visible()
    screenshot(page, f"weak-match-{short}")
