"""Hybrid search end to end on real SQLite and PostgreSQL: identifiers typed verbatim are
found, cross-lingual search still works, modes, and the rerank stage (over real HTTP to a
loopback server) reorders results or degrades to the first-stage order with a notice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.auth.models import Role
from app.main import create_app
from app.rerank import make_reranker
from app.runtime import Runtime
from app.search.service import SearchError, search
from app.settings import Settings
from ingest.worker import Worker
from tests.factories import store_upload
from tests.rerankserver import RERANK_MODEL, RerankFault, RerankServer
from tests.samples import GUIDE_MD, LEAVE_MD
from tests.webclient import dom, login, make_user

TROUBLE_MD = """\
# Troubleshooting Orbit Notes

## Error codes

If the server stops with E1234, the database file is locked by another process.
Stop the other process and start the server again.

E2048 means the disk is full. Free some space before the nightly backup runs.

## Python environment

When the installer keeps old wheels around, run `pip cache purge` and install again.

## Typesetting the Chinese manual

The manual is written in LaTeX. Load Chinese support with \\usepackage{ctex} in the
preamble and compile with XeLaTeX.

## Configuration

Point the notes server at the embedding service with KB_EMBEDDING_URL.
"""


@pytest.fixture
def corpus(rt: Runtime) -> Runtime:
    for name, text in (
        ("guide.md", GUIDE_MD),
        ("leave.md", LEAVE_MD),
        ("trouble.md", TROUBLE_MD),
    ):
        store_upload(rt, name, text.encode())
    assert {o.status for o in Worker(rt).run_until_idle()} == {"ready"}
    return rt


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("E1234", "E1234"),
        ("E2048", "E2048"),
        ("pip cache purge", "pip cache purge"),
        ("\\usepackage{ctex}", "\\usepackage{ctex}"),
        ("KB_EMBEDDING_URL", "KB_EMBEDDING_URL"),
    ],
)
def test_identifiers_typed_verbatim_come_first(corpus: Runtime, query: str, needle: str) -> None:
    first = search(corpus, query=query, k=5).hits[0]
    assert needle in first.text


def test_hybrid_keeps_cross_lingual_answers(corpus: Runtime) -> None:
    # An English question whose answer is only in Chinese: the lexical leg matches
    # English words elsewhere, and must not push the Chinese answer off the top.
    result = search(corpus, query="How much salary is paid during sick leave?", k=3)
    assert result.mode == "hybrid"
    assert "病假" in result.hits[0].text


def test_modes(corpus: Runtime) -> None:
    lexical = search(corpus, query="病假 证明", k=3, mode="lexical")
    assert lexical.mode == "lexical" and "病假" in lexical.hits[0].text
    assert "embed_ms" not in lexical.timings  # the lexical mode needs no embedder
    dense = search(corpus, query="sick leave certificate", k=3, mode="dense")
    assert "lexical_ms" not in dense.timings and dense.hits
    with pytest.raises(SearchError, match="unknown mode"):
        search(corpus, query="x", mode="bm25")


@pytest.fixture
def rerank_server() -> Iterator[RerankServer]:
    with RerankServer() as server:
        yield server


def with_reranker(rt: Runtime, server: RerankServer, timeout: float = 2.0) -> Runtime:
    settings = Settings(
        data_dir=rt.settings.data_dir,
        rerank_url=server.url,
        rerank_model=RERANK_MODEL,
        rerank_timeout_seconds=timeout,
    )
    rt.reranker = make_reranker(settings)
    return rt


def test_rerank_reorders_the_candidates(corpus: Runtime, rerank_server: RerankServer) -> None:
    rt = with_reranker(corpus, rerank_server)
    query = "free disk space nightly backup"
    result = search(rt, query=query, k=3)
    assert result.reranked and result.notice is None
    (request,) = rerank_server.rerank_requests()
    assert request.query == query and len(request.documents) > 3
    # The server's own best (word overlap) comes first.
    assert "E2048" in result.hits[0].text
    assert "rerank_ms" in result.timings


@pytest.mark.parametrize(
    "fault", [RerankFault.error(503), RerankFault.drop(), RerankFault.slow(3.0)]
)
def test_rerank_failure_returns_first_stage_order_with_a_notice(
    corpus: Runtime, rerank_server: RerankServer, fault: RerankFault
) -> None:
    plain = search(corpus, query="backups", k=5, rerank=False)
    rt = with_reranker(corpus, rerank_server, timeout=1.0)
    rerank_server.inject(fault)
    result = search(rt, query="backups", k=5)
    assert not result.reranked
    assert result.notice is not None and "first-stage order" in result.notice
    assert [h.chunk_id for h in result.hits] == [h.chunk_id for h in plain.hits]


def test_pages_and_api_say_when_reranking_failed(
    corpus: Runtime, rerank_server: RerankServer
) -> None:
    rt = with_reranker(corpus, rerank_server, timeout=1.0)
    make_user(rt, "reader", Role.READER)
    with TestClient(create_app(runtime=rt)) as client:
        login(client, "reader")
        rerank_server.inject(RerankFault.error(500))
        page = dom(client.get("/", params={"q": "backups"}).text)
        assert page.select_one(".degraded") is not None
        assert page.select("#results li.hit")
        rerank_server.inject(RerankFault.error(500))
        body = client.get("/api/v1/search", params={"q": "backups"}).json()
        assert body["reranked"] is False and "first-stage" in body["notice"]
        body = client.get("/api/v1/search", params={"q": "backups"}).json()
        assert body["reranked"] is True and body["notice"] is None
        assert client.get("/api/v1/search", params={"q": "x", "mode": "bm25"}).status_code == 422


SHARED_FAQ = """\
## How do I reset my password?

