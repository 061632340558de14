"""An embedder for servers that speak the OpenAI embeddings API (vLLM, SGLang, TEI, ...).

Production runs Qwen3-Embedding-4B on vLLM. The wire protocol:

- ``GET  {base_url}/models`` lists the served models (``check()`` looks for ours).
- ``POST {base_url}/embeddings`` with ``{"model", "input": [...], "encoding_format":
  "base64", "dimensions"?}`` answers ``{"data": [{"index": i, "embedding": ...}]}``; a
  base64 embedding is little-endian float32 (~4x smaller and far cheaper to decode than
  JSON floats). A server that refuses base64, or answers floats anyway, gets float
  requests from then on. A server that refuses ``dimensions`` (vLLM without
  ``--hf-overrides '{"is_matryoshka": true}'`` answers 400) gets none from then on and
  the vectors are truncated here and re-normalised (Matryoshka).

Texts are sent in requests of at most ``batch_size`` texts and ``max_request_tokens``
estimated tokens, ``concurrency`` requests at once. Connection errors, timeouts, 429 and
5xx are retried with exponential backoff and full jitter until ``give_up_s``; then
``EmbedderError`` (the ingest job is retried later). Other 4xx answers raise
``EmbedderRejected`` at once; a text over ``max_input_tokens`` raises
``EmbedderInputError`` (the document fails: retrying cannot help).
"""

from __future__ import annotations

import base64
import binascii
import logging
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from app.embedding.base import (
    Embedder,
    EmbedderError,
    EmbedderInputError,
    Vectors,
    l2_normalise,
)
from app.openai_compat import CompatClient, error_message, retry_after_seconds
from app.settings import QWEN3_QUERY_TASK, Settings
from app.text.tokens import count_tokens

log = logging.getLogger(__name__)

PROBE_TEXT = "probe"


class EmbedderRejected(EmbedderError):
    """The server refused the request (a 4xx other than 429): wrong URL, model or API key.

    Not retried by the client; the message says what to fix.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _Cancelled(Exception):
    """Another request of the same call failed; this one stops retrying."""


@dataclass(frozen=True)
class OpenAIConfig:
    """How to reach the server and how to batch, pace and retry requests."""

    base_url: str  # including /v1, like the OpenAI SDK's base_url
    model: str
    api_key: str | None = None
    dimensions: int | None = None  # Matryoshka size; None: the model's own
    batch_size: int = 32  # texts per request
    max_request_tokens: int = 16384  # estimated tokens per request
    max_input_tokens: int = 8192  # per text; a longer one is an error, never truncated
    concurrency: int = 4  # requests in flight
    timeout_s: float = 60.0  # per request
    give_up_s: float = 300.0  # retry a failing request for this long
    backoff_s: float = 0.5  # first retry delay (full jitter below it)
    backoff_max_s: float = 15.0
    query_task: str = QWEN3_QUERY_TASK
    query_prefix: str | None = None  # when set, replaces the Qwen3 "Instruct:" format
    document_prefix: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIConfig:
        if not settings.embedding_url or not settings.embedding_model:
            raise ValueError(
                "the 'openai' embedder needs KB_EMBEDDING_URL (e.g. http://localhost:8000/v1) "
                "and KB_EMBEDDING_MODEL (e.g. Qwen/Qwen3-Embedding-4B)"
            )
        key = settings.embedding_api_key
        return cls(
            base_url=settings.embedding_url,
            model=settings.embedding_model,
            api_key=key.get_secret_value() if key else None,
            dimensions=settings.embedding_dimensions,
            batch_size=settings.embed_batch_size,
            max_request_tokens=settings.embedding_max_request_tokens,
            max_input_tokens=settings.embedding_max_input_tokens,
            concurrency=settings.embedding_concurrency,
            timeout_s=settings.embedding_timeout_seconds,
            give_up_s=settings.embedding_give_up_seconds,
            backoff_s=settings.embedding_backoff_seconds,
            backoff_max_s=settings.embedding_backoff_max_seconds,
            query_task=settings.embedding_query_task,
            query_prefix=settings.embedding_query_prefix,
            document_prefix=settings.embedding_document_prefix,
        )


def qwen3_query(task: str, query: str) -> str:
    """Qwen3-Embedding's query format (documents get no instruction)."""
    return f"Instruct: {task}\nQuery:{query}"


