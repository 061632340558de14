"""Search filters (collection, document, type, language, tags, chunk kind) on SQLite and
PostgreSQL: they apply inside the vector search, so a filtered search still returns k
results when k passages match, however many closer ones do not."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.auth.models import Role
from app.db import transaction
from app.documents import service as documents
from app.documents.models import Chunk, Document
from app.main import create_app
from app.runtime import Runtime
from app.search.service import (
    SearchError,
    SearchFilters,
    allowed_chunks,
    facet_filter,
    search,
)
from ingest.worker import Worker
from tests.factories import store_upload, token_for
from tests.samples import GUIDE_MD, LEAVE_MD
from tests.webclient import csrf, dom

# Front-matter tags, in mixed case.
GUIDE_TAGGED = "---\ntitle: Orbit Notes Guide\ntags: [Orbit, Handbook]\n---\n" + GUIDE_MD

# Many sections about backups: closer to a backup question than anything else.
BACKUP_MD = """\
# Backup Operations Manual

## Nightly backups

The backup job copies every database at two o'clock each night.

## Backup retention

Backups are kept for thirty days and then deleted automatically.

## Restoring a backup

To restore a backup, stop the service and run the restore command with the date.

## Backup storage

Backup files are stored on the separate storage server in the basement.

## Backup monitoring

If a backup fails, the operations team gets an e-mail the next morning.

## Testing backups

Every month one backup is restored on a test machine to check that it works.
"""

FAQ_MD = """\
---
tags: orbit, support
---
# FAQ

## How do I change my password?

Open Settings, choose Account and type the new password twice.

## Can I use Orbit Notes offline?

Yes. Notes are kept on your laptop and synchronised when the network returns.

## Why is the search slow?

The first search after a restart loads the index; later ones are fast.

## How do I export my notes?

Choose File, then Export, and pick Markdown or PDF.
"""

EXAM_MD = """\
# 期末考试

一、选择题

1. 备份任务在每天几点运行？
A. 零点
B. 一点
C. 两点
D. 三点
答案：C

2. 备份文件保留多少天？
A. 七天
B. 十四天
C. 三十天
D. 九十天
答案：C

