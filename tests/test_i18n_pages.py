"""Every page in Chinese: no English left in the interface.

Logged in as an admin with the zh language, the test renders every GET page the app
declares (walked from its routes, with the ids of real rows: a ready document, a failed
one, a chunk, a job), the htmx fragments, and the error paths a person can meet (a bad
login, a taken username, a weak password, rejected uploads, a failed document's reason,
a missing page), and fails on:

* a text node (or a label-like attribute) that is a catalog message id: a string the
  template forgot to pass through ``_()``, or a stored value shown raw;
* a text node with two or more English words, outside ``code``/``pre``/``script``,
  outside user content (passages, file names, titles, headings: the elements below, and
  anything marked ``lang="en"``), once the fixture's own names are taken out and the
  allow-listed words (product names, settings) are ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import soupsieve
from bs4 import BeautifulSoup, Tag
from bs4.element import NavigableString
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.auth.models import Role
from app.documents.models import Chunk, Document
from app.i18n_catalog import ZH
from app.jobs.models import Job
from app.main import create_app
from app.runtime import Runtime
from ingest.worker import Worker
from tests.routes import api_routes
from tests.samples import GUIDE_MD, LEAVE_MD
from tests.webclient import csrf, login, make_user, post_upload

# Routes that answer no interface page (files, JSON, redirects) or that need no language.
NOT_PAGES = ("/api/", "/v1/", "/docs", "/openapi", "/healthz", "/lang/", "/static")
NOT_PAGE_SUFFIXES = ("/original", ".jsonl", ".png")

# User content: what people wrote or named, shown as it is.
USER_CONTENT = ", ".join(
    [
        "code",
        "pre",
        "script",
        "style",
        "svg",
        "[lang]:not([lang^=zh])",
        ".passage",
        ".chunk-text",
        ".markdown",
        ".crumbs",
        ".file",
        "a.title",
        ".who",
        ".toc",
        "textarea",
        "option",  # collection names, tags (the translated options are checked as labels)
    ]
)
_USER = soupsieve.compile(USER_CONTENT)
# Words that stay English in the Chinese interface: names of products, formats, settings.
ALLOWED_WORDS = {
    "Markdown", "Word", "Excel", "PowerPoint", "Lines", "JSON", "README", "Written",
    "answers", "LLM", "pip", "install", "kb", "ocr", "ocrmypdf", "Ctrl",
}  # fmt: skip
# Attributes a person reads.
READ_ATTRIBUTES = ("placeholder", "title", "aria-label", "alt", "data-confirm")
# A word: letters, or an identifier such as a model's name (never an English word); a
# file extension (".pdf") is none.
WORD = re.compile(r"(?<![.\w])[A-Za-z0-9][\w'’./-]*")
CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_WORD = re.compile(r"[a-z]{2,}|[A-Z][a-z]+")
PASSWORD = "correct-horse-1"


@pytest.fixture
def backend() -> str:
    return "sqlite"


@dataclass
class World:
    client: TestClient
    ids: dict[str, str]
    user_text: list[str]  # names from the fixture (files, titles, headings, users)
    upload_results: str  # the upload page's answer to rejected files


@pytest.fixture
def world(rt: Runtime) -> Iterator[World]:
    make_user(rt, "root", Role.ADMIN)
    with TestClient(create_app(runtime=rt)) as client:
        login(client, "root")
        client.cookies.set("kb_lang", "zh")
        post_upload(
            client,
            ("guide.md", GUIDE_MD.encode()),
            ("leave.md", LEAVE_MD.encode()),
            ("broken.pdf", b"%PDF-1.7\n garbage"),
        )
        rejected = client.post(
            "/upload",
            data={"csrf_token": csrf(client, "/upload"), "collection": "default"},
            files=[("files", ("x.exe", b"zz")), ("files", ("empty.md", b""))],
        )
        assert rejected.status_code == 200, rejected.text
        Worker(rt).run_until_idle()
        with rt.sessions() as s:
            docs = {d.filename: d for d in s.scalars(select(Document))}
            ready, failed = docs["guide.md"], docs["broken.pdf"]
            assert (ready.status, failed.status) == ("ready", "failed")
            chunk = s.scalars(select(Chunk.id).where(Chunk.document_id == ready.id)).first()
            job = s.scalars(select(Job.id)).first()
            titles = [d.title for d in docs.values() if d.title]
            headings = [h for (h,) in s.execute(select(Chunk.heading_path)) for h in h or []]
        # A token, so the tokens page shows its table and the new token's copy button.
        client.post("/tokens", data={"csrf_token": csrf(client, "/tokens"), "name": "ci"})
        ids = {
            "document_id": str(ready.id),
            "failed_id": str(failed.id),
            "chunk_id": str(chunk),
            "job_id": str(job),
            "user_id": "1",
            "collection_id": "1",
            "token_id": "1",
            "session_id": "1",
        }
        queries = ["How do I restore a backup?", "zzqqxx vvkk", "restore", "backup"]
        # Names people gave, and the test client's address and browser (the sessions table).
        user_text = [*docs, *titles, *headings, *queries, "root", "default", "ci", "testclient"]
        yield World(client, ids, sorted(set(user_text), key=len, reverse=True), rejected.text)


def _in_user_content(node: Tag | NavigableString) -> bool:
    """Whether ``node`` is (inside) user content, or inside the page's <head> (its
    <title> aside, which is checked)."""
    parent = node if isinstance(node, Tag) else node.parent
    while isinstance(parent, Tag) and parent.name not in ("[document]", "html", "body"):
        if parent.name == "head":
            return not (isinstance(node, NavigableString) and node.parent.name == "title")
        if _USER.match(parent):
            return True
        parent = parent.parent
    return False


def english_in(html: str, user_text: list[str]) -> list[str]:
    """The English interface text on a page (see the module's docstring)."""
    page = BeautifulSoup(html, "html.parser")
    found: list[str] = []
    texts: list[str] = []
    for node in page.find_all(string=True):
        text = " ".join(node.split())
        if text and type(node) is NavigableString and not _in_user_content(node):
            texts.append(text)
    for tag in page.find_all(True):
        if _in_user_content(tag):
            continue
        for attr in READ_ATTRIBUTES:
            value = tag.get(attr)
            if isinstance(value, str) and value.strip():
                texts.append(" ".join(value.split()))
        for attr, value in tag.attrs.items():
            if attr.startswith("data-msg-") and isinstance(value, str):
                texts.append(value)
    for text in texts:
        if text in ZH and ZH[text] != text:
            found.append(text)  # a message id shown untranslated
            continue
        # A library's own detail inside a translated reason: "（Stream has ended…）".
        rest = re.sub(r"（[^（）]*）", " ", text)
        for name in user_text:
            rest = rest.replace(name, " ")
        words = [w for w in WORD.findall(rest) if w not in ALLOWED_WORDS]
        english = sum(1 for w in words if ENGLISH_WORD.fullmatch(w))
        # Two English words, or one with no Chinese beside it ("28 chunks", "ingest").
        if english >= 2 or (english and not CJK.search(rest)):
            found.append(text)
    return found


def get_pages(world: World) -> Iterator[tuple[str, str]]:
    """(url, html) of every GET page of the app, and of its fragments."""
    app = world.client.app
    routes = [r for r in api_routes(app.routes) if isinstance(r, APIRoute)]  # type: ignore[attr-defined]
    paths = sorted(
        r.path
        for r in routes
        if "GET" in r.methods
        and not r.path.startswith(NOT_PAGES)
        and not r.path.endswith(NOT_PAGE_SUFFIXES)
    )
    assert "/" in paths and "/admin/jobs" in paths
    ids = world.ids
    urls: list[str] = []
    for path in paths:
        url = re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "1"), path)
        urls.append(url)
        if path == "/documents/{document_id}":
            urls.append(f"/documents/{ids['failed_id']}")
    extra = [
        "/?q=How do I restore a backup?",
        "/?q=",  # an empty query: the message that asks for words
        "/?q=restore&doc_type=pdf",  # no results, filters on
        "/?q=zzqqxx vvkk",  # a weak match
        "/ask?q=How do I restore a backup?",
        "/ask?q=病假证明",
        f"/passages/{ids['chunk_id']}?q=backup&full=1",
        "/search/tags?collection=default",
        "/admin/insights?days=30",
        "/login",  # logged in: sends to /
    ]
    for url in urls + extra:
        r = world.client.get(url)
        assert r.status_code < 500, (url, r.status_code, r.text[:300])
        if r.headers.get("content-type", "").startswith("text/html"):
            yield url, r.text
    for url in ("/?q=backup", "/documents"):  # htmx fragments
        r = world.client.get(url, headers={"HX-Request": "true"})
        assert r.status_code == 200, url
        yield url + " (htmx)", r.text