def decode_base64_vector(data: str) -> np.ndarray[Any, np.dtype[np.float32]]:
    """A base64 embedding: little-endian float32 bytes."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EmbedderError(f"the embedding server sent invalid base64: {exc}") from None
    if len(raw) % 4:
        raise EmbedderError(
            f"the embedding server sent {len(raw)} base64 bytes, not a whole number of float32"
        )
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def plan_batches(costs: Sequence[int], *, max_texts: int, max_tokens: int) -> list[range]:
    """Consecutive runs of texts, each at most ``max_texts`` long and ``max_tokens`` in all.

    A single text over ``max_tokens`` gets a request of its own.
    """
    batches: list[range] = []
    start, used = 0, 0
    for i, cost in enumerate(costs):
        if i > start and (i - start >= max_texts or used + cost > max_tokens):
            batches.append(range(start, i))
            start, used = i, 0
        used += cost
    if start < len(costs):
        batches.append(range(start, len(costs)))
    return batches


def _error_message(resp: httpx.Response) -> str:
    """The server's own words (see ``error_message``); a FastAPI list of validation errors
    is kept whole, as ``_request`` looks for the refused field's name in it."""
    return error_message(
        resp.content,
        resp.reason_phrase,
        limit=500,
        encoding=resp.encoding or "utf-8",
        join_lists=False,
    )


def _describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer in time ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc or 'connection refused'})"
    return f"connection lost ({type(exc).__name__}: {exc or 'no response'})"