3. 恢复备份之前应该先做什么？
A. 重启电脑
B. 停止服务
C. 删除数据库
D. 发送邮件
答案：B
"""


@pytest.fixture
def docs(rt: Runtime) -> dict[str, int]:
    """Five documents ingested; the leave policy uploaded with tags "HR" and "休假"."""
    ids = {
        "guide": store_upload(rt, "guide.md", GUIDE_TAGGED.encode()),
        "backup": store_upload(rt, "backup.md", BACKUP_MD.encode()),
        "faq": store_upload(rt, "faq.md", FAQ_MD.encode()),
        "exam": store_upload(rt, "exam.md", EXAM_MD.encode()),
    }
    staged = documents.stage_upload(
        io.BytesIO(LEAVE_MD.encode()),
        filename="leave.md",
        files_dir=rt.settings.files_dir,
        max_bytes=1 << 24,
    )
    with transaction(rt.sessions) as s:
        added = documents.add_document(
            s,
            collection=rt.collection(s),
            staged=staged,
            files_dir=rt.settings.files_dir,
            tags=documents.parse_tags(" HR ，休假;hr"),
        )
        ids["leave"] = added.document.id
    outcomes = Worker(rt).run_until_idle()
    assert {o.status for o in outcomes} == {"ready"}
    return ids


def kinds_of(rt: Runtime, doc_id: int) -> set[str]:
    with rt.sessions() as s:
        return set(s.scalars(select(Chunk.kind).where(Chunk.document_id == doc_id)))


def test_documents_have_the_kinds_and_tags_the_filters_need(
    rt: Runtime, docs: dict[str, int]
) -> None:
    assert kinds_of(rt, docs["faq"]) == {"faq"}
    assert "question" in kinds_of(rt, docs["exam"])
    assert kinds_of(rt, docs["backup"]) == {"section"}
    with rt.sessions() as s:
        tags = {name: s.get_one(Document, i).tags for name, i in docs.items()}
    assert tags["guide"] == ["Orbit", "Handbook"]
    assert tags["faq"] == ["orbit", "support"]
    assert tags["leave"] == ["HR", "休假"]  # from the upload, kept by the ingest


def test_kind_filter_returns_k_matching_results_despite_closer_sections(
    rt: Runtime, docs: dict[str, int]
) -> None:
    q = "When does the nightly backup run and how long are backups kept?"
    unfiltered = search(rt, query=q, k=3).hits
    # Sections are closer: a filter applied after the top 3 would leave one hit at most.
    assert sum(h.kind == "section" for h in unfiltered) >= 2

    for kind, doc in (("faq", "faq"), ("question", "exam")):
        hits = search(rt, query=q, k=3, filters=SearchFilters(kind=kind)).hits
        assert len(hits) == 3, kind
        assert {h.kind for h in hits} == {kind}
        assert {h.document_id for h in hits} == {docs[doc]}
        assert all(h.question for h in hits)

    # Fewer match than asked for: all of them, and nothing else.
    hits = search(rt, query=q, k=10, filters=SearchFilters(kind="question")).hits
    assert len(hits) == 3 and {h.kind for h in hits} == {"question"}


def test_tag_filter_is_any_of_case_insensitive_and_inside_top_k(
    rt: Runtime, docs: dict[str, int]
) -> None:
    q = "backup restore"
    hits = search(rt, query=q, k=3, filters=SearchFilters(tags=("  ORBIT ",))).hits
    assert len(hits) == 3
    assert {h.document_id for h in hits} <= {docs["guide"], docs["faq"]}

    hits = search(rt, query=q, k=3, filters=SearchFilters(tags=("hr",))).hits
    assert {h.document_id for h in hits} == {docs["leave"]}
    assert len(hits) == 2  # the leave policy has two passages

    hits = search(rt, query=q, k=50, filters=SearchFilters(tags=("handbook", "休假"))).hits
    assert {h.document_id for h in hits} == {docs["guide"], docs["leave"]}

    assert search(rt, query=q, k=3, filters=SearchFilters(tags=("nope",))).hits == []

    # Tags and kind together: all conditions at once.
    both = SearchFilters(tags=("Orbit",), kind="faq")
    hits = search(rt, query=q, k=10, filters=both).hits
    assert len(hits) == 4 and {h.document_id for h in hits} == {docs["faq"]}


def test_allowed_chunks_is_a_select_of_chunk_ids(rt: Runtime, docs: dict[str, int]) -> None:
    with rt.sessions() as s:
        col = rt.collection(s)
        ids = set(s.scalars(allowed_chunks(col.id, SearchFilters(kind="question"))))
        expected = set(s.scalars(select(Chunk.id).where(Chunk.kind == "question")))
        assert ids == expected and len(ids) == 3
        sub = allowed_chunks(col.id, SearchFilters(tags=("HR",), document_id=docs["leave"]))
        in_sql = s.scalars(select(Chunk.document_id).where(Chunk.id.in_(sub))).all()
        assert set(in_sql) == {docs["leave"]}


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(SearchError, match="unknown kind"):
        SearchFilters(kind="chapter")
    assert not SearchFilters(tags=(" ", "")).active()
    assert SearchFilters(tags=("a", "A ", " a")).tags == ("a",)


# --- API and pages --------------------------------------------------------------------


def test_api_filters_by_tag_kind_and_document(
    rt: Runtime, docs: dict[str, int], admin: TestClient
) -> None:
    q = "How long are backups kept?"
    r = admin.get("/api/v1/search", params={"q": q, "k": 3, "kind": "faq"})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 3 and {h["kind"] for h in results} == {"faq"}
    assert all(h["question"] for h in results)

    r = admin.get("/api/v1/search", params=[("q", q), ("k", 20), ("tag", "hr"), ("tag", "SUPPORT")])
    assert {h["document_id"] for h in r.json()["results"]} == {docs["leave"], docs["faq"]}

    r = admin.get("/api/v1/search", params={"q": q, "k": 3, "document_id": docs["guide"]})
    assert {h["document_id"] for h in r.json()["results"]} == {docs["guide"]}

    r = admin.get("/api/v1/search", params={"q": q, "kind": "chapter"})
    assert r.status_code == 422 and "unknown kind" in r.text


@pytest.fixture
def api(rt: Runtime) -> Iterator[TestClient]:
    """An API client holding an editor's Bearer token."""
    token = token_for(rt, "editor1", Role.EDITOR)
    with TestClient(create_app(runtime=rt), headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def test_api_upload_with_tags_and_duplicate_keeps_them(rt: Runtime, api: TestClient) -> None:
    r = api.post(
        "/api/v1/documents",
        files=[("files", ("leave.md", LEAVE_MD.encode()))],
        data={"tags": "HR，Policy、 policy ;  leave  days"},
    )
    assert r.status_code == 201, r.text
    doc_id = r.json()["items"][0]["document_id"]
    assert api.get(f"/api/v1/documents/{doc_id}").json()["tags"] == [
        "HR",
        "Policy",
        "leave days",
    ]
    again = api.post(
        "/api/v1/documents",
        files=[("files", ("copy.md", LEAVE_MD.encode()))],
        data={"tags": "other"},
    )
    assert again.json()["items"][0]["result"] == "duplicate"
    Worker(rt).run_until_idle()
    assert api.get(f"/api/v1/documents/{doc_id}").json()["tags"] == [
        "HR",
        "Policy",
        "leave days",
    ]
    r = api.get("/api/v1/search", params={"q": "sick leave", "tag": "LEAVE DAYS"})
    assert {h["document_id"] for h in r.json()["results"]} == {doc_id}


def test_upload_page_takes_tags(rt: Runtime, admin: TestClient) -> None:
    page = dom(admin.get("/upload").text)
    assert page.select_one("form#upload-form input[name=tags]") is not None
    r = admin.post(
        "/upload",
        data={"csrf_token": csrf(admin, "/upload"), "collection": "default", "tags": "onboarding"},
        files=[("files", ("guide.md", GUIDE_MD.encode()))],
    )
    assert r.status_code == 200, r.text
    with rt.sessions() as s:
        (d,) = s.scalars(select(Document)).all()
        assert d.tags == ["onboarding"]


def test_search_page_has_kind_and_tag_controls_that_keep_their_values(
    rt: Runtime, docs: dict[str, int], admin: TestClient
) -> None:
    params = [("q", "How do I back up my notes?"), ("kind", "faq"), ("tag", "ORBIT")]
    page = dom(admin.get("/", params=params).text)
    kind = page.select_one("form[role=search] select[name=kind]")
    assert [o["value"] for o in kind.select("option")] == ["", "section", "faq", "question"]
    assert kind.select_one("option[selected]")["value"] == "faq"
    tags = page.select_one("form[role=search] select[name=tag]")
    assert tags.has_attr("multiple")
    options = [o["value"] for o in tags.select("option")]
    assert {"Orbit", "Handbook", "support", "HR", "休假"} <= set(options)
    assert len([o for o in options if o.lower() == "orbit"]) == 1
    assert [o["value"] for o in tags.select("option[selected]")] == ["Orbit"]
    hits = page.select("#results li.hit")
    assert hits and {int(li["data-document-id"]) for li in hits} == {docs["faq"]}
    assert all(li.select_one(".kind-faq") for li in hits)

    # The htmx fragment carries the same results.
    r = admin.get("/", params=params, headers={"HX-Request": "true"})
    assert len(dom(r.text).select("li.hit")) == len(hits)

    # An unknown kind on the page counts as "any"; the Chinese interface translates.
    page = dom(admin.get("/", params={"q": "backup", "kind": "bogus"}).text)
    assert page.select("select[name=kind] option[selected]") == []
    zh = admin.get("/", params={"q": "backup"}, headers={"Accept-Language": "zh-CN"})
    assert "段落类型" in zh.text


def test_ask_page_takes_kind_and_tags(rt: Runtime, docs: dict[str, int], admin: TestClient) -> None:
    page = dom(admin.get("/ask", params={"q": "备份保留多少天？", "kind": "question"}).text)
    answers = page.select("#answers li.answer")
    assert answers and all(li.select_one(".kind-question") for li in answers)
    assert page.select_one("select[name=kind] option[selected]")["value"] == "question"
    page = dom(admin.get("/ask", params={"q": "sick leave", "tag": "hr"}).text)
    with rt.sessions() as s:
        leave_chunks = set(s.scalars(select(Chunk.id).where(Chunk.document_id == docs["leave"])))
    got = {int(li["data-chunk-id"]) for li in page.select("#answers li.answer")}
    assert got and got <= leave_chunks


def _facet_ids(rt: Runtime, f: SearchFilters) -> list[int]:
    with rt.sessions() as s:
        col = rt.collection(s)
        index = rt.indexes.get(s, col)
        return sorted(index.allowed_ids(s, facet_filter(f)).tolist())


def _sql_ids(rt: Runtime, f: SearchFilters) -> list[int]:
    with rt.sessions() as s:
        return sorted(s.scalars(allowed_chunks(rt.collection(s).id, f)))


def test_facet_arrays_select_exactly_what_the_sql_filter_selects(
    rt: Runtime, docs: dict[str, int]
) -> None:
    """The dense leg filters from arrays kept beside the index (app/vectors/facets.py);
    every filter, alone and combined, selects the same chunks as the SQL form, also after
    a document is deleted and another ingested (the arrays follow the change log)."""
    combos = [
        SearchFilters(kind="faq"),
        SearchFilters(kind="question"),
        SearchFilters(kind="section", language="en"),
        SearchFilters(language="zh"),
        SearchFilters(doc_type="markdown"),
        SearchFilters(doc_type="pdf"),
        SearchFilters(tags=("ORBIT",)),
        SearchFilters(tags=("hr", "support")),
        SearchFilters(tags=("休假",), language="zh"),
        SearchFilters(tags=("no-such-tag",)),
        SearchFilters(document_id=docs["exam"]),
        SearchFilters(document_id=docs["exam"], kind="question"),
    ]

    def compare() -> None:
        for f in combos:
            assert _facet_ids(rt, f) == _sql_ids(rt, f), f

    compare()
    with transaction(rt.sessions) as s:
        documents.delete_document(s, s.get_one(Document, docs["faq"]))
    store_upload(rt, "more.md", GUIDE_MD.replace("Orbit", "Nebula").encode())
    assert {o.status for o in Worker(rt).run_until_idle()} == {"ready"}
    compare()