def test_every_page_is_chinese(world: World) -> None:
    problems = {
        url: found for url, html in get_pages(world) if (found := english_in(html, world.user_text))
    }
    assert problems == {}, json.dumps(problems, ensure_ascii=False, indent=1)


def _error(html: str) -> str:
    found = BeautifulSoup(html, "html.parser").select_one(".error")
    assert found is not None, html
    return found.get_text(strip=True)


def test_error_paths_are_chinese(rt: Runtime, world: World) -> None:
    c = world.client
    pages: dict[str, str] = {"upload rejections": world.upload_results}
    token = csrf(c, "/admin/users")
    r = c.post("/admin/users", data={"csrf_token": token, "username": "root",
                                     "password": "another-Pa55word", "role": "reader"})  # fmt: skip
    assert r.status_code == 400
    assert _error(r.text) == "用户名 'root' 已被占用"
    pages["taken username"] = r.text
    r = c.post("/admin/users", data={"csrf_token": token, "username": "newbie",
                                     "password": "short", "role": "reader"})  # fmt: skip
    assert r.status_code == 400
    pages["weak password"] = r.text
    r = c.post("/admin/users", data={"csrf_token": token, "username": "bad name!",
                                     "password": "another-Pa55word", "role": "reader"})  # fmt: skip
    assert r.status_code == 400
    pages["bad username"] = r.text
    r = c.post("/admin/users/999999", data={"csrf_token": token, "role": "reader"})
    assert r.status_code == 404
    pages["no such user"] = r.text
    r = c.get("/documents/999999")
    assert r.status_code == 404
    pages["missing document"] = r.text
    r = c.get("/no/such/page")
    assert r.status_code == 404
    pages["missing page"] = r.text
    r = c.post("/admin/jobs/999999/retry", data={"csrf_token": token})
    assert r.status_code == 404
    pages["missing job"] = r.text
    pages["failed document"] = c.get(f"/documents/{world.ids['failed_id']}").text
    pages["documents"] = c.get("/documents").text
    with TestClient(c.app, cookies={"kb_lang": "zh"}) as anonymous:  # type: ignore[arg-type]
        r = anonymous.post("/login", data={"username": "root", "password": "wrong-one"})
        assert r.status_code == 401
        assert _error(r.text) == "用户名或密码错误。"
        pages["bad login"] = r.text
        pages["login"] = anonymous.get("/login").text
    problems = {
        k: found for k, html in pages.items() if (found := english_in(html, world.user_text))
    }
    assert problems == {}, json.dumps(problems, ensure_ascii=False, indent=1)


def test_jobs_page_messages_and_kinds_come_from_the_catalog(world: World) -> None:
    page = BeautifulSoup(world.client.get("/admin/jobs").text, "html.parser")
    rows = page.select("table.jobs tbody tr")
    assert rows
    text = " ".join(tr.get_text(" ") for tr in rows)
    assert "导入" in text and "个分块" in text
    assert "ingest" not in text and " chunks" not in text


def test_language_links_keep_their_order_on_every_page(world: World) -> None:
    for url, html in get_pages(world):
        links = BeautifulSoup(html, "html.parser").select("header .langs a")
        if not links:
            continue  # an htmx fragment
        assert [a.get_text() for a in links] == ["English", "中文"], url
        assert [a["lang"] for a in links] == ["en", "zh"], url