class OpenAIEmbedder(CompatClient, Embedder):
    """The ``Embedder`` for an OpenAI-compatible embeddings server.

    ``dim`` is known after ``check()`` (called by the registry, else on first use), or
    from the configured ``dimensions``.
    """

    name = "openai"
    server = "embedding server"
    env_prefix = "KB_EMBEDDING"

    def __init__(self, config: OpenAIConfig, *, transport: httpx.BaseTransport | None = None):
        super().__init__(
            base_url=config.base_url,
            model=config.model,
            api_key=config.api_key,
            timeout_s=config.timeout_s,
            transport=transport,
            limits=httpx.Limits(
                max_connections=max(10, 2 * config.concurrency),
                max_keepalive_connections=max(4, config.concurrency),
            ),
        )
        self.config = config
        self.dim = config.dimensions or 0
        self.batch_size = config.batch_size
        self.concurrency = config.concurrency
        self._lock = threading.Lock()
        self._check_lock = threading.RLock()
        self._checked = False
        # Learned from the server, kept for the life of the process:
        self._base64 = True  # False once it refused base64 or answered floats
        self._send_dimensions = config.dimensions is not None  # False once it refused them
        self._native_dim: int | None = None  # its vector size without `dimensions`
        self._max_input_tokens = config.max_input_tokens  # lowered to its max_model_len
        # A thread pool, not asyncio in a loop thread: the callers (the worker thread, the
        # web's sync handlers) block anyway, httpx.Client is thread-safe and pools its
        # connections, and a handful of requests in flight needs no event loop, whose
        # life-cycle and cross-thread hand-offs would only add failure modes. One pool per
        # embedder also caps the requests this process has in flight at `concurrency`.
        self._pool: ThreadPoolExecutor | None = None

    # -- the Embedder protocol ---------------------------------------------------------

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return self._embed([self.format_document(t) for t in texts], give_up=self.config.give_up_s)

    def embed_queries(self, texts: Sequence[str], *, instruction: str | None = None) -> Vectors:
        # A person is waiting on a search: stop retrying after one request timeout.
        give_up = min(self.config.give_up_s, self.config.timeout_s)
        return self._embed([self.format_query(t, instruction) for t in texts], give_up=give_up)

    @property
    def query_instruction(self) -> str | None:
        """The task a new collection records (None when a plain prefix is configured)."""
        return None if self.config.query_prefix is not None else self.config.query_task

    def format_query(self, query: str, instruction: str | None = None) -> str:
        if self.config.query_prefix is not None:
            return self.config.query_prefix + query
        return qwen3_query(instruction or self.config.query_task, query)

    def format_document(self, text: str) -> str:
        if self.config.document_prefix is not None:
            return self.config.document_prefix + text
        return text

    # -- start-up check ----------------------------------------------------------------

    def check(self) -> None:
        """The server serves our model; learn (or verify) the vector size with one probe.

        Raises EmbedderRejected (model missing, bad URL or key: fix the settings),
        EmbedderError (the server stayed unreachable for ``give_up_s``).
        """
        with self._check_lock:
            self._check_model()
            raw, dims_sent = self._request([PROBE_TEXT], self._deadline(self.config.give_up_s))
            got = raw.shape[1]
            wanted = self.config.dimensions
            if wanted is None:
                dim = got
                self._native_dim = got
            elif dims_sent and got == wanted:
                dim = wanted
            elif got >= wanted:
                # `dimensions` was refused (or ignored): truncate here, as Matryoshka allows.
                with self._lock:
                    self._send_dimensions = False
                self._native_dim = got
                dim = wanted
            else:
                raise EmbedderRejected(
                    f"model {self.model!r} at {self.base_url} gives {got}-dimensional vectors, "
                    f"fewer than KB_EMBEDDING_DIMENSIONS={wanted}"
                )
            if self._checked and dim != self.dim:
                raise EmbedderError(
                    f"model {self.model!r} at {self.base_url} now gives {dim}-dimensional "
                    f"vectors, not {self.dim}: did the server change model?"
                )
            self.dim = dim
            self._checked = True
            log.info(
                "embedding server %s: model %s, %d dimensions (%s), base64 %s",
                self.base_url,
                self.model,
                dim,
                "server-side" if self._send_dimensions else "native/truncated here",
                "yes" if self._base64 else "no",
            )

    def _check_model(self) -> None:
        url = self.models_url
        resp = self._send("GET", url, None, self._deadline(self.config.give_up_s), None)
        if not resp.is_success:
            raise self._rejected(resp, url)
        try:
            body = resp.json()
        except ValueError:
            body = None  # not a model list
        entry = self.served_model(body)
        max_len = entry.get("max_model_len")
        if isinstance(max_len, int) and 0 < max_len < self._max_input_tokens:
            log.info("texts are limited to the server's max_model_len, %d tokens", max_len)
            self._max_input_tokens = max_len

    def not_a_model_list(self, message: str) -> Exception:
        return EmbedderError(message)

    def model_missing(self, message: str) -> Exception:
        return EmbedderRejected(message)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        super().close()

    # -- embedding ---------------------------------------------------------------------

    def ensure_checked(self) -> None:
        """``check()`` once (the registry does it at start-up; else the first call does)."""
        if not self._checked:
            with self._check_lock:
                if not self._checked:
                    self.check()

    def _embed(self, texts: list[str], *, give_up: float) -> Vectors:
        self.ensure_checked()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        limit = self._max_input_tokens
        costs = [count_tokens(t) for t in texts]
        for cost in costs:
            if cost > limit:
                raise EmbedderInputError(
                    f"a text of about {cost} tokens is longer than the {limit} tokens the "
                    "embedding model takes (KB_EMBEDDING_MAX_INPUT_TOKENS); texts are never "
                    "cut, so it has to be split (a smaller KB_CHUNK_MAX_TOKENS)"
                )
        batches = plan_batches(
            costs, max_texts=self.config.batch_size, max_tokens=self.config.max_request_tokens
        )
        cancel = threading.Event()
        if len(batches) == 1:
            return self._embed_batch(texts, give_up, cancel)
        pool = self._executor()
        futures: list[Future[Vectors]] = [
            pool.submit(self._embed_batch, [texts[i] for i in b], give_up, cancel) for b in batches
        ]
        parts: list[Vectors] = []
        try:
            for future in futures:  # in order: the vectors are reassembled as the texts came
                parts.append(future.result())
        except BaseException:
            cancel.set()
            for future in futures:
                future.cancel()
            raise
        return np.ascontiguousarray(np.vstack(parts), dtype=np.float32)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.config.concurrency, thread_name_prefix="kb-embed"
                )
            return self._pool

    def _embed_batch(self, texts: list[str], give_up: float, cancel: threading.Event) -> Vectors:
        raw, dims_sent = self._request(texts, self._deadline(give_up), cancel)
        got = raw.shape[1]
        if dims_sent or self.config.dimensions is None:
            expected = self.dim
        else:  # truncated here: the server must still give its native size
            expected = self._native_dim or max(got, self.dim)
            self._native_dim = expected
        if got != expected:
            raise EmbedderError(
                f"the embedding server at {self.base_url} returned {got}-dimensional vectors "
                f"for model {self.model!r}, expected {expected}: did the server change model? "
                "Vectors of different sizes are never mixed in a collection."
            )
        if got > self.dim:
            raw = raw[:, : self.dim]
        return l2_normalise(raw)

    def _deadline(self, give_up: float) -> float:
        return time.monotonic() + give_up

    def _request(
        self, texts: list[str], deadline: float, cancel: threading.Event | None = None
    ) -> tuple[np.ndarray[Any, np.dtype[np.float32]], bool]:
        """Raw vectors for ``texts`` from one (retried) request; and whether ``dimensions``
        was sent (the server then did the truncation)."""
        url = f"{self.base_url}/embeddings"
        while True:
            use_base64, send_dims = self._base64, self._send_dimensions
            body: dict[str, Any] = {"model": self.model, "input": texts}
            if use_base64:
                body["encoding_format"] = "base64"
            if send_dims:
                body["dimensions"] = self.config.dimensions
            resp = self._send("POST", url, body, deadline, cancel)
            if resp.is_success:
                raw, floats = self._parse(resp, len(texts))
                if use_base64 and floats:
                    self._switch_to_floats("it answered floats")
                return raw, send_dims
            message = _error_message(resp)
            low = message.lower()
            if resp.status_code in (400, 422):
                if send_dims and ("dimension" in low or "matryoshka" in low):
                    with self._lock:
                        if self._send_dimensions:
                            self._send_dimensions = False
                            log.warning(
                                "%s refused `dimensions` (%s); truncating vectors to %s here",
                                url,
                                message,
                                self.config.dimensions,
                            )
                    continue
                if use_base64 and ("encoding_format" in low or "base64" in low):
                    self._switch_to_floats(f"it refused base64: {message}")
                    continue
                if "context length" in low or "reduce the length" in low or "too long" in low:
                    raise EmbedderInputError(f"the embedding server refused a text: {message}")
            raise self._rejected(resp, url)

    def _switch_to_floats(self, why: str) -> None:
        with self._lock:
            if self._base64:
                self._base64 = False
                log.warning("%s: asking for float vectors from now on (%s)", self.base_url, why)

    def _rejected(self, resp: httpx.Response, url: str) -> EmbedderRejected:
        status = resp.status_code
        return EmbedderRejected(
            f"the embedding server refused {url}: {status} {_error_message(resp)}"
            f"{self.hint(status)}",
            status=status,
        )

    def _parse(
        self, resp: httpx.Response, n: int
    ) -> tuple[np.ndarray[Any, np.dtype[np.float32]], bool]:
        """(n, d) float32 in input order (by each item's ``index``); and whether floats came."""
        try:
            data = resp.json()["data"]
            items = [(int(item["index"]), item["embedding"]) for item in data]
        except (ValueError, KeyError, TypeError):
            raise EmbedderError(
                f"the embedding server answered something that is not an embeddings response: "
                f"{resp.text[:200]!r}"
            ) from None
        if sorted(i for i, _ in items) != list(range(n)):
            raise EmbedderError(
                f"the embedding server answered indexes {sorted(i for i, _ in items)[:10]} "
                f"for {n} texts"
            )
        rows: list[np.ndarray[Any, np.dtype[np.float32]]] = [np.empty(0, np.float32)] * n
        floats = False
        for i, emb in items:
            if isinstance(emb, str):
                rows[i] = decode_base64_vector(emb)
            elif isinstance(emb, list):
                rows[i] = np.asarray(emb, dtype=np.float32)
                floats = True
            else:
                raise EmbedderError(f"the embedding server sent an embedding of type {type(emb)}")
        sizes = {r.shape[0] for r in rows}
        if len(sizes) != 1 or 0 in sizes:
            raise EmbedderError(
                f"the embedding server sent vectors of sizes {sorted(sizes)} in one answer"
            )
        raw = np.vstack(rows)
        if not np.isfinite(raw).all():
            raise EmbedderError("the embedding server sent NaN or infinite values")
        return raw, floats

    def _send(
        self,
        method: str,
        url: str,
        body: dict[str, Any] | None,
        deadline: float,
        cancel: threading.Event | None,
    ) -> httpx.Response:
        """One request, retried on connection errors, timeouts, 408, 429 and 5xx with
        exponential backoff and full jitter (at least Retry-After) until ``deadline``.

        Returns the first answer that is not retried: a success or a 4xx to interpret.
        """
        started = time.monotonic()
        attempt = 0
        error = ""
        while True:
            if cancel is not None and cancel.is_set():
                raise _Cancelled()
            remaining = deadline - time.monotonic()
            timeout = max(0.001, min(self.config.timeout_s, remaining))
            retry_after: float | None = None
            try:
                resp = self._client.request(method, url, json=body, timeout=timeout)
            except httpx.TransportError as exc:
                cut_short = timeout < self.config.timeout_s
                if not (error and cut_short and isinstance(exc, httpx.TimeoutException)):
                    error = _describe(exc)
                # else: the give-up time, not the server, ended this attempt: keep its last error
            else:
                status = resp.status_code
                if status < 400 or (status < 500 and status not in (408, 429)):
                    return resp
                error = f"{status} {_error_message(resp)}"
                retry_after = retry_after_seconds(resp)
            attempt += 1
            delay = random.uniform(
                0, min(self.config.backoff_max_s, self.config.backoff_s * 2 ** (attempt - 1))
            )
            if retry_after is not None:
                delay = max(delay, retry_after)
            if time.monotonic() + delay >= deadline:
                raise EmbedderError(
                    f"embedding server {url} failed for {time.monotonic() - started:.1f} s "
                    f"({attempt} attempts), giving up: {error}"
                )
            log.warning("%s %s: %s; retry %d in %.2f s", method, url, error, attempt, delay)
            if cancel is not None:
                if cancel.wait(delay):
                    raise _Cancelled()
            else:
                time.sleep(delay)