Open the sign-in page, choose "Forgot password" and follow the link that arrives by
e-mail within five minutes.
"""


def test_copies_of_a_passage_are_folded_into_one_result(rt: Runtime) -> None:
    for i, name in enumerate(("handbook.md", "onboarding.md")):
        store_upload(rt, name, f"# Handbook edition {i}\n\n{SHARED_FAQ}".encode())
    store_upload(rt, "guide.md", GUIDE_MD.encode())
    Worker(rt).run_until_idle()
    hits = search(rt, query="reset my password", k=4).hits
    texts = [" ".join(h.text.split()) for h in hits]
    assert len(texts) == len(set(texts)) == 4  # no copy twice, and still k results
    (copy,) = hits[0].duplicates
    assert {hits[0].file, copy[1]} == {"handbook.md", "onboarding.md"}
    make_user(rt, "reader", Role.READER)
    with TestClient(create_app(runtime=rt)) as client:
        login(client, "reader")
        body = client.get("/api/v1/search", params={"q": "reset my password", "k": 4}).json()
        assert body["results"][0]["duplicates"][0]["file"] == copy[1]
        page = dom(client.get("/", params={"q": "reset my password"}).text)
        assert copy[1] in page.select_one("#results li.hit .also").get_text()


def test_ask_api_returns_answering_sentences_as_offsets(corpus: Runtime) -> None:
    make_user(corpus, "reader", Role.READER)
    with TestClient(create_app(runtime=corpus)) as client:
        login(client, "reader")
        r = client.get("/api/v1/ask", params={"q": "How much salary is paid during sick leave?"})
        assert r.status_code == 200, r.text
        first = r.json()["answers"][0]
        assert "病假" in first["text"]
        (best, *_) = sorted(first["sentences"], key=lambda s: -s["score"])
        assert first["text"][best["start"] : best["end"]] == best["text"]
        assert "百分之八十" in best["text"]
        assert client.get("/api/v1/ask", params={"q": "x", "kind": "bogus"}).status_code == 422
