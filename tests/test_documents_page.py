"""The documents page: search by name, filters, sort, pages, bulk actions, empty states,
progress with an estimate, and the retry that cannot help (issue 16)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.auth.models import Role
from app.db import transaction, utcnow
from app.documents import service
from app.documents.models import Document, DocumentStatus, DocumentTag
from app.jobs.models import Job
from app.main import create_app
from app.runtime import Runtime
from tests.factories import store_upload, token_for
from tests.webclient import csrf, dom, login, make_user


@pytest.fixture
def backend() -> str:
    return "sqlite"


def doc(name: str, body: str = "") -> bytes:
    return f"# {name}\n\n{body or name} text.\n".encode()


def set_fields(rt: Runtime, doc_id: int, **values: object) -> None:
    with transaction(rt.sessions) as s:
        d = s.get_one(Document, doc_id)
        for k, v in values.items():
            setattr(d, k, v)


def names(html: str) -> list[str]:
    return [tr.select_one("td.name .meta").get_text().split(" · ")[0] for tr in rows(html)]


def rows(html: str) -> list:
    return dom(html).select("#doc-rows tr")


@pytest.fixture
def library(rt: Runtime) -> dict[str, int]:
    ids = {
        "alpha.md": store_upload(rt, "alpha.md", doc("Alpha")),
        "beta_report.md": store_upload(rt, "beta_report.md", doc("Beta", "b" * 5000)),
        "gamma.md": store_upload(rt, "gamma.md", doc("Gamma"), collection=None),
        "100%.md": store_upload(rt, "100%.md", doc("Percent")),
    }
    set_fields(rt, ids["alpha.md"], status="ready", language="en", chunk_count=3, page_count=9)
    set_fields(rt, ids["beta_report.md"], status="ready", language="zh", chunk_count=7)
    set_fields(rt, ids["gamma.md"], status="failed", error="The PDF is damaged (x).")
    with transaction(rt.sessions) as s:
        s.add(DocumentTag(document_id=ids["alpha.md"], tag="Handbook", position=0))
    return ids


def test_search_filter_sort(admin: TestClient, library: dict[str, int]) -> None:
    assert names(admin.get("/documents", params={"q": "BETA"}).text) == ["beta_report.md"]
    # LIKE wildcards are literal: "%" and "_" match themselves only.
    assert names(admin.get("/documents", params={"q": "%"}).text) == ["100%.md"]
    assert names(admin.get("/documents", params={"q": "a_r"}).text) == ["beta_report.md"]
    assert names(admin.get("/documents", params={"status": "failed"}).text) == ["gamma.md"]
    assert names(admin.get("/documents", params={"language": "zh"}).text) == ["beta_report.md"]
    assert names(admin.get("/documents", params={"tag": "handbook"}).text) == ["alpha.md"]
    assert names(admin.get("/documents", params={"type": "markdown", "q": "alp"}).text) == [
        "alpha.md"
    ]
    assert names(admin.get("/documents", params={"collection": "default", "q": "gam"}).text) == [
        "gamma.md"
    ]
    assert rows(admin.get("/documents", params={"collection": "nope"}).text) == []
    by_size = names(admin.get("/documents", params={"sort": "size", "order": "desc"}).text)
    assert by_size[0] == "beta_report.md"
    by_chunks = names(admin.get("/documents", params={"sort": "chunks", "order": "asc"}).text)
    assert by_chunks[-1] == "beta_report.md"
    by_name = names(admin.get("/documents", params={"sort": "name", "order": "asc"}).text)
    assert by_name == ["100%.md", "alpha.md", "beta_report.md", "gamma.md"]
    page = dom(admin.get("/documents", params={"sort": "pages"}).text)
    assert page.select_one("th[aria-sort=descending]") is not None
    # Columns: collection, language, tags.
    alpha = dom(admin.get("/documents", params={"q": "alpha"}).text).select_one("#doc-rows tr")
    assert alpha.select_one("td[data-label=Collection]").get_text() == "default"
    assert alpha.select_one("td[data-label=Language]").get_text() == "English"
    assert alpha.select_one("td.tags a").get_text() == "Handbook"


def test_hostile_values_fall_back(admin: TestClient, library: dict[str, int]) -> None:
    for params in [
        {"sort": "id; drop table documents"},
        {"order": "sideways"},
        {"page": "-3"},
        {"page": "abc"},
        {"page": "9" * 40},
        {"status": "exploded"},
        {"q": "\x00" + "x" * 5000},
        {"tag": "é中文🙂"},
        {"language": "<script>"},
    ]:
        r = admin.get("/documents", params=params)
        assert r.status_code == 200, params
        assert "<script>" not in r.text.split("<main", 1)[1].split("</main>")[0].replace(
            "&lt;script&gt;", ""
        )


def test_pages_and_last_page(rt: Runtime, admin: TestClient) -> None:
    for i in range(service.PAGE_SIZE + 5):
        store_upload(rt, f"n{i:03}.md", doc(f"N{i}"))
    first = dom(admin.get("/documents", params={"sort": "name", "order": "asc"}).text)
    assert len(first.select("#doc-rows tr")) == service.PAGE_SIZE
    pager = first.select_one("nav.pager")
    assert pager.select_one("[aria-current=page]").get_text() == "1"
    nxt = pager.select_one("a[rel=next]")["href"]
    assert "page=2" in nxt and "sort=name" in nxt
    second = admin.get(nxt).text
    assert len(rows(second)) == 5
    far = admin.get("/documents", params={"page": "999"})
    assert far.status_code == 200
    assert len(rows(far.text)) == 5  # the last page
    assert dom(far.text).select_one(".page-clamped") is not None
    # htmx asks for the results only; polling asks for the rows only.
    part = dom(admin.get(nxt, headers={"HX-Request": "true"}).text)
    assert part.select_one("main") is None and part.select_one("#doc-results") is not None
    only_rows = admin.get(nxt, headers={"HX-Request": "true", "HX-Target": "doc-rows"}).text
    assert only_rows.lstrip().startswith("<tbody")
    # The filter's own query travels with the polling URL.
    assert dom(second).select_one("#doc-rows")["hx-get"].startswith("/documents?")


def test_page_links() -> None:
    from app.documents.pages import page_links

    assert page_links(1, 1) == [1]
    assert page_links(5, 10) == [1, None, 3, 4, 5, 6, 7, None, 10]
    assert page_links(1, 4) == [1, 2, 3, 4]


def test_empty_states(rt: Runtime, admin: TestClient) -> None:
    page = dom(admin.get("/documents").text)
    assert page.select_one(".docs-empty a[href='/upload']") is not None
    zh = dom(admin.get("/documents", headers={"Accept-Language": "zh-CN"}).text)
    assert "还没有文档" in zh.select_one(".docs-empty").get_text()
    make_user(rt, "reader1", Role.READER)
    with TestClient(create_app(runtime=rt)) as reader:
        login(reader, "reader1")
        empty = dom(reader.get("/documents").text).select_one(".docs-empty")
        assert "Ask an administrator to add documents." in empty.get_text()
        assert empty.select_one("a[href='/upload']") is None
        zh = dom(reader.get("/documents", headers={"Accept-Language": "zh"}).text)
        assert "请联系管理员添加文档" in zh.select_one(".docs-empty").get_text()
    store_upload(rt, "one.md", doc("One"))
    none = dom(admin.get("/documents", params={"q": "zzz"}).text)
    assert none.select_one(".docs-no-match a.clear-filters")["href"] == "/documents"


def test_progress_percent_and_eta(rt: Runtime, admin: TestClient) -> None:
    doc_id = store_upload(rt, "slow.md", doc("Slow"))
    with transaction(rt.sessions) as s:
        d = s.get_one(Document, doc_id)
        d.status = DocumentStatus.EMBEDDING
        s.flush()
        d.updated_at = utcnow() - timedelta(seconds=60)
        job = s.scalars(select(Job).where(Job.document_id == doc_id)).one()
        job.progress = 0.55  # 0.45 done in 60 s since 0.1: 0.45 left takes about 60 s more
    html = admin.get("/documents").text
    row = dom(html).select_one(f"#doc-{doc_id}")
    assert row.select_one(".percent").get_text() == "55%"
    assert row.select_one(".eta").get_text() in ("about 1 min left", "about 60 s left")
    assert dom(html).select_one("#doc-rows")["hx-trigger"] == "every 1s"
    zh = dom(admin.get("/documents", headers={"Accept-Language": "zh"}).text)
    assert "剩余约" in zh.select_one(f"#doc-{doc_id} .eta").get_text()
    with transaction(rt.sessions) as s:
        s.get_one(Document, doc_id).status = DocumentStatus.PARSING
    row = dom(admin.get("/documents").text).select_one(f"#doc-{doc_id}")
    assert row.select_one(".eta").get_text() == "—"  # unknown while parsing


def test_eta_seconds() -> None:
    assert service.eta_seconds(None, stage_start=0.1, elapsed_s=10) is None
    assert service.eta_seconds(0.1, stage_start=0.1, elapsed_s=10) is None
    assert service.eta_seconds(0.5, stage_start=0.1, elapsed_s=1) is None
    assert service.eta_seconds(0.55, stage_start=0.1, elapsed_s=90) == pytest.approx(90)


def test_failed_for_good_says_upload_again(rt: Runtime, admin: TestClient) -> None:
    bad = store_upload(rt, "cut.pdf", b"%PDF-1.7\n cut")
    away = store_upload(rt, "away.md", doc("Away"))
    long_reason = "The PDF is incomplete: it stops before its end marker. " + "x" * 3000
    set_fields(rt, bad, status="failed", error=long_reason)
    set_fields(rt, away, status="failed", error="retrying: the embedding service is down")
    page = dom(admin.get("/documents").text)
    hint = page.select_one(f"#doc-{bad} .retry-hint")
    assert "Upload the complete file again" in hint.get_text()
    assert page.select_one(f"#doc-{bad} details.reason summary")["title"].startswith("The PDF")
    assert page.select_one(f"#doc-{away} .retry-hint") is None
    zh = dom(admin.get("/documents", headers={"Accept-Language": "zh"}).text)
    assert "重新上传完整的文件" in zh.select_one(f"#doc-{bad} .retry-hint").get_text()


def test_bulk_delete_and_reingest(rt: Runtime, admin: TestClient) -> None:
    a = store_upload(rt, "a.md", doc("A"))
    b = store_upload(rt, "b.md", doc("B"))
    c = store_upload(rt, "c.md", doc("C"))
    set_fields(rt, a, status="ready")
    set_fields(rt, b, status="failed", error="x")
    token = csrf(admin, "/documents")
    # Without the CSRF field: refused.
    assert admin.post("/documents/bulk", data={"action": "delete", "ids": [a]}).status_code == 403
    r = admin.post(
        "/documents/bulk",
        data={"csrf_token": token, "action": "reingest", "ids": [a, b, c, 999], "back": "q=x"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"].startswith("/documents?q=x&done=reingest&n=2&skipped=2")
    page = dom(admin.get(r.headers["location"]).text)
    assert "Documents queued to be indexed again: 2." in page.select_one(".bulk-result").get_text()
    with rt.sessions() as s:
        assert s.get_one(Document, a).status == "queued"
    r = admin.post("/documents/bulk", data={"csrf_token": token, "action": "delete", "ids": [a, b]})
    assert "Documents deleted: 2." in dom(r.text).select_one(".bulk-result").get_text()
    assert [int(tr["id"][4:]) for tr in rows(r.text)] == [c]
    assert (rt.settings.files_dir).exists()
    assert (
        admin.post(
            "/documents/bulk", data={"csrf_token": token, "action": "explode", "ids": [c]}
        ).status_code
        == 400
    )


def test_editor_bulk_deletes_only_their_own(rt: Runtime, admin: TestClient) -> None:
    theirs = store_upload(rt, "theirs.md", doc("Theirs"))
    make_user(rt, "ed", Role.EDITOR)
    with TestClient(create_app(runtime=rt)) as ed:
        login(ed, "ed")
        mine = ed.post(
            "/upload",
            data={"csrf_token": csrf(ed, "/upload")},
            files=[("files", ("mine.md", doc("Mine")))],
        )
        assert "result-accepted" in mine.text
        page = dom(ed.get("/documents").text)
        assert page.select_one("#bulk-form") is not None
        ids = [int(i["value"]) for i in page.select("input[name=ids]")]
        r = ed.post(
            "/documents/bulk",
            data={"csrf_token": csrf(ed, "/documents"), "action": "delete", "ids": ids},
        )
        assert "Documents deleted: 1." in r.text and "Skipped: 1 " in r.text
    with rt.sessions() as s:
        assert s.get(Document, theirs) is not None
    make_user(rt, "rd", Role.READER)
    with TestClient(create_app(runtime=rt)) as rd:
        login(rd, "rd")
        page = dom(rd.get("/documents").text)
        assert page.select_one("#bulk-form") is None and page.select("input[name=ids]") == []


def test_bulk_api(rt: Runtime) -> None:
    a = store_upload(rt, "a.md", doc("A"))
    set_fields(rt, a, status="ready")
    with TestClient(create_app(runtime=rt)) as api:
        api.headers["Authorization"] = f"Bearer {token_for(rt, 'bot', Role.ADMIN)}"
        r = api.post("/api/v1/documents/bulk", json={"action": "reingest", "ids": [a, 77]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["done"] == [a]
        assert body["skipped"] == [{"id": 77, "reason": "no such document"}]
        r = api.post("/api/v1/documents/bulk", json={"action": "delete", "ids": [a]})
        assert r.json()["done"] == [a]
        bad = api.post("/api/v1/documents/bulk", json={"action": "x", "ids": []})
        assert bad.status_code == 422


def test_listing_restricted_to_collections(rt: Runtime, library: dict[str, int]) -> None:
    with rt.sessions() as s:
        everything = service.find_documents(s, service.DocumentFilter())
        assert everything.total == 4
        nothing = service.find_documents(s, service.DocumentFilter(), collection_ids=frozenset())
        assert nothing.total == 0 and nothing.documents == []
        facets = service.document_facets(s, collection_ids=[])
        assert not facets.any_documents and facets.tags == []
        assert service.documents_by_ids(s, library.values(), collection_ids=()) == []
