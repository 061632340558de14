"""The Ask page's written answer (issue 13), server side: the statement that answers are
extractive when no LLM is configured (both languages); with the fake chat server, the
slot that web/static/answer.js streams into (and the stream it reads), the answer
written on the server without JavaScript with its citations linked to the numbered
passages, the weak-match refusal without an LLM call, and a thumbs on the answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.answer.page import linked_answer, stream_request
from app.answer.service import NOTHING_ANSWERS
from app.auth.models import Role
from app.feedback.models import Feedback, FeedbackKind, Source
from app.llm import ChatClient, ChatConfig
from app.main import create_app
from app.runtime import Runtime
from app.search.service import SearchFilters
from tests.chatserver import ChatServer
from tests.factories import settle, store_upload
from tests.samples import GUIDE_MD, LEAVE_MD, RELEASE_MD
from tests.webclient import dom, login, make_user

QUESTION = "How many days of paid annual leave do employees get after one year?"
OFF_TOPIC = "sourdough bread baking temperature"
OFF_EN = (
    "Answers here are extractive: the highlighted sentences in the passages below, quoted "
    "from your documents as they are written."
)
OFF_ZH = "这里的答案是抽取式的：即下方段落中高亮显示的句子，按原文摘自您的文档。"


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def docs(rt: Runtime) -> Runtime:
    for name, text in [("guide.md", GUIDE_MD), ("leave.md", LEAVE_MD), ("release.md", RELEASE_MD)]:
        store_upload(rt, name, text.encode())
    settle(rt)
    return rt


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    with ChatServer() as s:
        yield s


@pytest.fixture
def client(docs: Runtime) -> Iterator[TestClient]:
    make_user(docs, "rita", Role.READER)
    with TestClient(create_app(runtime=docs), raise_server_exceptions=False) as c:
        login(c, "rita")
        yield c


@pytest.fixture
def with_llm(docs: Runtime, chat: ChatServer, client: TestClient) -> TestClient:
    docs.llm = ChatClient(
        ChatConfig(base_url=chat.url, model=chat.model, timeout_s=2.0, backoff_s=0.01)
    )
    return client


def _slot(page: BeautifulSoup) -> Any:
    slot = page.select_one("#answers #llm-answer")
    assert slot is not None
    return slot


def _events(body: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in body.split("\n\n"):
        if block.strip():
            fields = dict(line.split(": ", 1) for line in block.split("\n"))
            out.append((fields["event"], json.loads(fields["data"])))
    return out


# -- without an LLM ----------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "statement", "how"), [
    ("en", OFF_EN, "set KB_LLM_URL and KB_LLM_MODEL"),
    ("zh", OFF_ZH, "请设置 KB_LLM_URL 和 KB_LLM_MODEL"),
])  # fmt: skip
def test_without_an_llm_the_page_says_answers_are_extractive(
    client: TestClient, lang: str, statement: str, how: str
) -> None:
    client.cookies.set("kb_lang", lang)
    page = dom(client.get("/ask", params={"q": QUESTION}).text)
    slot = _slot(page)
    assert not slot.has_attr("hidden") and not slot.has_attr("data-url")
    text = slot.get_text(" ", strip=True)
    assert statement in text and how in text and "Written answers (LLM)" in text
    assert "later version" not in page.get_text()
    assert page.select("#answers li.answer")  # the extractive view, unchanged
    assert page.select_one("#answers .write-link") is None
    # The no-JS way to a written answer asks nothing when there is no LLM.
    again = dom(client.get("/ask", params={"q": QUESTION, "write": "1"}).text)
    assert _slot(again).select_one(".written") is None


# -- with the fake chat server -----------------------------------------------------------


def test_the_slot_carries_what_answer_js_needs(with_llm: TestClient, chat: ChatServer) -> None:
    page = dom(with_llm.get("/ask", params={"q": QUESTION, "k": "4"}).text)
    assert chat.chat_requests() == []  # the page itself asks no LLM: the script does
    slot = _slot(page)
    assert page.select_one('script[src="/static/answer.js"]') is not None
    assert slot["data-url"] == "/api/v1/answer"
    body = json.loads(slot["data-body"])
    assert body == {"q": QUESTION, "k": 4, "stream": True}
    headers = json.loads(page.body["hx-headers"])
    assert headers == {slot["data-csrf-header"]: slot["data-csrf"]}
    assert slot.select_one("button.stop[type=button]") is not None
    assert slot.select_one(".written") is not None and slot.select_one(".answer-note")
    assert chat.model in slot.select_one(".model").get_text()
    for name in ("writing", "stopped", "broken", "failed", "nothing", "length"):
        assert slot[f"data-msg-{name}"]
    link = slot.select_one("a.write-link")["href"]
    assert link.startswith("/ask?") and "write=1" in link and "k=4" in link
    rating = slot.select_one(".answer-rating")
    assert rating.has_attr("hidden")  # shown by the script once the answer is done
    assert rating.select_one("input[name=kind]")["value"] == "answer"

    # What the script does: post data-body with the CSRF header, read the events.
    r = with_llm.post(
        slot["data-url"],
        content=slot["data-body"],
        headers={"Content-Type": "application/json", slot["data-csrf-header"]: slot["data-csrf"]},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _events(r.text)
    assert [e for e, _ in events][-2:] == ["citations", "done"]
    assert any(e == "token" for e, _ in events)
    cards = {int(li["data-chunk-id"]) for li in page.select("#answers li.answer")}
    cited = events[-2][1]["citations"]
    assert cited and {c["chunk_id"] for c in cited} <= cards  # [n] can link to the cards


def test_the_api_refuses_the_page_script_without_its_csrf_header(
    with_llm: TestClient, chat: ChatServer
) -> None:
    body = stream_request(question=QUESTION, collection="", k=5, filters=SearchFilters())
    r = with_llm.post("/api/v1/answer", json=body)
    assert r.status_code == 403 and chat.chat_requests() == []


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_without_javascript_the_answer_is_written_on_the_server(
    with_llm: TestClient, chat: ChatServer, lang: str
) -> None:
    with_llm.cookies.set("kb_lang", lang)
    page = dom(with_llm.get("/ask", params={"q": QUESTION, "write": "1"}).text)
    assert len(chat.chat_requests()) == 1
    slot = _slot(page)
    assert not slot.has_attr("data-url")  # the script leaves a written answer alone
    written = slot.select_one(".written")
    assert written is not None and "十天带薪年假" in written.get_text()
    refs = written.select("a.cite-ref")
    assert refs
    for a in refs:
        target = page.select_one(a["href"])  # "#answer-n": a numbered passage below
        assert target is not None and target.name == "li" and "answer" in target["class"]
    leave = [li for li in page.select("#answers li.answer") if "leave.md" in li.get_text()]
    assert leave and any(a["href"] == f"#{leave[0]['id']}" for a in refs)
    assert "<" not in written.decode_contents().replace("<a ", "").replace("</a>", "")
    model = slot.select_one(".model").get_text()
    assert chat.model in model
    assert ("Written by" in model) == (lang == "en")
    rating = slot.select_one(".answer-rating")
    assert not rating.has_attr("hidden")
    fields = {i["name"]: i.get("value", "") for i in rating.select("input[type=hidden]")}
    assert fields["kind"] == "answer" and fields["model"] == chat.model
    cited = {int(page.select_one(a["href"])["data-chunk-id"]) for a in refs}
    assert {int(i) for i in fields["chunk_ids"].split(",")} == cited


def test_weak_match_refuses_without_asking_the_llm(with_llm: TestClient, chat: ChatServer) -> None:
    for params in ({"q": OFF_TOPIC}, {"q": OFF_TOPIC, "write": "1"}):
        page = dom(with_llm.get("/ask", params=params).text)
        slot = _slot(page)
        assert slot.select_one("p.refusal").get_text() == NOTHING_ANSWERS
        assert not slot.has_attr("data-url") and slot.select_one(".written") is None
        assert page.select("#answers li.answer")  # the closest passages stay
    with_llm.cookies.set("kb_lang", "zh")
    zh = _slot(dom(with_llm.get("/ask", params={"q": OFF_TOPIC}).text))
    assert zh.select_one("p.refusal").get_text().startswith("知识库中没有")
    assert chat.chat_requests() == []


def test_thumbs_on_the_written_answer_store_kind_answer_and_the_model(
    with_llm: TestClient, chat: ChatServer, docs: Runtime
) -> None:
    url = f"/ask?q={QUESTION.replace(' ', '+')}&write=1"
    page = dom(with_llm.get(url).text)
    slot = _slot(page)
    refs = slot.select(".written a.cite-ref")
    cited = [int(page.select_one(a["href"])["data-chunk-id"]) for a in refs]
    form = slot.select_one(".answer-rating form.thumbs")
    fields = {i["name"]: i.get("value", "") for i in form.select("input[type=hidden]")}
    assert "chunk_id" not in fields
    r = with_llm.post("/feedback", data={**fields, "rating": "down"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("rated=answer")
    assert "write=1" in r.headers["location"]
    with docs.sessions() as s:
        (row,) = s.scalars(select(Feedback)).all()
        assert row.kind == FeedbackKind.ANSWER and row.model == chat.model
        assert set(row.chunk_ids) == set(cited) and row.chunk_id is None
        assert row.source == Source.ASK and row.query == QUESTION and row.rating == "down"
    back = dom(with_llm.get(r.headers["location"]).text)
    assert _slot(back).select_one(".answer-rating .thanks") is not None
    # htmx (the streamed page): the thanks swaps in place.
    r = with_llm.post(
        "/feedback",
        data={**fields, "rating": "up", "chunk_ids": ""},
        headers={"HX-Request": "true", "X-CSRF-Token": fields["csrf_token"]},
    )
    assert r.status_code == 200 and "thanks" in r.text
    with docs.sessions() as s:
        rows = s.scalars(select(Feedback).order_by(Feedback.id)).all()
        assert [(f.kind, f.rating, f.model) for f in rows][-1] == ("answer", "up", chat.model)


def test_a_hit_thumbs_still_needs_its_passage(with_llm: TestClient) -> None:
    page = dom(with_llm.get("/ask", params={"q": QUESTION}).text)
    form = page.select_one("#answers li.answer form.thumbs")
    fields = {i["name"]: i.get("value", "") for i in form.select("input[type=hidden]")}
    del fields["chunk_id"]
    r = with_llm.post("/feedback", data={**fields, "rating": "up"}, follow_redirects=False)
    assert r.status_code == 422


def test_linked_answer_escapes_the_model_and_links_only_cited_numbers() -> None:
    cites = [{"n": 1, "chunk_id": 7, "link": "/documents/3?chunk=7#chunk-7"},
             {"n": 2, "chunk_id": 9, "link": "/documents/4?chunk=9#chunk-9"}]  # fmt: skip
    html = str(linked_answer("<b>x</b> [1] and [2][3].", cites, {7: 2}))
    assert html.startswith("&lt;b&gt;x&lt;/b&gt; ")
    assert '<a class="cite-ref" href="#answer-2">[1]</a>' in html
    assert '<a class="cite-ref" href="/documents/4?chunk=9#chunk-9">[2]</a>[3].' in html
