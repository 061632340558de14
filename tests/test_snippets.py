"""Hits that read well: a snippet of plain text with highlights in the API, the CLI's
service and the Search page, the sentence closest in meaning marked in a cross-lingual
hit, and the whole passage one click away (GET /passages/{id}), behind the reader's login."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.auth.models import Role
from app.main import create_app
from app.runtime import Runtime
from app.search.answers import hit_snippets
from app.search.service import search
from app.text.snippets import SNIPPET_CHARS
from tests.factories import settle, store_upload
from tests.samples import GUIDE_MD, LEAVE_MD
from tests.webclient import dom, login, make_user

LANTERN_MD = """\
# Lantern Manual

## Lamp timer

**-W** *SECS*, **--wait**=*SECS*
: Wait SECS seconds \\[default 5\\] before the lamp is lit; see [the timing guide](https://lantern.example/timing).

> **Note:** a `--wait` of `0` lights the lamp at once.

The lamp timer keeps counting while the lantern is closed. Each lamp keeps its own timer,
so two lanterns started together may still drift apart over a long night. A drifting
timer is corrected at dawn, when every lantern resets its count to zero. Lanterns that
were switched off before dawn keep their old count until they are lit again, and the
status page marks them as *stale* until then. Use `lantern sync` to correct them by hand.
"""
MARKUP = ("**", "\\[", "](", "> ", "`", "# ")


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def loaded(rt: Runtime) -> Runtime:
    for name, text in [("guide.md", GUIDE_MD), ("leave.md", LEAVE_MD), ("lantern.md", LANTERN_MD)]:
        store_upload(rt, name, text.encode())
    settle(rt)
    return rt


@pytest.fixture
def client(loaded: Runtime) -> Iterator[TestClient]:
    make_user(loaded, "reader", Role.READER)
    with TestClient(create_app(runtime=loaded)) as c:
        login(c, "reader")
        yield c


def _hit(results: list[dict], file: str) -> dict:
    return next(r for r in results if r["file"] == file)


def test_api_snippets_are_short_plain_and_marked(client: TestClient) -> None:
    body = client.get("/api/v1/search", params={"q": "lamp timer wait seconds"}).json()
    hit = _hit(body["results"], "lantern.md")
    snip = hit["snippet"]
    assert len(snip["text"]) <= SNIPPET_CHARS < len(hit["text"])
    assert not any(m in snip["text"] for m in MARKUP)
    marked = [snip["text"][a:b].lower() for a, b in snip["highlights"]]
    assert marked and set(marked) <= {"lamp", "timer", "wait", "seconds"}
    assert "**" in hit["text"]  # the full text is still the source
    ask = client.get("/api/v1/ask", params={"q": "lamp timer wait seconds"}).json()
    answer = _hit(ask["answers"], "lantern.md")
    assert answer["snippet"]["highlights"] and answer["sentences"]


def test_cross_lingual_hit_marks_the_closest_sentence(loaded: Runtime) -> None:
    result = search(loaded, query="How many days of paid annual leave do employees get?")
    assert not result.weak_match
    snippets = hit_snippets(loaded, result)
    leave = [s for h, s in zip(result.hits, snippets, strict=True) if h.file == "leave.md"]
    assert leave, [h.file for h in result.hits]
    snip = leave[0]
    assert snip.highlights, snip
    a, b = snip.highlights[0]
    assert b - a > 5 and "年假" in snip.text[a:b]


def test_weak_match_marks_no_sentence(loaded: Runtime) -> None:
    result = search(loaded, query="sourdough bread baking temperature")
    assert result.weak_match
    assert all(s.highlights == [] for s in hit_snippets(loaded, result))


def test_search_page_shows_text_not_markdown(client: TestClient) -> None:
    page = dom(client.get("/", params={"q": "lamp timer wait seconds"}).text)
    hit = page.select_one('#results li.hit:has(.file:-soup-contains("lantern.md"))')
    assert hit is not None
    passage = hit.select_one(".passage-box.snippet .passage")
    assert passage is not None and passage.select("mark")
    text = passage.get_text()
    assert len(text) <= SNIPPET_CHARS and not any(m in text for m in MARKUP)
    toggle = hit.select_one(".passage-box a.toggle")
    assert toggle is not None and toggle["aria-expanded"] == "false"
    assert toggle["hx-get"].startswith("/passages/")
    for p in page.select("#results .passage"):
        assert not any(m in p.get_text() for m in MARKUP), p.get_text()


def test_expand_and_collapse(client: TestClient) -> None:
    page = dom(client.get("/", params={"q": "lamp timer wait seconds"}).text)
    hit = page.select_one('#results li.hit:has(.file:-soup-contains("lantern.md"))')
    assert hit is not None
    snippet_text = hit.select_one(".passage").get_text()
    url = hit.select_one("a.toggle")["hx-get"]
    full = dom(client.get(url, headers={"HX-Request": "true"}).text)
    box = full.select_one(".passage-box.full")
    assert box is not None
    text = box.select_one(".passage").get_text()
    assert "Use lantern sync to correct them by hand." in text
    assert "Wait SECS seconds [default 5] before the lamp is lit" in text
    assert not any(m in text for m in MARKUP)
    assert box.select(".passage mark")
    back = box.select_one("a.toggle")
    assert back["aria-expanded"] == "true" and back.get_text() == "Show less"
    short = dom(client.get(back["hx-get"], headers={"HX-Request": "true"}).text)
    assert short.select_one(".passage-box.snippet .passage").get_text() == snippet_text
    zh = dom(client.get(url, headers={"Accept-Language": "zh"}).text)
    assert zh.select_one("a.toggle").get_text() == "收起"


def test_expand_cross_lingual_and_weak(client: TestClient, loaded: Runtime) -> None:
    result = search(loaded, query="How many days of paid annual leave do employees get?")
    leave = next(h for h in result.hits if h.file == "leave.md")
    q = result.query
    marked = dom(client.get(f"/passages/{leave.chunk_id}", params={"q": q, "full": 1}).text)
    assert marked.select(".passage mark")
    weak = dom(
        client.get(f"/passages/{leave.chunk_id}", params={"q": q, "full": 1, "weak": 1}).text
    )
    assert weak.select(".passage") and not weak.select(".passage mark")


def test_expand_route_access(client: TestClient, loaded: Runtime) -> None:
    assert client.get("/passages/999999", params={"q": "x"}).status_code == 404
    assert client.get("/passages/0").status_code == 422
    with TestClient(create_app(runtime=loaded)) as anonymous:
        r = anonymous.get("/passages/1", params={"q": "lamp"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
