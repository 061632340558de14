"""The search page's rough edges (issue 16): filters that apply as they change, results
as you type, the empty query, the score only for admins, the tag list following the
collection, empty states, the header, the filters' toggle and the tokens page."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from app.auth.models import Role
from app.main import create_app
from app.runtime import Runtime
from ingest.worker import Worker
from tests.samples import GUIDE_MD, LEAVE_MD
from tests.webclient import csrf, dom, login, make_user, post_upload

GUIDE_TAGGED = "---\ntitle: Orbit Notes Guide\ntags: [Orbit, Handbook]\n---\n" + GUIDE_MD
HOSTILE = [
    "",
    "\x00",
    "%00",
    "é中文🙂",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "../../etc/passwd",
    "x" * 5000,
    "9" * 40,
]


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def app_rt(rt: Runtime) -> Iterator[TestClient]:
    """An app with users of every role (not logged in)."""
    for role in Role:
        make_user(rt, f"u-{role}", role)
    with TestClient(create_app(runtime=rt)) as c:
        yield c


def as_user(client: TestClient, role: Role, lang: str = "en") -> TestClient:
    client.cookies.clear()
    login(client, f"u-{role}")
    client.cookies.set("kb_lang", lang)
    return client


@pytest.fixture
def filled(rt: Runtime, app_rt: TestClient) -> TestClient:
    """Two ingested documents in the default collection (one tagged), and a second
    collection "hr" with a document tagged differently; logged in as the admin."""
    c = as_user(app_rt, Role.ADMIN)
    with rt.sessions() as s:
        embedder = rt.collection(s).embedder
    r = c.post(
        "/admin/collections",
        data={"csrf_token": csrf(c, "/admin/collections"), "name": "hr", "embedder": embedder},
    )
    assert r.status_code in (200, 303), r.text
    post_upload(c, ("guide.md", GUIDE_TAGGED.encode()), ("leave.md", LEAVE_MD.encode()))
    r = c.post(
        "/upload",
        data={"csrf_token": csrf(c, "/upload"), "collection": "hr", "tags": "Payroll"},
        files=[("files", ("pay.md", b"# Pay\n\nSalaries are paid on the 25th.\n"))],
    )
    assert r.status_code == 200, r.text
    Worker(rt).run_until_idle()
    return c


# --- the form ------------------------------------------------------------------------


def test_the_form_applies_filters_on_change_and_searches_as_you_type(filled: TestClient) -> None:
    page = dom(filled.get("/", params={"q": "backup"}).text)
    form = page.select_one("form#search-form")
    # Plain submit still works: a GET form to /.
    assert (form["method"], form["action"]) == ("get", "/")
    assert form["hx-get"] == "/" and form["hx-push-url"] == "true"
    trigger = form["hx-trigger"]
    assert "submit" in trigger and "change[" in trigger and "kb-tags" in trigger
    assert form["hx-sync"] == "this:replace"
    q = form.select_one("input[name=q]")
    assert "delay:400ms" in q["hx-trigger"] and "length>=2" in q["hx-trigger"]
    assert q["hx-sync"] == "closest form:replace" and q["hx-include"] == "closest form"
    # The collection select swaps in its tags first.
    select = form.select_one("select[name=collection]")
    assert select["hx-get"] == "/search/tags" and select["hx-target"] == "#tag-filter"
    # The filters sit behind a "Filters" toggle (a <details>, no JavaScript needed).
    box = form.select_one("details#filter-box")
    assert box.select_one("summary").get_text(strip=True) == "Filters"
    assert box.select_one("select[name=doc_type]") and box.select_one("select[name=language]")


def test_an_empty_query_asks_for_words(filled: TestClient) -> None:
    page = dom(filled.get("/", params={"q": "   "}).text)
    assert page.select_one("#results .empty-query").get_text(strip=True) == (
        "Type a question or some words to search for."
    )
    assert page.select("#results li.hit") == []
    # Opening the page (no q at all) shows no message.
    assert dom(filled.get("/").text).select_one(".empty-query") is None
    # The htmx fragment says it too, and in Chinese.
    filled.cookies.set("kb_lang", "zh")
    r = filled.get("/", params={"q": ""}, headers={"HX-Request": "true"})
    assert (
        dom(r.text).select_one(".empty-query").get_text(strip=True)
        == "请输入问题或一些关键词再搜索。"
    )


def test_the_score_is_for_admins_only(rt: Runtime, filled: TestClient) -> None:
    params = {"q": "How do I restore a backup?"}
    admin = dom(filled.get("/", params=params).text)
    hits = admin.select("#results li.hit")
    assert hits and all(h.select_one(".score") for h in hits)
    for role in (Role.READER, Role.EDITOR):
        page = dom(as_user(filled, role).get("/", params=params).text)
        hits = page.select("#results li.hit")
        assert hits, role
        assert [h.select_one(".score") for h in hits] == [None] * len(hits), role
        assert "score" not in page.select_one("#results").get_text()
    # The API keeps it.
    api = as_user(filled, Role.READER).get("/api/v1/search", params=params)
    assert api.status_code == 200 and "score" in api.json()["results"][0]


# --- the tag list follows the collection ---------------------------------------------------


def test_the_tag_fragment_follows_the_collection(filled: TestClient) -> None:
    page = dom(filled.get("/", params={"collection": "default"}).text)
    assert [o["value"] for o in page.select("#tag-filter option")] == ["Handbook", "Orbit"]

    r = filled.get("/search/tags", params={"collection": "hr"}, headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert r.headers["HX-Trigger-After-Settle"] == "kb-tags"
    fragment = dom(r.text)
    assert fragment.select_one("main") is None and fragment.select_one("header") is None
    box = fragment.select_one("span#tag-filter")
    assert [o["value"] for o in box.select("select[name=tag] option")] == ["Payroll"]

    # Tags chosen in the other collection are dropped; those this one has stay chosen.
    r = filled.get("/search/tags", params=[("collection", "default"), ("tag", "orbit"),
                                           ("tag", "Payroll")])  # fmt: skip
    box = dom(r.text).select_one("#tag-filter")
    assert [o["value"] for o in box.select("option[selected]")] == ["Orbit"]

    # A collection without tags (or none of that name): an empty placeholder to swap.
    for name in ("nope", ""):
        box = dom(filled.get("/search/tags", params={"collection": name}).text)
        found = box.select_one("#tag-filter")
        assert found is not None, name
    assert (
        dom(filled.get("/search/tags", params={"collection": "nope"}).text).select("option") == []
    )


def test_the_tag_fragment_takes_hostile_values(filled: TestClient) -> None:
    for value in HOSTILE:
        for params in ({"collection": value}, {"collection": "default", "tag": value}):
            r = filled.get("/search/tags", params=params)
            assert r.status_code < 500, (value, r.status_code)
            assert "<script>alert(1)" not in r.text
    assert filled.get("/search/tags", params=[("tag", str(i)) for i in range(200)]).status_code in (
        200,
        422,
    )


def test_the_tag_fragment_needs_a_login(app_rt: TestClient) -> None:
    app_rt.cookies.clear()
    r = app_rt.get("/search/tags", params={"collection": "default"}, follow_redirects=False)
    assert r.status_code in (303, 401)


# --- empty states --------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_an_empty_knowledge_base_says_what_to_do_next(app_rt: TestClient, lang: str) -> None:
    texts = {
        "en": ("There are no documents here yet.", "Ask an administrator to add documents."),
        "zh": ("这里还没有文档。", "请联系管理员添加文档。"),
    }[lang]
    for role in Role:
        page = dom(as_user(app_rt, role, lang).get("/", params={"q": "backup"}).text)
        state = page.select_one("#results .empty-kb")
        assert state is not None, role
        assert state.select_one("h2").get_text(strip=True) == texts[0]
        upload = state.select_one("a[href='/upload']")
        if role == Role.READER:
            assert upload is None and texts[1] in state.get_text()
        else:
            assert upload is not None and texts[1] not in state.get_text()
        assert page.select("#results li.hit") == [] and page.select_one(".empty-query") is None


def test_no_results_say_why_and_offer_to_clear_the_filters(filled: TestClient) -> None:
    params = {"q": "How do I restore a backup?", "doc_type": "pdf", "language": "zh"}
    page = dom(filled.get("/", params=params).text)
    assert page.select("#results li.hit") == []
    state = page.select_one("#results .no-results")
    assert "with the chosen filters" in state.get_text()
    assert "across Chinese and English" in state.get_text()
    clear = state.select_one("a.clear-filters")
    query = parse_qs(urlsplit(clear["href"]).query)
    assert query == {"q": ["How do I restore a backup?"], "collection": [""]} or query == {
        "q": ["How do I restore a backup?"]
    }
    assert page.select_one("#filter-box summary .count").get_text() == "2"
    # Following the link finds the passage again.
    again = dom(filled.get(clear["href"]).text)
    assert again.select("#results li.hit")

    # A tag no document has, in Chinese: the same, translated.
    filled.cookies.set("kb_lang", "zh")
    page = dom(filled.get("/", params={"q": "backup", "tag": "nothing-has-this"}).text)
    state = page.select_one("#results .no-results")
    assert "在所选的筛选条件下" in state.get_text()
    assert state.select_one("a.clear-filters").get_text() == "清除筛选条件"


# --- the header and the tokens page -----------------------------------------------------


def test_the_header_has_a_menu_button_and_fixed_language_order(filled: TestClient) -> None:
    for lang in ("en", "zh"):
        filled.cookies.set("kb_lang", lang)
        for path in ("/", "/ask", "/tokens", "/admin/users", "/no/such/page"):
            header = dom(filled.get(path).text).select_one("header.top")
            links = header.select(".langs a")
            assert [a["lang"] for a in links] == ["en", "zh"], (lang, path)
            if path == "/no/such/page":
                continue  # an unmatched path knows no user: no menu
            toggle = header.select_one("button.menu-toggle")
            assert toggle["aria-controls"] == "main-nav" and header.select_one("nav#main-nav")
    # The language links come back to the same search.
    filled.cookies.set("kb_lang", "en")
    link = dom(filled.get("/", params={"q": "backup"}).text).select_one(".langs a[lang=zh]")
    r = filled.get(link["href"], follow_redirects=False)
    assert r.headers["location"] == "/?q=backup"


def test_a_new_token_has_a_copy_button_and_the_prefix_column_a_header(
    filled: TestClient,
) -> None:
    r = filled.post("/tokens", data={"csrf_token": csrf(filled, "/tokens"), "name": "ci"})
    page = dom(r.text)
    token = page.select_one("code#new-token").get_text()
    assert token.startswith("kb_")
    button = page.select_one("button.copy[data-copy='#new-token']")
    assert button is not None and button.get_text() == "Copy"
    headers = [th.get_text() for th in page.select("table.tokens thead th")]
    assert headers[:3] == ["Name", "Username", "Prefix"]
    filled.cookies.set("kb_lang", "zh")
    page = dom(filled.get("/tokens").text)
    assert "前缀" in [th.get_text() for th in page.select("table.tokens thead th")]


def test_the_jobs_page_labels_kinds_and_messages(filled: TestClient) -> None:
    filled.cookies.set("kb_lang", "zh")
    rows = dom(filled.get("/admin/jobs").text).select("table.jobs tbody tr")
    assert rows
    assert all("导入" in tr.get_text() for tr in rows)
    assert any("个分块" in tr.get_text() for tr in rows)
