"""The search page in a real browser (issue 16): filters apply as they change, results
come as you type, the tag list follows the collection, and on a phone (390×844) the
header keeps to two lines, the filters fold behind a toggle and the first result shows
without scrolling; in English and Chinese. Screenshots: search-empty-kb.png,
search-weak-results.png, search-mobile.png, search-mobile-zh.png."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pytest
from bs4 import BeautifulSoup
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.browser import LiveServer, log_in, screenshot
from tests.samples import GUIDE_MD, LEAVE_MD

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}
QUESTION = "How do I restore a backup?"


@dataclass(frozen=True)
class Data:
    collection: str  # the guide (tagged "orbit") and the leave policy
    other: str  # one document tagged "payroll"
    empty: str  # no documents


def _csrf(client: httpx.Client, path: str) -> str:
    page = BeautifulSoup(client.get(path).text, "html.parser")
    field = page.find("input", attrs={"name": "csrf_token"})
    assert field is not None, path
    return str(field["value"])


def _create_collection(client: httpx.Client, name: str) -> None:
    page = BeautifulSoup(client.get("/admin/collections").text, "html.parser")
    form = page.select_one("form[action='/admin/collections']")
    embedder = form.select_one("select[name=embedder] option[selected]") or form.select_one(
        "select[name=embedder] option"
    )
    r = client.post(
        "/admin/collections",
        data={
            "csrf_token": _csrf(client, "/admin/collections"),
            "name": name,
            "description": "",
            "embedder": str(embedder["value"]),
        },
    )
    assert r.status_code in (200, 303), r.text[:500]


def _upload(client: httpx.Client, collection: str, tags: str, *files: tuple[str, bytes]) -> None:
    r = client.post(
        "/upload",
        data={"csrf_token": _csrf(client, "/upload"), "collection": collection, "tags": tags},
        files=[("files", f) for f in files],
    )
    assert r.status_code == 200, r.text[:500]


def _wait_searchable(client: httpx.Client, collection: str, q: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = client.get("/", params={"q": q, "collection": collection})
        if 'class="hit' in r.text:
            return
        time.sleep(1)
    raise AssertionError(f"nothing in {collection} became searchable for {q!r}")


@pytest.fixture(scope="module")
def data(live_server: LiveServer) -> Iterator[Data]:
    tag = uuid.uuid4().hex[:6]
    names = Data(f"mobile-{tag}", f"mobile-other-{tag}", f"mobile-empty-{tag}")
    with httpx.Client(base_url=live_server.base_url, timeout=60) as client:
        r = client.post(
            "/login",
            data={"username": live_server.admin_user, "password": live_server.admin_password},
        )
        assert r.status_code in (200, 303), r.text[:300]
        for name in (names.collection, names.other, names.empty):
            _create_collection(client, name)
        _upload(client, names.collection, "orbit", (f"guide-{tag}.md", GUIDE_MD.encode()))
        _upload(client, names.collection, "", (f"leave-{tag}.md", LEAVE_MD.encode()))
        _upload(client, names.other, "payroll", (f"pay-{tag}.md", b"# Pay\n\nPaid on the 25th.\n"))
        _wait_searchable(client, names.collection, QUESTION)
        _wait_searchable(client, names.collection, "病假证明")
        _wait_searchable(client, names.other, "When is pay day?")
    yield names


def _no_reload(page: Page) -> None:
    page.evaluate("window.__kbNoReload = true")


def _still_same_page(page: Page) -> bool:
    return bool(page.evaluate("window.__kbNoReload === true"))


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_filters_apply_on_change_and_results_come_as_you_type(
    page: Page, live_server: LiveServer, data: Data, locale: str
) -> None:
    log_in(page, live_server.admin_user, live_server.admin_password)
    page.goto(f"/?collection={data.collection}")
    _no_reload(page)
    expect(page.locator("#filter-box select[name=doc_type]")).to_be_visible()  # desktop: open

    # As you type: no Enter, no click; the URL follows the question.
    page.locator("input[name=q]").press_sequentially(QUESTION, delay=30)
    first = page.locator("#results li.hit").first
    expect(first).to_be_visible(timeout=30_000)
    expect(first.locator(".file")).to_contain_text("guide-")
    expect(page).to_have_url(re.compile(r"q=How"))

    # A filter applies when it changes: Chinese passages only, then none of type PDF.
    page.select_option("select[name=language]", "zh")
    expect(page).to_have_url(re.compile(r"language=zh"))
    expect(page.locator("#results li.hit .badge.lang").first).to_have_attribute("lang", "zh")
    page.select_option("select[name=doc_type]", "pdf")
    expect(page.locator("#results .no-results")).to_be_visible()
    expect(page.locator("#results a.clear-filters")).to_be_visible()
    assert _still_same_page(page)

    # The empty question says what to type.
    page.fill("input[name=q]", "")
    page.locator("input[name=q]").press("Enter")
    expect(page.locator("#results .empty-query")).to_be_visible()

    # The tag list follows the collection, without a submit.
    expect(page.locator("#tag-filter option")).to_have_text(["orbit"])
    page.select_option("select[name=collection]", data.other)
    expect(page.locator("#tag-filter option")).to_have_text(["payroll"])
    assert _still_same_page(page)


def test_empty_knowledge_base_and_weak_results(
    page: Page, live_server: LiveServer, data: Data
) -> None:
    log_in(page, live_server.admin_user, live_server.admin_password)
    page.goto(f"/?collection={data.empty}&q=backup")
    state = page.locator("#results .empty-kb")
    expect(state).to_be_visible()
    expect(state.locator("a[href='/upload']")).to_be_visible()
    screenshot(page, "search-empty-kb")

    page.goto(f"/?collection={data.collection}&q=quantum+zebra+sandwich+recipe")
    expect(page.locator("#results .weak-match")).to_be_visible()
    screenshot(page, "search-weak-results")


def _header_rows(page: Page) -> int:
    """How many lines the header's visible parts take."""
    tops = page.evaluate(
        """() => [...document.querySelectorAll('header.top > *')]
            .filter((el) => el.getBoundingClientRect().height > 0)
            .map((el) => Math.round(el.getBoundingClientRect().top))"""
    )
    rows: list[int] = []
    for top in sorted(tops):
        if not rows or top - rows[-1] > 12:
            rows.append(top)
    return len(rows)


