"""The optional second stage of search: a rerank server reorders the top candidates."""

from app.rerank.client import (
    RerankConfig,
    Reranker,
    RerankError,
    RerankResult,
    make_reranker,
    rerank_order,
)

__all__ = [
    "RerankConfig",
    "RerankError",
    "RerankResult",
    "Reranker",
    "make_reranker",
    "rerank_order",
]
