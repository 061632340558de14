"""A client for servers that speak the OpenAI chat-completions API (vLLM, SGLang, Ollama,
llama.cpp server, TGI), streamed or not.

The wire protocol:

- ``GET  {base_url}/models`` lists the served models (``check()`` looks for ours).
- ``POST {base_url}/chat/completions`` with ``{"model", "messages", "max_tokens",
  "temperature", "stream"}``. Streamed, the answer is server-sent events: one
  ``data: {"choices": [{"delta": {"content": "..."}, "finish_reason": null}]}`` per piece,
  a last one with a ``finish_reason``, then ``data: [DONE]``. vLLM reports an error that
  happens mid-stream as ``data: {"error": {...}}``. Not streamed, one
  ``{"choices": [{"message": {"content": "..."}, "finish_reason"}]}``.

Reasoning models: ``<think>…</think>`` blocks in the content are stripped (also when a tag
is split across chunks) and ``reasoning_content``/``reasoning`` deltas are ignored.

Retries happen only before the first visible token: a refused connection, a connection
lost before any text, 429, 502, 503 and 504 are retried ``retries`` times with a short
backoff (a person is waiting). A timeout is not retried (``timeout_s`` bounds each wait
already: connecting, the first token, the gap between tokens). A stream that fails once
text has been given out raises :class:`LLMStreamBroken`, which callers show: an answer is
never silently cut short.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from app.llm.think import ThinkFilter, strip_think
from app.openai_compat import CompatClient, error_message, retry_after_seconds
from app.settings import Settings

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 16 * 1024 * 1024
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_WAIT_S = 4.0  # a Retry-After longer than this is not waited out: a person waits

ErrorKind = Literal["connection", "timeout", "http", "malformed", "config", "broken", "busy"]
BUSY = "too many answers are being written at once; try again in a few seconds"
Role = Literal["system", "user", "assistant"]


class LLMError(Exception):
    """Writing the answer failed; ``str(error)`` says why, in words for a person.

    ``kind``: ``connection``, ``timeout``, ``http`` (the server answered an error
    ``status``), ``malformed`` (not a chat-completions answer), ``config``, ``broken``
    (the stream ended before the answer did) or ``busy`` (``max_streams`` answers are
    being written already).
    """

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class LLMStreamBroken(LLMError):
    """The stream failed after part of the answer was given out: show that it is cut."""


@dataclass(frozen=True)
class Message:
    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class ChatChunk:
    """A piece of visible answer text; the last chunk has ``finish_reason`` (and may be
    empty): "stop", or "length" when the answer reached ``max_tokens``."""

    text: str
    finish_reason: str | None = None


@dataclass(frozen=True)
class ChatCompletion:
    text: str
    finish_reason: str | None
    model: str


@dataclass(frozen=True)
class ChatConfig:
    """How to reach the LLM server and what to ask of it."""

    base_url: str  # including /v1
    model: str
    api_key: str | None = None
    timeout_s: float = 60.0
    max_tokens: int = 1024
    temperature: float = 0.2
    context_tokens: int = 8192  # the prompt and the answer together
    # Answers written at once by this process. Each holds a web thread while it waits for
    # the model's words; the rest of the threads stay free for searches.
    max_streams: int = 8
    retries: int = 2
    backoff_s: float = 0.5

    @classmethod
    def from_settings(cls, settings: Settings) -> ChatConfig:
        if not settings.llm_url or not settings.llm_model:
            raise ValueError(
                "written answers need KB_LLM_URL (e.g. http://localhost:8002/v1) and "
                "KB_LLM_MODEL (e.g. Qwen/Qwen3-8B)"
            )
        key = settings.llm_api_key
        return cls(
            base_url=settings.llm_url,
            model=settings.llm_model,
            api_key=key.get_secret_value() if key else None,
            timeout_s=settings.llm_timeout_seconds,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
            context_tokens=settings.llm_context_tokens,
            max_streams=settings.llm_max_streams or max(1, settings.web_threads // 2),
        )


def sse_data(lines: Iterable[str]) -> Iterator[str]:
    """The ``data`` of each server-sent event in ``lines`` (multi-line data joined by
    newlines; comments and other fields skipped)."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


