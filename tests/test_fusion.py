"""Fusion of the dense and lexical result lists (pure functions)."""

from __future__ import annotations

import pytest

from app.search.fusion import FusionWeights, fuse, looks_literal


def ids(scored: list[tuple[int, float]]) -> list[int]:
    return [cid for cid, _ in scored]


DENSE = [(1, 0.9), (2, 0.8), (3, 0.7), (4, 0.6), (5, 0.5)]


RRF = FusionWeights(method="rrf", lexical=1.0)


def test_lexical_agreement_lifts_a_dense_candidate() -> None:
    assert ids(fuse(DENSE, [(4, 9.0), (9, 8.0)], k=5, weights=RRF))[:2] == [4, 1]
    # By score, a small lexical weight only decides between close dense scores.
    close = [(1, 0.80), (2, 0.79), (3, 0.60)]
    assert ids(fuse(close, [(2, 5.0)], k=3)) == [2, 1, 3]
    assert ids(fuse(close, [(3, 5.0)], k=3)) == [1, 2, 3]


def test_dense_order_stands_without_lexical_hits() -> None:
    assert ids(fuse(DENSE, [], k=3)) == [1, 2, 3]


def test_lexical_only_chunks_join_only_from_the_very_top() -> None:
    lexical = [(7, 5.0), (8, 4.0), (9, 3.0), (10, 2.0)]
    got = ids(fuse(DENSE, lexical, k=10, weights=FusionWeights(lexical=1.0, lexical_only_top=2)))
    assert 7 in got and 8 in got
    assert 9 not in got and 10 not in got


def test_no_lexical_say_when_the_collection_lacks_the_query_language() -> None:
    lexical = [(5, 9.0), (7, 8.0)]
    assert ids(fuse(DENSE, lexical, k=5, language_share=0.0)) == [1, 2, 3, 4, 5]
    # Half the collection in the query's language: half the weight.
    full = dict(fuse(DENSE, lexical, k=10, language_share=1.0))
    half = dict(fuse(DENSE, lexical, k=10, language_share=0.5))
    assert half[5] < full[5]


def test_verbatim_queries_let_exact_matches_in_from_deeper() -> None:
    lexical = [(20 + i, 10.0 - i) for i in range(8)]  # none of them found by the dense leg
    plain = ids(fuse(DENSE, lexical, k=10))
    literal = ids(fuse(DENSE, lexical, k=10, literal=True))
    assert plain[:4] == [1, 2, 3, 4]
    assert len(set(literal) - set(ids(DENSE))) > len(set(plain) - set(ids(DENSE)))
    assert literal[0] == 20  # boosted: the exact match comes first


@pytest.mark.parametrize(
    "query",
    [
        "pip cache purge --force",
        r"\usepackage{ctex}",
        "E1234",
        "KB_EMBEDDING_URL",
        "v1.2.3",
        "run `make`",
        "utf8 编码",
    ],
)
def test_literal_queries(query: str) -> None:
    assert looks_literal(query)


@pytest.mark.parametrize(
    "query",
    [
        "how do I request annual leave?",
        "年假怎么申请",
        "What's new in the release",
        "Python-Markdown multiple-choice questions",
    ],
)
def test_plain_questions_are_not_literal(query: str) -> None:
    assert not looks_literal(query)
