"""A client for servers that speak the rerank API (vLLM, Jina, Cohere v1 shape).

Search can reorder its top first-stage candidates with a cross-encoder. Production runs
Qwen3-Reranker on vLLM; the original checkpoint is served as a sequence classifier, and
vLLM applies Qwen3-Reranker's instruction template itself, so this client sends the plain
query and the plain documents (it formats no prompts)::

    vllm serve Qwen/Qwen3-Reranker-0.6B --runner pooling \\
        --hf-overrides '{"architectures": ["Qwen3ForSequenceClassification"],
                         "classifier_from_token": ["no", "yes"],
                         "is_original_qwen3_reranker": true}' \\
        --chat-template examples/pooling/score/template/qwen3_reranker.jinja

(``--chat-template`` names the template in vLLM's source tree; without it older vLLM
versions score the bare query/document pair, which works, but less well.) A converted
checkpoint such as ``tomaarsen/Qwen3-Reranker-0.6B-seq-cls`` needs no ``--hf-overrides``.

The wire protocol:

- ``GET  {base_url}/models`` lists the served models (``check()`` looks for ours).
- ``POST {base_url}/rerank`` with ``{"model", "query", "documents": [...], "top_n"}``
  answers ``{"results": [{"index": i, "relevance_score": s, ...}, ...]}`` (vLLM also sends
  each ``document``; Cohere v1 and Jina answer the same ``results``).

There is a person waiting on a search, so nothing is retried: one request, then
``RerankError``. ``timeout_s`` bounds each wait (connect, send, the first byte of the
answer) and reading the answer stops once ``timeout_s`` has passed in all, so a failed
request costs about ``timeout_s`` (two of them only if connecting alone takes that
long). ``rerank_order`` turns the error into the first-stage order and a message for
the page.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from app.openai_compat import CompatClient, error_message
from app.settings import Settings

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 16 * 1024 * 1024  # an answer for 200 candidates is a few hundred KiB

ErrorKind = Literal["connection", "timeout", "http", "malformed", "config"]


class RerankError(Exception):
    """Reranking failed; ``str(error)`` says why, in words for a person.

    ``kind`` says what failed: ``connection``, ``timeout``, ``http`` (the server answered
    an error ``status``), ``malformed`` (an answer that is not a valid rerank response) or
    ``config``.
    """

    def __init__(self, message: str, *, kind: ErrorKind, status: int | None = None) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.status = status


@dataclass(frozen=True)
class RerankResult:
    """One reranked document: its position in the ``documents`` sent, and its score."""

    index: int
    relevance_score: float


@dataclass(frozen=True)
class RerankConfig:
    """How to reach the rerank server."""

    base_url: str  # including /v1, like the embedder's
    model: str
    api_key: str | None = None
    timeout_s: float = 5.0  # each wait, and the answer's reading in all
    candidates: int = 30  # first-stage results to rerank (used by search)

    @classmethod
    def from_settings(cls, settings: Settings) -> RerankConfig:
        if not settings.rerank_url or not settings.rerank_model:
            raise ValueError(
                "reranking needs KB_RERANK_URL (e.g. http://localhost:8001/v1) and "
                "KB_RERANK_MODEL (e.g. Qwen/Qwen3-Reranker-0.6B)"
            )
        key = settings.rerank_api_key
        return cls(
            base_url=settings.rerank_url,
            model=settings.rerank_model,
            api_key=key.get_secret_value() if key else None,
            timeout_s=settings.rerank_timeout_seconds,
            candidates=settings.rerank_candidates,
        )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def parse_results(body: Any, n: int) -> list[RerankResult]:
    """The ``results`` of a rerank answer for ``n`` documents, best first.

    Raises RerankError (kind ``malformed``) for anything but a list of results with
    unique indexes in ``range(n)`` and finite numeric scores.
    """
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise RerankError(
            "the rerank server answered something that is not a rerank response "
            "(no list of results)",
            kind="malformed",
        )
    out: list[RerankResult] = []
    seen: set[int] = set()
    for item in results:
        if not isinstance(item, dict):
            raise RerankError(
                f"the rerank server answered a result that is not an object: {item!r:.80}",
                kind="malformed",
            )
        index = item.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
            raise RerankError(
                f"the rerank server answered index {index!r:.40} for {n} documents",
                kind="malformed",
            )
        if index in seen:
            raise RerankError(f"the rerank server answered index {index} twice", kind="malformed")
        seen.add(index)
        score = _number(item.get("relevance_score"))
        if score is None:
            raise RerankError(
                f"the rerank server answered score {item.get('relevance_score')!r:.40} "
                f"for document {index}, not a number",
                kind="malformed",
            )
        out.append(RerankResult(index, score))
    out.sort(key=lambda r: (-r.relevance_score, r.index))
    return out


class Reranker(CompatClient):
    """Reorders documents by their relevance to a query, as a rerank server scores them.

    Thread-safe; makes no request until used. ``close()`` when done (or use ``with``).
    """

    server = "rerank server"
    env_prefix = "KB_RERANK"

    def __init__(self, config: RerankConfig, *, transport: httpx.BaseTransport | None = None):
        super().__init__(
            base_url=config.base_url,
            model=config.model,
            api_key=config.api_key,
            timeout_s=config.timeout_s,
            transport=transport,
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=4),
        )
        self.config = config
        self.candidates = config.candidates

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx.BaseTransport | None = None
    ) -> Reranker:
        """Raises ValueError when KB_RERANK_URL or KB_RERANK_MODEL is missing."""
        return cls(RerankConfig.from_settings(settings), transport=transport)

    # -- reranking ---------------------------------------------------------------------

    def rerank(
        self, query: str, documents: Sequence[str], top_n: int | None = None
    ) -> list[RerankResult]:
        """The documents' indexes and scores, best first; at most ``top_n`` of them (all by
        default). Documents the server did not return are absent.

        Raises RerankError (connection error, timeout, an HTTP error, a malformed answer).
        """
        docs = list(documents)
        if top_n is not None and top_n < 1:
            raise ValueError(f"top_n must be at least 1, not {top_n}")
        if not docs:
            return []
        n = len(docs) if top_n is None else min(top_n, len(docs))
        body = {"model": self.model, "query": query, "documents": docs, "top_n": n}
        answer = self._post(f"{self.base_url}/rerank", body)
        return parse_results(answer, len(docs))[:n]

    def check(self) -> None:
        """The server answers and serves our model (for start-up or an admin page).

        Raises RerankError.
        """
        self.served_model(self._request("GET", self.models_url, None))

    def not_a_model_list(self, message: str) -> Exception:
        return RerankError(message, kind="malformed")

    def model_missing(self, message: str) -> Exception:
        return RerankError(message, kind="config")

    # -- HTTP --------------------------------------------------------------------------

    def _post(self, url: str, body: dict[str, Any]) -> Any:
        return self._request("POST", url, body)

    def _request(self, method: str, url: str, body: dict[str, Any] | None) -> Any:
        """One request within ``timeout_s`` in all; its JSON answer."""
        timeout = self.config.timeout_s
        deadline = time.monotonic() + timeout
        try:
            with self._client.stream(method, url, json=body) as resp:
                chunks: list[bytes] = []
                size = 0
                for chunk in resp.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        raise RerankError(
                            f"the rerank server at {self.base_url} answered more than "
                            f"{MAX_RESPONSE_BYTES // (1024 * 1024)} MiB",
                            kind="malformed",
                        )
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("the answer took too long", request=resp.request)
                content = b"".join(chunks)
        except httpx.TimeoutException:
            raise RerankError(
                f"the rerank server at {self.base_url} did not answer within {timeout:g} s",
                kind="timeout",
            ) from None
        except httpx.ConnectError as exc:
            raise RerankError(
                f"cannot connect to the rerank server at {self.base_url} "
                f"({exc or 'connection refused'})",
                kind="connection",
            ) from None
        except httpx.HTTPError as exc:  # connection lost, protocol or decoding errors, ...
            raise RerankError(
                f"the connection to the rerank server at {self.base_url} failed "
                f"({type(exc).__name__}: {exc or 'no response'})",
                kind="connection",
            ) from None
        except httpx.InvalidURL as exc:
            raise RerankError(f"invalid KB_RERANK_URL: {exc}", kind="config") from None
        if not resp.is_success:
            status = resp.status_code
            raise RerankError(
                f"the rerank server at {self.base_url} answered {status}: "
                f"{error_message(content, resp.reason_phrase, limit=300)}{self.hint(status)}",
                kind="http",
                status=status,
            )
        try:
            return json.loads(content)
        except ValueError:
            raise RerankError(
                f"the rerank server at {self.base_url} answered something that is not JSON: "
                f"{content[:80]!r}",
                kind="malformed",
            ) from None


def make_reranker(
    settings: Settings, *, transport: httpx.BaseTransport | None = None
) -> Reranker | None:
    """The configured Reranker, or None when reranking is off (no KB_RERANK_URL/MODEL)."""
    if not settings.rerank_enabled:
        return None
    return Reranker.from_settings(settings, transport=transport)


def rerank_order(
    reranker: Reranker | None, query: str, texts: Sequence[str]
) -> tuple[list[int], str | None]:
    """The order in which to show ``texts`` (their indexes) and why it is not reranked.

    Reranked texts come first, best first, then any the server did not return in their
    first-stage order; the second item is None. When reranking is off (``reranker`` is
    None) or there is nothing to reorder, the first-stage order and None. When reranking
    fails, the first-stage order and a message for the page: search degrades, never fails.
    """
    original = list(range(len(texts)))
    if reranker is None or len(texts) < 2:
        return original, None
    try:
        results = reranker.rerank(query, texts)
    except RerankError as exc:
        log.warning("reranking failed, first-stage order kept: %s", exc)
        return original, str(exc)
    except Exception as exc:  # a bug must not break search either
        log.exception("reranking failed unexpectedly, first-stage order kept")
        return original, f"reranking failed ({type(exc).__name__})"
    order = [r.index for r in results]
    returned = set(order)
    order.extend(i for i in original if i not in returned)
    return order, None
