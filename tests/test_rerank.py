"""The rerank client against a real HTTP server on loopback (tests/rerankserver).

Timeouts are tiny so that every failure path runs in well under a second.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.rerank import (
    RerankConfig,
    Reranker,
    RerankError,
    RerankResult,
    make_reranker,
    rerank_order,
)
from app.rerank.client import parse_results
from app.settings import Settings
from tests.rerankserver import RERANK_MODEL, RerankFault, RerankServer, relevance

TIMEOUT_S = 0.5

QUERY = "how many days of annual leave after one year"
DOCS = [
    "The service listens on port 7020.",  # 0: nothing in common
    "Backups run every night at two o'clock.",  # 1: nothing
    "After one year employees get ten days of annual leave.",  # 2: the answer
    "Annual reports are due in March.",  # 3: one word
    "Sick leave over three days needs a doctor's note.",  # 4: two words
]


def expected_order(query: str, docs: list[str]) -> list[int]:
    return sorted(range(len(docs)), key=lambda i: (-relevance(query, docs[i]), i))


@pytest.fixture
def server() -> Iterator[RerankServer]:
    with RerankServer() as s:
        yield s


@pytest.fixture
def made() -> Iterator[list[Reranker]]:
    out: list[Reranker] = []
    yield out
    for r in out:
        r.close()


@pytest.fixture
def make(server: RerankServer, made: list[Reranker]) -> Any:
    def _make(**overrides: Any) -> Reranker:
        fields: dict[str, Any] = {
            "base_url": server.url,
            "model": server.model,
            "timeout_s": TIMEOUT_S,
        }
        fields.update(overrides)
        reranker = Reranker(RerankConfig(**fields))
        made.append(reranker)
        return reranker

    return _make


# -- reranking ---------------------------------------------------------------------------


def test_reorders_by_the_servers_scores(server: RerankServer, make: Any) -> None:
    reranker = make()
    results = reranker.rerank(QUERY, DOCS)
    assert [r.index for r in results] == expected_order(QUERY, DOCS)
    assert results[0].index == 2
    assert results[0].relevance_score == pytest.approx(relevance(QUERY, DOCS[2]))
    scores = [r.relevance_score for r in results]
    assert scores == sorted(scores, reverse=True)
    (req,) = server.rerank_requests()
    assert (req.model, req.query, req.documents, req.top_n) == (RERANK_MODEL, QUERY, DOCS, 5)
    assert req.authorization is None


def test_chinese_query_reorders_by_bigram_overlap(make: Any) -> None:
    docs = [
        "服务监听7020端口。",
        "病假超过三天需要提供医院证明。",
        "员工入职满一年后享有十天带薪年假。",
    ]
    order, error = rerank_order(make(), "入职一年有多少天年假", docs)
    assert error is None
    assert order[0] == 2 and order == expected_order("入职一年有多少天年假", docs)


def test_top_n_returns_only_the_best(server: RerankServer, make: Any) -> None:
    results = make().rerank(QUERY, DOCS, top_n=2)
    assert [r.index for r in results] == expected_order(QUERY, DOCS)[:2]
    assert server.rerank_requests()[0].top_n == 2
    # top_n past the documents is clamped; below 1 is a caller's bug
    assert len(make().rerank(QUERY, DOCS, top_n=50)) == len(DOCS)
    assert server.rerank_requests()[-1].top_n == len(DOCS)
    with pytest.raises(ValueError):
        make().rerank(QUERY, DOCS, top_n=0)


def test_documents_the_server_left_out_follow_in_first_stage_order(
    server: RerankServer, make: Any
) -> None:
    server.max_results = 2  # like a server that caps top_n
    results = make().rerank(QUERY, DOCS)
    assert len(results) == 2
    order, error = rerank_order(make(), QUERY, DOCS)
    best = expected_order(QUERY, DOCS)[:2]
    assert error is None
    assert order == best + [i for i in range(len(DOCS)) if i not in best]


def test_no_documents_no_request(server: RerankServer, make: Any) -> None:
    assert make().rerank(QUERY, []) == []
    assert rerank_order(make(), QUERY, ["only one"]) == ([0], None)
    assert server.rerank_requests() == []


def test_api_key_is_sent_as_bearer_token(made: list[Reranker]) -> None:
    with RerankServer(api_key="sekrit-key") as server:
        good = Reranker(RerankConfig(server.url, server.model, api_key="sekrit-key"))
        made.append(good)
        assert len(good.rerank(QUERY, DOCS)) == len(DOCS)
        assert server.rerank_requests()[0].authorization == "Bearer sekrit-key"

        bad = Reranker(RerankConfig(server.url, server.model, api_key="wrong"))
        made.append(bad)
        with pytest.raises(RerankError) as info:
            bad.rerank(QUERY, DOCS)
        assert info.value.kind == "http" and info.value.status == 401
        assert "401" in str(info.value) and "Incorrect API key" in str(info.value)
        assert "KB_RERANK_API_KEY" in str(info.value)
        assert "sekrit" not in str(info.value) and "wrong" not in str(info.value)


def test_check_finds_the_model(server: RerankServer, make: Any) -> None:
    make().check()
    with pytest.raises(RerankError, match="does not serve model 'other/model'") as info:
        make(model="other/model").check()
    assert info.value.kind == "config"


# -- faults: RerankError, and rerank_order keeps the first-stage order ---------------------

FAULTS = [
    pytest.param(
        RerankFault.error(500, "CUDA out of memory"),
        "http",
        r"answered 500: CUDA out of memory",
        id="500-openai-body",
    ),
    pytest.param(
        RerankFault.error(503, "The server is overloaded", style="vllm"),
        "http",
        r"answered 503: The server is overloaded",
        id="503-vllm-body",
    ),
    pytest.param(
        RerankFault.error(422, "documents: field required", style="detail"),
        "http",
        r"answered 422: documents: field required",
        id="422-detail-body",
    ),
    pytest.param(RerankFault.drop(), "connection", r"connection .* failed", id="drop"),
    pytest.param(RerankFault.malformed(), "malformed", r"not JSON", id="malformed-json"),
    pytest.param(RerankFault.bad_index(), "malformed", r"index 8 for 5 documents", id="index"),
    pytest.param(RerankFault.duplicate(), "malformed", r"index \d twice", id="duplicate"),
    pytest.param(RerankFault.bad_score(), "malformed", r"score 'high'", id="score"),
    pytest.param(
        RerankFault.slow(5.0), "timeout", rf"did not answer within {TIMEOUT_S:g} s", id="slow"
    ),
]


@pytest.mark.parametrize(("fault", "kind", "message"), FAULTS)
def test_a_fault_raises_a_readable_rerank_error(
    server: RerankServer, make: Any, fault: RerankFault, kind: str, message: str
) -> None:
    server.inject(fault)
    started = time.monotonic()
    with pytest.raises(RerankError, match=message) as info:
        make().rerank(QUERY, DOCS)
    assert time.monotonic() - started < TIMEOUT_S + 0.5
    assert info.value.kind == kind
    assert server.url.removesuffix("/v1") in str(info.value) or kind == "malformed"
    assert len(server.rerank_requests()) == 1  # never retried: a person is waiting


@pytest.mark.parametrize(("fault", "kind", "message"), FAULTS)
def test_a_fault_degrades_to_the_first_stage_order(
    server: RerankServer, make: Any, fault: RerankFault, kind: str, message: str
) -> None:
    reranker = make()
    server.inject(fault)
    started = time.monotonic()
    order, error = rerank_order(reranker, QUERY, DOCS)
    assert time.monotonic() - started < TIMEOUT_S + 0.5
    assert order == list(range(len(DOCS)))
    assert error is not None and error.startswith(("the ", "cannot", "invalid"))
    # the next search reranks again
    order, error = rerank_order(reranker, QUERY, DOCS)
    assert (order, error) == (expected_order(QUERY, DOCS), None)


def test_server_down(made: list[Reranker]) -> None:
    server = RerankServer().start()
    server.stop()  # its port is free now: connection refused
    reranker = Reranker(RerankConfig(server.url, RERANK_MODEL, timeout_s=TIMEOUT_S))
    made.append(reranker)
    with pytest.raises(RerankError, match="cannot connect to the rerank server") as info:
        reranker.rerank(QUERY, DOCS)
    assert info.value.kind == "connection"
    order, error = rerank_order(reranker, QUERY, DOCS)
    assert order == [0, 1, 2, 3, 4] and error is not None and "cannot connect" in error


def test_wrong_model_and_wrong_path_are_http_errors(server: RerankServer, make: Any) -> None:
    with pytest.raises(RerankError, match=r"404: The model `nope` does not exist.*KB_RERANK_MODEL"):
        make(model="nope").rerank(QUERY, DOCS)
    with pytest.raises(RerankError, match=r"404: Not Found \(check KB_RERANK_URL"):
        make(base_url=server.url.removesuffix("/v1")).rerank(QUERY, DOCS)


def test_an_unexpected_exception_still_degrades(make: Any) -> None:
    class Broken(Reranker):
        def rerank(self, *args: Any, **kwargs: Any) -> list[RerankResult]:
            raise RuntimeError("bug")

    broken = Broken(make().config)
    try:
        assert rerank_order(broken, QUERY, DOCS) == (
            [0, 1, 2, 3, 4],
            "reranking failed (RuntimeError)",
        )
    finally:
        broken.close()


# -- the response validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "no list of results"),
        ([], "no list of results"),
        ({"results": {"index": 0}}, "no list of results"),
        ({"results": ["x"]}, "not an object"),
        ({"results": [{"relevance_score": 1.0}]}, "index None"),
        ({"results": [{"index": -1, "relevance_score": 1.0}]}, "index -1"),
        ({"results": [{"index": True, "relevance_score": 1.0}]}, "index True"),
        ({"results": [{"index": "0", "relevance_score": 1.0}]}, "index '0'"),
        ({"results": [{"index": 0, "relevance_score": None}]}, "score None"),
        ({"results": [{"index": 0, "relevance_score": False}]}, "score False"),
        ({"results": [{"index": 0, "relevance_score": float("nan")}]}, "score nan"),
    ],
)
def test_parse_results_rejects(body: Any, message: str) -> None:
    with pytest.raises(RerankError, match=message) as info:
        parse_results(body, 3)
    assert info.value.kind == "malformed"


def test_parse_results_sorts_best_first_and_ignores_extra_fields() -> None:
    body = {
        "results": [
            {"index": 0, "relevance_score": 0.1, "document": {"text": "a"}},
            {"index": 2, "relevance_score": 3},
            {"index": 1, "relevance_score": 0.5},
        ]
    }
    assert parse_results(body, 3) == [
        RerankResult(2, 3.0),
        RerankResult(1, 0.5),
        RerankResult(0, 0.1),
    ]
    assert parse_results({"results": []}, 3) == []


# -- settings --------------------------------------------------------------------------------


def test_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server: RerankServer
) -> None:
    monkeypatch.setenv("KB_RERANK_URL", server.url)
    monkeypatch.setenv("KB_RERANK_MODEL", RERANK_MODEL)
    monkeypatch.setenv("KB_RERANK_API_KEY", "sekrit-key")
    monkeypatch.setenv("KB_RERANK_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("KB_RERANK_CANDIDATES", "50")
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    assert settings.rerank_enabled
    reranker = make_reranker(settings)
    assert reranker is not None
    try:
        assert reranker.config == RerankConfig(
            server.url, RERANK_MODEL, api_key="sekrit-key", timeout_s=2.5, candidates=50
        )
        assert reranker.candidates == 50
        assert server.received == []  # no network at construction
        assert reranker.rerank(QUERY, DOCS)[0].index == 2
        assert server.rerank_requests()[0].authorization == "Bearer sekrit-key"
    finally:
        reranker.close()


def test_defaults_and_limits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("URL", "MODEL", "API_KEY", "TIMEOUT_SECONDS", "CANDIDATES"):
        monkeypatch.delenv(f"KB_RERANK_{name}", raising=False)
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    assert not settings.rerank_enabled
    assert settings.rerank_timeout_seconds == 5.0 and settings.rerank_candidates == 30
    assert not Settings(rerank_url="http://x/v1", data_dir=tmp_path).rerank_enabled
    assert not Settings(rerank_model="m", data_dir=tmp_path).rerank_enabled
    for bad in (0, 201):
        with pytest.raises(ValueError):
            Settings(rerank_candidates=bad, data_dir=tmp_path)
    with pytest.raises(ValueError):
        Settings(rerank_timeout_seconds=0, data_dir=tmp_path)
    with pytest.raises(ValueError, match="KB_RERANK_URL"):
        Reranker.from_settings(settings)


def test_disabled_makes_no_request(
    server: RerankServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KB_RERANK_URL", raising=False)
    settings = Settings(rerank_model=server.model, data_dir=tmp_path)
    assert make_reranker(settings) is None
    assert rerank_order(None, QUERY, DOCS) == ([0, 1, 2, 3, 4], None)
    assert server.received == []


def test_construction_makes_no_request() -> None:
    # nothing listens on port 9 of loopback; construction must not notice
    with Reranker(RerankConfig("http://127.0.0.1:9/v1", RERANK_MODEL)) as reranker:
        assert reranker.base_url == "http://127.0.0.1:9/v1"