@pytest.mark.parametrize(
    ("locale", "shot"), [("en-US", "search-mobile"), ("zh-CN", "search-mobile-zh")]
)
def test_phone_header_filters_and_first_result(
    new_context: Callable[..., BrowserContext],
    live_server: LiveServer,
    data: Data,
    locale: str,
    shot: str,
) -> None:
    page = new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    # log_in() waits for the header's links, which a phone folds away: log in here.
    page.goto("/login")
    page.fill("input[name=username]", live_server.admin_user)
    page.fill("input[name=password]", live_server.admin_password)
    page.click("#login-form button[type=submit]")
    expect(page.locator("header .menu-toggle")).to_be_visible()
    page.goto("/?" + urlencode({"collection": data.collection, "q": QUESTION}))
    first = page.locator("#results li.hit").first
    expect(first).to_be_visible()

    # The header: two lines at most, its links behind a menu button.
    assert _header_rows(page) <= 2
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    nav = page.locator("header nav#main-nav")
    expect(nav).to_be_hidden()
    toggle = page.locator("header .menu-toggle")
    expect(toggle).to_be_visible()

    # The filters fold behind their toggle; the first result is above the fold.
    expect(page.locator("#filter-box > summary")).to_be_visible()
    expect(page.locator("#filter-box select[name=doc_type]")).to_be_hidden()
    box = first.locator("a.title").bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"], box
    assert page.evaluate("window.scrollY") == 0
    screenshot(page, shot)

    toggle.click()
    expect(nav).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(nav.locator("a[href='/ask']")).to_be_visible()
    toggle.click()
    expect(nav).to_be_hidden()

    page.locator("#filter-box > summary").click()
    expect(page.locator("#filter-box select[name=doc_type]")).to_be_visible()
    page.select_option("select[name=language]", "zh")
    expect(page).to_have_url(re.compile(r"language=zh"))
    expect(page.locator("#results li.hit").first).to_be_visible()


def test_a_new_token_is_copied_with_its_button(
    new_context: Callable[..., BrowserContext], live_server: LiveServer
) -> None:
    context = new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    log_in(page, live_server.admin_user, live_server.admin_password)
    page.goto("/tokens")
    page.fill("form[action='/tokens'] input[name=name]", f"copy-{uuid.uuid4().hex[:6]}")
    page.click("form[action='/tokens'] button[type=submit]")
    token = page.locator("code#new-token").inner_text().strip()
    button = page.locator("button.copy")
    expect(button).to_be_visible()
    button.click()
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == token
    expect(page.locator("table.tokens thead th").nth(2)).to_have_text("Prefix")