class ChatClient(CompatClient):
    """Writes answers with one model on an OpenAI-compatible chat server.

    Thread-safe; makes no request until used. ``close()`` when done (or use ``with``).
    """

    server = "LLM server"
    env_prefix = "KB_LLM"

    def __init__(self, config: ChatConfig, *, transport: httpx.BaseTransport | None = None):
        super().__init__(
            base_url=config.base_url,
            model=config.model,
            api_key=config.api_key,
            timeout_s=config.timeout_s,
            transport=transport,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=8),
        )
        self.config = config
        self._writing = threading.BoundedSemaphore(config.max_streams)

    @contextmanager
    def _slot(self) -> Iterator[None]:
        """One of ``max_streams`` places to write an answer in, or LLMError (busy): a
        reader is told to try again rather than every web thread waiting on the model."""
        if not self._writing.acquire(blocking=False):
            raise LLMError(BUSY, kind="busy", status=503, retry_after=5.0)
        try:
            yield
        finally:
            self._writing.release()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx.BaseTransport | None = None
    ) -> ChatClient:
        """Raises ValueError when KB_LLM_URL or KB_LLM_MODEL is missing."""
        return cls(ChatConfig.from_settings(settings), transport=transport)

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/chat/completions"

    # -- asking ------------------------------------------------------------------------

    def stream(self, messages: Sequence[Message]) -> Iterator[ChatChunk]:
        """The answer's visible text as it is written, then a last chunk with the
        ``finish_reason``.

        Raises LLMError when no text came (after the retries), LLMStreamBroken when the
        stream failed after some text was given out.
        """
        body = self._body(messages, stream=True)
        with self._slot():
            yield from self._stream_retrying(body)

    def _stream_retrying(self, body: dict[str, Any]) -> Iterator[ChatChunk]:
        for attempt in range(self.config.retries + 1):
            sent = [False]
            try:
                yield from self._stream_once(body, sent)
                return
            except LLMError as exc:
                if sent[0]:
                    raise LLMStreamBroken(
                        f"the answer was cut off: {exc}", kind="broken", status=exc.status
                    ) from None
                if not exc.retryable or attempt == self.config.retries:
                    raise
                wait = self.config.backoff_s * 2**attempt
                if exc.retry_after is not None:
                    wait = max(wait, exc.retry_after)
                log.info("LLM server: %s; trying again in %.1f s", exc, wait)
                time.sleep(min(wait, MAX_RETRY_WAIT_S))
        raise AssertionError("unreachable")

    def complete(self, messages: Sequence[Message]) -> ChatCompletion:
        """The whole answer in one non-streamed request (think blocks stripped).

        Raises LLMError.
        """
        body = self._body(messages, stream=False)
        with self._slot():
            return self._complete_retrying(body)

    def _complete_retrying(self, body: dict[str, Any]) -> ChatCompletion:
        for attempt in range(self.config.retries + 1):
            try:
                return self._complete_once(body)
            except LLMError as exc:
                if not exc.retryable or attempt == self.config.retries:
                    raise
                wait = self.config.backoff_s * 2**attempt
                if exc.retry_after is not None:
                    wait = max(wait, exc.retry_after)
                time.sleep(min(wait, MAX_RETRY_WAIT_S))
        raise AssertionError("unreachable")

    def check(self) -> dict[str, Any]:
        """The server answers and serves our model; its ``/models`` entry.

        Raises LLMError.
        """
        try:
            resp = self._client.get(self.models_url)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        except httpx.InvalidURL as exc:
            raise LLMError(f"invalid KB_LLM_URL: {exc}", kind="config") from None
        if not resp.is_success:
            raise self._http_error(resp, resp.content)
        try:
            body = resp.json()
        except ValueError:
            raise self.not_a_model_list(
                f"{self.models_url} did not answer JSON; is KB_LLM_URL the server's /v1 URL?"
            ) from None
        return self.served_model(body)

    def not_a_model_list(self, message: str) -> Exception:
        return LLMError(message, kind="malformed")

    def model_missing(self, message: str) -> Exception:
        return LLMError(message, kind="config")

    # -- HTTP --------------------------------------------------------------------------

    def _body(self, messages: Sequence[Message], *, stream: bool) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [m.as_dict() for m in messages],
            "max_tokens": self.config.max_tokens,
            "temperature": self.config.temperature,
            "stream": stream,
        }

    def _stream_once(self, body: dict[str, Any], sent: list[bool]) -> Iterator[ChatChunk]:
        """One streamed request; ``sent[0]`` becomes True once text was given out."""
        try:
            with self._client.stream(
                "POST", self.chat_url, json=body, headers={"Accept": "text/event-stream"}
            ) as resp:
                if not resp.is_success:
                    raise self._http_error(resp, _read_capped(resp, 65536))
                think = ThinkFilter()
                finish: str | None = None
                done = False
                size = 0
                for data in sse_data(resp.iter_lines()):
                    size += len(data)
                    if size > MAX_RESPONSE_BYTES:
                        raise LLMError(
                            f"the LLM server at {self.base_url} streamed more than "
                            f"{MAX_RESPONSE_BYTES // (1024 * 1024)} MiB",
                            kind="malformed",
                        )
                    if data.strip() == "[DONE]":
                        done = True
                        break
                    content, reason = self._delta(data)
                    text = think.feed(content)
                    if text:
                        sent[0] = True
                        yield ChatChunk(text)
                    finish = reason or finish
                tail = think.flush()
                if tail:
                    sent[0] = True
                    yield ChatChunk(tail)
                if not done and finish is None:
                    raise LLMError(
                        f"the LLM server at {self.base_url} closed the stream before the "
                        "answer ended",
                        kind="broken",
                        retryable=True,
                    )
                yield ChatChunk("", finish or "stop")
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        except httpx.InvalidURL as exc:
            raise LLMError(f"invalid KB_LLM_URL: {exc}", kind="config") from None

    def _delta(self, data: str) -> tuple[str, str | None]:
        """The content and finish reason of one streamed chunk."""
        try:
            chunk = json.loads(data)
        except ValueError:
            raise LLMError(
                f"the LLM server at {self.base_url} streamed something that is not JSON: "
                f"{data[:80]!r}",
                kind="malformed",
            ) from None
        if not isinstance(chunk, dict):
            raise LLMError(
                f"the LLM server at {self.base_url} streamed {data[:80]!r}", kind="malformed"
            )
        if chunk.get("error"):
            message = error_message(json.dumps(chunk).encode(), "error", limit=300)
            raise LLMError(
                f"the LLM server at {self.base_url} reported an error: {message}", kind="http"
            )
        choices = chunk.get("choices")
        if not choices:  # a usage-only chunk
            return "", None
        choice = choices[0] if isinstance(choices, list) else None
        if not isinstance(choice, dict):
            raise LLMError(
                f"the LLM server at {self.base_url} streamed a malformed choice", kind="malformed"
            )
        delta = choice.get("delta") or {}
        # reasoning_content / reasoning: a reasoning model's thoughts, never shown.
        content = delta.get("content") if isinstance(delta, dict) else None
        reason = choice.get("finish_reason")
        return (content if isinstance(content, str) else ""), (
            str(reason) if isinstance(reason, str) and reason else None
        )

    def _complete_once(self, body: dict[str, Any]) -> ChatCompletion:
        try:
            with self._client.stream("POST", self.chat_url, json=body) as resp:
                content = _read_capped(resp, MAX_RESPONSE_BYTES)
                if not resp.is_success:
                    raise self._http_error(resp, content)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        except httpx.InvalidURL as exc:
            raise LLMError(f"invalid KB_LLM_URL: {exc}", kind="config") from None
        try:
            answer = json.loads(content)
            choice = answer["choices"][0]
            text = choice["message"].get("content") or ""
            assert isinstance(text, str)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, AssertionError):
            raise LLMError(
                f"the LLM server at {self.base_url} answered something that is not a chat "
                f"completion: {content[:80]!r}",
                kind="malformed",
            ) from None
        reason = choice.get("finish_reason")
        return ChatCompletion(
            text=strip_think(text),
            finish_reason=reason if isinstance(reason, str) else None,
            model=str(answer.get("model") or self.model),
        )

    def _http_error(self, resp: httpx.Response, content: bytes) -> LLMError:
        status = resp.status_code
        return LLMError(
            f"the LLM server at {self.base_url} answered {status}: "
            f"{error_message(content, resp.reason_phrase, limit=300)}{self.hint(status)}",
            kind="http",
            status=status,
            retryable=status in RETRY_STATUSES,
            retry_after=retry_after_seconds(resp),
        )

    def _transport_error(self, exc: httpx.HTTPError) -> LLMError:
        if isinstance(exc, httpx.TimeoutException):
            return LLMError(
                f"the LLM server at {self.base_url} did not answer within "
                f"{self.config.timeout_s:g} s",
                kind="timeout",
            )
        if isinstance(exc, httpx.ConnectError):
            return LLMError(
                f"cannot connect to the LLM server at {self.base_url} "
                f"({exc or 'connection refused'})",
                kind="connection",
                retryable=True,
            )
        return LLMError(
            f"the connection to the LLM server at {self.base_url} failed "
            f"({type(exc).__name__}: {exc or 'no response'})",
            kind="connection",
            retryable=True,
        )


def _read_capped(resp: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)[:limit]


def make_llm(
    settings: Settings, *, transport: httpx.BaseTransport | None = None
) -> ChatClient | None:
    """The configured ChatClient, or None when written answers are off."""
    if not settings.llm_enabled:
        return None
    return ChatClient.from_settings(settings, transport=transport)


def check_llm(client: ChatClient) -> bool:
    """Log whether the LLM server answers and serves our model (run at start-up, in the
    background: a slow server must not hold the web server back)."""
    try:
        entry = client.check()
    except LLMError as exc:
        log.error(
            "written answers will fail: %s (check KB_LLM_URL, KB_LLM_MODEL, KB_LLM_API_KEY)", exc
        )
        return False
    except Exception:
        log.exception("written answers: checking the LLM server failed unexpectedly")
        return False
    context = entry.get("max_model_len")
    if isinstance(context, int) and context < client.config.context_tokens:
        log.warning(
            "the LLM server's context for %s is %d tokens, less than KB_LLM_CONTEXT_TOKENS=%d: "
            "lower KB_LLM_CONTEXT_TOKENS or long prompts will be refused",
            client.model,
            context,
            client.config.context_tokens,
        )
    log.info("written answers: %s at %s is ready", client.model, client.base_url)
    return True
