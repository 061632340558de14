"""The Ask page's written answer in Chromium (issue 13), in both interface languages: with
the fake chat server (tests/chatserver) streaming slowly, the answer appears piece by
piece, its [n] link to the numbered passages, Stop keeps what was written with a note, a
stream that dies mid-answer says so, a weak match is refused without asking the LLM, and
without an LLM configured the page says answers are extractive. Screenshots go to
test-artifacts/screenshots/ (ask-stream-*, ask-stopped-*, ask-broken-*, ask-refusal-*,
ask-no-llm-*)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote_plus

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.chatserver import ChatFault, ChatServer
from tests.e2e.browser import (
    VIEWPORT,
    LiveServer,
    log_in,
    screenshot,
    start_live_server,
    stop_live_server,
    upload_in_browser,
)
from tests.e2e.test_browser import wait_ready
from tests.samples import GUIDE_MD, LEAVE_MD

pytestmark = pytest.mark.slow

QUESTION = {
    "en-US": "How many days of paid annual leave do employees get after one year?",
    "zh-CN": "员工工作满一年后有几天带薪年假？",
}
OFF_TOPIC = "sourdough bread baking temperature"
TEXTS = {
    "en-US": {
        "stop": "Stop",
        "stopped": "Stopped: the answer above is incomplete.",
        "broken": "The connection to the assistant broke; the answer above is incomplete.",
        "refusal": "Nothing in the knowledge base answers this; the closest passages are below.",
        "off": "Answers here are extractive",
        "thanks": "Thanks for your feedback.",
    },
    "zh-CN": {
        "stop": "停止",
        "stopped": "已停止：上面的回答不完整。",
        "broken": "与助手的连接中断；上面的回答不完整。",
        "refusal": "知识库中没有能回答这个问题的内容；下面是最接近的段落。",
        "off": "这里的答案是抽取式的",
        "thanks": "感谢您的反馈。",
    },
}
TOKEN_DELAY_S = 0.12


@pytest.fixture(scope="module")
def chat() -> Iterator[ChatServer]:
    with ChatServer(token_delay=TOKEN_DELAY_S) as server:
        yield server


@pytest.fixture(scope="module")
def llm_server(
    chat: ChatServer, browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A second ``kb serve`` with KB_LLM_URL/KB_LLM_MODEL on the fake chat server, and the
    sample leave policy (Chinese) and guide (English) uploaded and ready."""
    workdir = tmp_path_factory.mktemp("llm-server")
    env = {"KB_LLM_URL": chat.url, "KB_LLM_MODEL": chat.model}
    try:
        server = start_live_server(workdir, env=env)
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        files = []
        for name, text in [("leave.md", LEAVE_MD), ("guide.md", GUIDE_MD)]:
            path = workdir / name
            path.write_text(text, encoding="utf-8")
            files.append(path)
        context = browser.new_context(base_url=server.base_url, viewport=VIEWPORT)
        try:
            page = context.new_page()
            log_in(page, server.admin_user, server.admin_password)
            upload_in_browser(page, files)
            page.goto("/documents")
            wait_ready(page, [f.name for f in files])
        finally:
            context.close()
        yield server
    finally:
        stop_live_server(server)
        log = Path(server.log_path)
        if log.exists():
            (Path("test-artifacts") / "llm-live-server.log").parent.mkdir(exist_ok=True)
            (Path("test-artifacts") / "llm-live-server.log").write_bytes(log.read_bytes())


@pytest.fixture
def ask_page(
    new_context: Callable[..., BrowserContext], llm_server: LiveServer, chat: ChatServer
) -> Iterator[Page]:
    """A page logged in on the server with an LLM; the fake's speed reset afterwards."""
    page = new_context(base_url=llm_server.base_url).new_page()
    log_in(page, llm_server.admin_user, llm_server.admin_password)
    yield page
    chat.token_delay = TOKEN_DELAY_S


def _slot_state(page: Page) -> tuple[str, str]:
    """The answer's text and the slot's state, read together."""
    got = page.evaluate(
        "() => { const s = document.getElementById('llm-answer');"
        " return [s.querySelector('.written').textContent, s.dataset.state || '']; }"
    )
    return str(got[0]), str(got[1])


