"""Feedback: thumbs on search hits and Ask passages (htmx and plain forms, the API), the
query log every search fills, the admins' Insights page with its SVG charts, and the
export of rated and unanswered questions as graded queries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.auth import service as auth
from app.auth.models import Role
from app.collections.models import Collection
from app.db import transaction, utcnow
from app.documents.models import Chunk
from app.feedback.charts import Series, bar_chart
from app.feedback.insights import per_day, question_key, questions, since
from app.feedback.models import Feedback, FeedbackKind, QueryLog, Rating, Source
from app.feedback.querylog import QueryLogWriter
from app.feedback.service import QueryEntry, log_queries, record_feedback
from app.main import create_app
from app.runtime import Runtime
from tests.factories import settle, store_upload, token_for
from tests.samples import GUIDE_MD, LEAVE_MD
from tests.webclient import dom, login, make_user

OFF_TOPIC = "sourdough bread baking temperature"


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def loaded(rt: Runtime) -> Runtime:
    store_upload(rt, "guide.md", GUIDE_MD.encode())
    store_upload(rt, "leave.md", LEAVE_MD.encode())
    settle(rt)
    return rt


@pytest.fixture
def app(loaded: Runtime) -> FastAPI:
    return create_app(runtime=loaded)


@pytest.fixture
def reader(loaded: Runtime, app: FastAPI) -> Iterator[TestClient]:
    make_user(loaded, "rita", Role.READER)
    with TestClient(app) as c:
        login(c, "rita")
        yield c


def _flush(client: TestClient) -> None:
    writer = client.app.state.query_log  # type: ignore[attr-defined]
    writer.flush()


def _rows(rt: Runtime) -> list[Feedback]:
    with rt.sessions() as s:
        return list(s.scalars(select(Feedback).order_by(Feedback.id)))


def _model(rt: Runtime) -> str:
    with rt.sessions() as s:
        return s.scalars(select(Collection.model)).one()


# --- the thumbs on the pages ----------------------------------------------------------------


def test_thumbs_on_search_hits_with_htmx_and_without(loaded: Runtime, reader: TestClient) -> None:
    page = dom(reader.get("/", params={"q": "how long are backups kept"}).text)
    hits = page.select("#results li.hit")
    assert hits
    forms = [h.select_one("form.thumbs") for h in hits]
    assert all(f is not None and f["action"] == "/feedback" for f in forms)
    shown = [int(h["data-chunk-id"]) for h in hits]
    first = forms[0]
    assert first is not None
    fields = {i["name"]: i.get("value", "") for i in first.select("input[type=hidden]")}
    assert fields["q"] == "how long are backups kept"
    assert fields["chunk_ids"] == ",".join(map(str, shown))
    assert fields["chunk_id"] == str(shown[0]) and fields["source"] == "search"
    assert {b["value"] for b in first.select("button[name=rating]")} == {"up", "down"}
    assert first["hx-post"] == "/feedback"

    # htmx: the form is swapped for the thanks.
    token = fields["csrf_token"]
    r = reader.post(
        "/feedback",
        data={**fields, "rating": "up"},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert r.status_code == 200
    thanks = dom(r.text).select_one(".thumbs.thanks")
    assert thanks is not None and thanks.get_text(strip=True) == "Thanks for your feedback."

    # Without JavaScript: a plain form POST goes back to the page, which shows the thanks.
    second = forms[1]
    assert second is not None
    fields2 = {i["name"]: i.get("value", "") for i in second.select("input[type=hidden]")}
    r = reader.post("/feedback", data={**fields2, "rating": "down"}, follow_redirects=False)
    assert r.status_code == 303
    back = r.headers["location"]
    assert back.startswith("/?") and f"rated={shown[1]}" in back
    again = dom(reader.get(back).text)
    rated = again.select_one(f'li.hit[data-chunk-id="{shown[1]}"]')
    assert rated is not None and rated.select_one(".thumbs.thanks") is not None
    assert rated.select_one("form.thumbs") is None

    up, down = _rows(loaded)
    assert (up.rating, down.rating) == (Rating.UP, Rating.DOWN)
    assert up.kind == FeedbackKind.HIT and up.source == Source.SEARCH
    assert up.chunk_ids == shown and up.chunk_id == shown[0] and up.rank == 1
    assert down.chunk_id == shown[1] and down.rank == 2
    assert up.query == "how long are backups kept" and up.collection == "default"
    assert up.model == _model(loaded) and up.file is not None and up.heading
    assert up.weak_match is False and up.user_id is not None and up.created_at is not None


def test_thumbs_need_the_csrf_token_and_a_real_passage(reader: TestClient) -> None:
    page = dom(reader.get("/", params={"q": "backups"}).text)
    form = page.select_one("#results form.thumbs")
    assert form is not None
    fields = {i["name"]: i.get("value", "") for i in form.select("input[type=hidden]")}
    no_token = {k: v for k, v in fields.items() if k != "csrf_token"}
    assert reader.post("/feedback", data={**no_token, "rating": "up"}).status_code == 403
    r = reader.post("/feedback", data={**fields, "rating": "up", "chunk_id": "999999"})
    assert r.status_code == 404
    r = reader.post("/feedback", data={**fields, "rating": "sideways"})
    assert r.status_code == 422
    r = reader.post(
        "/feedback",
        data={**fields, "rating": "up", "next": "https://evil.example/x"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/?rated=")


def test_thumbs_on_each_ask_passage(loaded: Runtime, reader: TestClient) -> None:
    page = dom(reader.get("/ask", params={"q": "how many days of annual leave?"}).text)
    answers = page.select("#answers li.answer")
    assert answers
    for li in answers:
        form = li.select_one("form.thumbs")
        assert form is not None
        assert form.select_one("input[name=source]")["value"] == "ask"  # type: ignore[index]
    form = answers[0].select_one("form.thumbs")
    assert form is not None
    fields = {i["name"]: i.get("value", "") for i in form.select("input[type=hidden]")}
    r = reader.post(
        "/feedback",
        data={**fields, "rating": "up"},
        headers={"HX-Request": "true", "X-CSRF-Token": fields["csrf_token"]},
    )
    assert r.status_code == 200 and "Thanks" in r.text
    (row,) = _rows(loaded)
    assert row.source == Source.ASK and row.chunk_id == int(answers[0]["data-chunk-id"])  # type: ignore[arg-type]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_thumbs_speak_the_page_language(reader: TestClient, lang: str) -> None:
    reader.cookies.set("kb_lang", lang)
    form = dom(reader.get("/", params={"q": "backups"}).text).select_one("form.thumbs")
    assert form is not None
    up = form.select_one("button[value=up]")
    assert up is not None
    assert up["aria-label"] == ("Helpful" if lang == "en" else "有帮助")


# --- the API and the service ----------------------------------------------------------------


def test_api_rates_hits_and_answers_with_a_token(loaded: Runtime, app: FastAPI) -> None:
    token = token_for(loaded, "bot", Role.READER)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        found = c.get("/api/v1/search", params={"q": "backups"}).json()
        ids = [h["chunk_id"] for h in found["results"]]
        r = c.post(
            "/api/v1/feedback",
            json={"q": "backups", "rating": "up", "chunk_ids": ids, "chunk_id": ids[1]},
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["kind"] == "hit" and body["rank"] == 2 and body["collection"] == "default"
        assert body["model"] == _model(loaded)
        r = c.post(
            "/api/v1/feedback",
            json={
                "kind": "answer",
                "q": "backups",
                "rating": "down",
                "chunk_ids": ids[:3],
                "model": "Qwen3-8B",
                "comment": "cites the wrong section",
            },
        )
        assert r.status_code == 201 and r.json()["model"] == "Qwen3-8B"
        assert r.json()["chunk_id"] is None
        # A hit needs the rated passage; it must exist in that collection.
        assert c.post("/api/v1/feedback", json={"q": "x", "rating": "up"}).status_code == 422
        r = c.post("/api/v1/feedback", json={"q": "x", "rating": "up", "chunk_id": 10**9})
        assert r.status_code == 404
        r = c.post("/api/v1/feedback", json={"q": "x", "rating": "up", "collection": "nope"})
        assert r.status_code == 404
        assert c.post("/api/v1/feedback", json={"q": "", "rating": "up"}).status_code == 422
    rows = _rows(loaded)
    assert [r.source for r in rows] == [Source.API, Source.API]
    assert rows[1].comment == "cites the wrong section"


def test_record_feedback_for_a_written_answer(loaded: Runtime) -> None:
    """The call the answer stage makes for its thumbs."""
    with transaction(loaded.sessions) as s:
        user = auth.create_user(s, username="ann", password="ann-Pa55word", role=Role.READER)
        row = record_feedback(
            s,
            user=user,
            kind="answer",
            query="  How long   are backups kept? ",
            collection="default",
            chunk_ids=[3, 1, 3],
            rating="up",
            model="qwen3-30b-a3b",
            weak_match=False,
            source="ask",
        )
        assert row.id and row.query == "How long are backups kept?"
        assert row.chunk_ids == [3, 1] and row.model == "qwen3-30b-a3b" and row.rank is None


# --- the query log --------------------------------------------------------------------------


def test_every_search_and_ask_is_logged(loaded: Runtime, app: FastAPI) -> None:
    make_user(loaded, "lee", Role.READER)
    token = token_for(loaded, "api-user", Role.READER)
    with TestClient(app) as c:
        login(c, "lee")
        assert c.get("/", params={"q": "backups"}).status_code == 200
        assert c.get("/", params={"q": OFF_TOPIC}).status_code == 200
        assert c.get("/ask", params={"q": "年假有几天"}).status_code == 200
        assert c.get("/").status_code == 200  # the bare form: no question, nothing logged
        headers = {"Authorization": f"Bearer {token}"}
        assert c.get("/api/v1/search", params={"q": "install on windows"}, headers=headers)
        assert c.get("/api/v1/ask", params={"q": "restore a backup"}, headers=headers)
    # Closing the app wrote what was left.
    with loaded.sessions() as s:
        rows = list(s.scalars(select(QueryLog).order_by(QueryLog.id)))
        lee = auth.by_username(s, "lee")
        api_user = auth.by_username(s, "api-user")
        assert lee is not None and api_user is not None
        got = [(r.source, r.query, r.user_id) for r in rows]
        assert got == [
            (Source.SEARCH, "backups", lee.id),
            (Source.SEARCH, OFF_TOPIC, lee.id),
            (Source.ASK, "年假有几天", lee.id),
            (Source.API, "install on windows", api_user.id),
            (Source.API, "restore a backup", api_user.id),
        ]
        assert [r.weak_match for r in rows[:2]] == [False, True]
        assert all(r.hits > 0 and r.collection == "default" for r in rows)


class _Broken:
    """A session factory whose database is away."""

    calls = 0

    def __call__(self) -> Session:
        self.calls += 1
        raise OperationalError("INSERT", {}, Exception("database is locked"))


def test_a_failed_log_write_never_fails_a_search(loaded: Runtime, reader: TestClient) -> None:
    broken = _Broken()
    real = reader.app.state.query_log  # type: ignore[attr-defined]
    writer = QueryLogWriter(broken, interval_s=3600)  # type: ignore[arg-type]
    reader.app.state.query_log = writer  # type: ignore[attr-defined]
    try:
        assert reader.get("/", params={"q": "backups"}).status_code == 200
        writer.flush()  # fails, keeps the question for the next try
        assert broken.calls == 1
        writer._sessions = loaded.sessions
        writer.flush()
    finally:
        reader.app.state.query_log = real  # type: ignore[attr-defined]
        writer.close()
    with loaded.sessions() as s:
        assert s.scalars(select(QueryLog.query)).all() == ["backups"]


# --- the Insights page and the export --------------------------------------------------------


def _seed(rt: Runtime) -> None:
    """Questions over the last days: one weak and rated down, one rated up, one plain."""
    now = utcnow()
    with transaction(rt.sessions) as s:
        user = auth.create_user(s, username="seed", password="seed-Pa55word", role=Role.READER)
        entries = [
            QueryEntry(OFF_TOPIC, "default", True, 5, Source.SEARCH, user.id, now),
            QueryEntry(OFF_TOPIC.upper(), "default", True, 5, Source.ASK, user.id, now),
            QueryEntry("backups", "default", False, 5, Source.SEARCH, user.id, now),
            QueryEntry("backups", "default", False, 5, Source.API, None, now - timedelta(days=2)),
            QueryEntry("install", "default", False, 5, Source.SEARCH, user.id, now),
            QueryEntry("install", "default", False, 5, Source.SEARCH, user.id, now),
            QueryEntry("install", "default", False, 5, Source.SEARCH, user.id, now),
            QueryEntry("old question", "default", True, 0, Source.SEARCH, None, now - timedelta(days=90)),
        ]  # fmt: skip
        log_queries(s, entries)
        backup = s.scalars(select(Chunk).where(Chunk.text.contains("thirty days"))).first()
        assert backup is not None
        record_feedback(
            s,
            user=user,
            kind="hit",
            query="backups",
            collection="default",
            chunk_ids=[backup.id],
            chunk_id=backup.id,
            rating="up",
        )
        record_feedback(
            s,
            user=user,
            kind="hit",
            query=OFF_TOPIC,
            collection="default",
            chunk_ids=[backup.id],
            chunk_id=backup.id,
            rating="down",
            weak_match=True,
        )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_insights_counts_per_question_and_per_day(loaded: Runtime) -> None:
    _seed(loaded)
    with loaded.sessions() as s:
        found = questions(s, start=since(30))
        days = per_day(s, days=30)
    assert [question_key(q.query) for q in found] == [OFF_TOPIC, "install", "backups"]
    weak, install, backups = found
    assert (weak.asked, weak.weak, weak.up, weak.down) == (2, 2, 0, 1) and weak.needs_answer
    assert (install.asked, install.weak, backups.asked, backups.up) == (3, 0, 2, 1)
    assert not backups.needs_answer and backups.liked[0].file == "guide.md"
    assert len(days) == 30 and days[-1].day == utcnow().date()
    assert (days[-1].questions, days[-1].weak, days[-1].up, days[-1].down) == (6, 2, 1, 1)
    assert days[-3].questions == 1 and days[-3].weak_rate == 0
    assert sum(d.questions for d in days) == 7  # the one of 90 days ago is out


@pytest.mark.parametrize(
    ("lang", "title", "missing"),
    [("en", "Insights", "Needs an answer"), ("zh", "洞察", "需要补充答案")],
)
def test_insights_page_for_admins_in_both_languages(
    loaded: Runtime, admin: TestClient, lang: str, title: str, missing: str
) -> None:
    _seed(loaded)
    admin.cookies.set("kb_lang", lang)
    r = admin.get("/admin/insights")
    assert r.status_code == 200
    page = dom(r.text)
    assert page.select_one("h1").get_text() == title  # type: ignore[union-attr]
    nav = page.select_one("nav.subnav a[href='/admin/insights']")
    assert nav is not None and nav.get("aria-current") == "page"
    rows = page.select("table.insights tbody tr")
    asked = [question_key(r.select_one("td a").get_text()) for r in rows]  # type: ignore[union-attr]
    assert asked == [OFF_TOPIC, "install", "backups"]
    first = rows[0]
    assert "needs-answer" in first["class"] and missing in first.get_text()
    assert first.select_one("td.asked").get_text() == "2"  # type: ignore[union-attr]
    assert first.select_one("td.weak").get_text() == "2"  # type: ignore[union-attr]
    assert first.select_one("td.down").get_text() == "1"  # type: ignore[union-attr]
    assert page.select_one("#total-questions").get_text() == "7"  # type: ignore[union-attr]
    # The charts: inline SVG, one bar per day with questions, both rating series.
    charts = page.select("section.charts svg")
    assert len(charts) == 3
    for svg in charts:
        assert svg["role"] == "img" and svg["xmlns"] == "http://www.w3.org/2000/svg"
        assert svg.select_one("title").get_text()  # type: ignore[union-attr]
    questions_svg, weak_svg, ratings_svg = charts
    assert len(questions_svg.select("rect.bar.asked")) == 2
    assert len(weak_svg.select("rect.bar.weak")) == 1  # the other day's rate is 0 %
    assert weak_svg.select_one("rect.bar.weak title").get_text().endswith(": 33%")  # type: ignore[union-attr]
    assert len(ratings_svg.select("rect.bar.up")) == 1
    assert len(ratings_svg.select("rect.bar.down")) == 1
    assert "<script" not in r.text.split("<main>", 1)[1]
    # An export link for the same window.
    assert page.select_one("a[href='/admin/insights/export.jsonl?days=30']") is not None


def test_insights_and_export_are_for_admins_only(loaded: Runtime, reader: TestClient) -> None:
    assert reader.get("/admin/insights").status_code == 403
    assert reader.get("/admin/insights/export.jsonl").status_code == 403
    page = dom(reader.get("/").text)
    assert page.select_one("a[href='/admin/insights']") is None


def test_export_is_graded_queries(loaded: Runtime, admin: TestClient) -> None:
    _seed(loaded)
    r = admin.get("/admin/insights/export.jsonl")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in r.headers["content-disposition"]
    lines = [json.loads(line) for line in r.text.splitlines()]
    by_query = {question_key(line["query"]): line for line in lines}
    assert set(by_query) == {OFF_TOPIC, "backups"}  # only rated or weakly matched ones
    for line in lines:
        assert {"id", "query", "lang", "relevant", "kind", "note"} <= set(line)
        assert line["lang"] in ("en", "zh") and line["id"].startswith("fb-")
    liked = by_query["backups"]
    assert liked["relevant"] == [
        {"file": "guide.md", "heading_or_text": "4 Backups", "doc_lang": "en"}
    ]
    assert liked["kind"] == "monolingual" and liked["cross_lingual"] is False
    assert liked["up"] == 1 and liked["asked"] == 2
    missing = by_query[OFF_TOPIC]
    assert missing["relevant"] == [] and missing["kind"] is None
    assert "weak match in 2 of 2 searches" in missing["note"]
    assert "fill in" in missing["note"]
    # The window: a question from 90 days ago is left out by default, in with days=365.
    assert "old question" not in r.text
    assert "old question" in admin.get("/admin/insights/export.jsonl?days=365").text
    assert admin.get("/admin/insights/export.jsonl?days=0").status_code == 422


def test_bar_chart_geometry() -> None:
    from datetime import date

    days = [date(2026, 12, 1) + timedelta(days=i) for i in range(3)]
    chart = bar_chart(days, [Series("up", [0, 2, 4]), Series("down", [1, None, 0])])
    assert len(chart.bars) == 3  # None and 0: no bar
    tallest = max(chart.bars, key=lambda b: b.height)
    assert tallest.y == chart.top and tallest.title == "2026-12-03: 4"
    assert all(b.y + b.height == pytest.approx(chart.baseline) for b in chart.bars)
    assert [lbl.text for lbl in chart.labels][-3:] == ["12-01", "12-02", "12-03"]
    rate = bar_chart(days, [Series("weak", [0.5, None, 1.0])], percent=True)
    assert [b.title for b in rate.bars] == ["2026-12-01: 50%", "2026-12-03: 100%"]