def _short(locale: str) -> str:
    return locale[:2]


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_answer_streams_in_with_links_to_the_passages(
    ask_page: Page, chat: ChatServer, locale: str
) -> None:
    page, texts = ask_page, TEXTS[locale]
    page.goto("/ask")
    page.fill("input[name=q]", QUESTION[locale])
    page.evaluate("window.__noReload = true")
    page.click("form.search button[type=submit]")  # htmx swaps #answers: the script starts
    slot = page.locator("#llm-answer")
    expect(slot.locator("button.stop")).to_be_visible()
    expect(slot.locator("button.stop")).to_have_text(texts["stop"])
    expect(slot.locator(".written")).not_to_be_empty()
    partial, state = _slot_state(page)
    assert state == "writing" and partial  # some of the answer, before it is done
    screenshot(page, f"ask-stream-writing-{_short(locale)}")
    expect(slot).to_have_attribute("data-state", "done", timeout=30_000)
    final, _ = _slot_state(page)
    assert len(final) > len(partial) and final.startswith(partial.strip()[:10])
    assert "十天带薪年假" in final
    assert page.evaluate("window.__noReload") is True
    expect(slot.locator("button.stop")).to_be_hidden()
    expect(slot.locator(".model")).to_contain_text(chat.model)
    refs = slot.locator(".written a.cite-ref")
    expect(refs.first).to_be_visible()
    href = refs.first.get_attribute("href") or ""
    assert href.startswith("#answer-")
    card = page.locator(href)
    expect(card).to_contain_text("leave.md")
    screenshot(page, f"ask-stream-done-{_short(locale)}")
    refs.first.click()
    assert page.url.endswith(href)
    expect(card).to_be_in_viewport()
    # Thumbs on the written answer, shown once it is done.
    rating = slot.locator(".answer-rating")
    expect(rating).to_be_visible()
    ids = rating.locator("input[name=chunk_ids]").get_attribute("value") or ""
    assert (card.get_attribute("data-chunk-id") or "x") in ids.split(",")
    rating.locator("button[value=up]").click()
    expect(rating.locator(".thanks")).to_have_text(texts["thanks"])


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_stop_keeps_what_was_written(ask_page: Page, chat: ChatServer, locale: str) -> None:
    page, texts = ask_page, TEXTS[locale]
    chat.token_delay = 0.4
    page.goto(f"/ask?q={quote_plus(QUESTION[locale])}")
    slot = page.locator("#llm-answer")
    expect(slot.locator(".written")).not_to_be_empty()
    slot.locator("button.stop").click()
    expect(slot).to_have_attribute("data-state", "stopped")
    note = slot.locator(".answer-note")
    expect(note).to_have_text(texts["stopped"])
    expect(slot.locator("button.stop")).to_be_hidden()
    kept, _ = _slot_state(page)
    assert kept
    time.sleep(1.0)
    assert _slot_state(page)[0] == kept  # nothing more arrives after Stop
    screenshot(page, f"ask-stopped-{_short(locale)}")


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_a_stream_that_dies_mid_answer_says_so(
    ask_page: Page, chat: ChatServer, locale: str
) -> None:
    page, texts = ask_page, TEXTS[locale]
    chat.inject(ChatFault.drop_after(4))
    page.goto(f"/ask?q={quote_plus(QUESTION[locale])}")
    slot = page.locator("#llm-answer")
    note = slot.locator(".answer-note.error[role=alert]")
    expect(note).to_contain_text(texts["broken"], timeout=30_000)
    assert _slot_state(page)[0]  # the part written stays
    expect(slot.locator(".answer-rating")).to_be_hidden()
    screenshot(page, f"ask-broken-{_short(locale)}")


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_weak_match_is_refused_without_asking_the_llm(
    ask_page: Page, chat: ChatServer, locale: str
) -> None:
    page, texts = ask_page, TEXTS[locale]
    before = len(chat.chat_requests())
    page.goto(f"/ask?q={quote_plus(OFF_TOPIC)}")
    expect(page.locator("#llm-answer p.refusal")).to_have_text(texts["refusal"])
    expect(page.locator("#answers li.answer").first).to_be_visible()  # the closest passages
    expect(page.locator("#llm-answer button.stop")).to_have_count(0)
    time.sleep(0.5)
    assert len(chat.chat_requests()) == before
    screenshot(page, f"ask-refusal-{_short(locale)}")


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_without_an_llm_the_page_says_answers_are_extractive(
    page: Page, live_server: LiveServer, locale: str
) -> None:
    log_in(page, live_server.admin_user, live_server.admin_password)
    page.goto(f"/ask?q={quote_plus(QUESTION[locale])}")
    off = page.locator("#llm-answer.off")
    expect(off).to_be_visible()
    expect(off).to_contain_text(TEXTS[locale]["off"])
    expect(off).to_contain_text("KB_LLM_URL")
    expect(page.locator("#llm-answer button.stop")).to_have_count(0)
    screenshot(page, f"ask-no-llm-{_short(locale)}")
