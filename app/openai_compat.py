"""What the clients of OpenAI-compatible servers (vLLM, SGLang, TEI, ...) share: the
embedding client (``app.embedding.openai``) and the rerank client (``app.rerank``).

- :class:`CompatClient`: the base URL (with ``/v1``), the API key as a Bearer token, the
  pooled ``httpx.Client`` with its timeout, and closing it;
- :func:`error_message` and :meth:`CompatClient.hint`: an error answer in the server's own
  words, and what to check in the settings for 401, 403 and 404;
- :meth:`CompatClient.served_model`: our model's entry in a ``GET {base_url}/models``
  answer.

How each client sends, retries and reports a failure stays its own: the embedder retries
with backoff, the reranker (a person is waiting) never does.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any, ClassVar, Self

import httpx


def error_message(
    content: bytes, reason: str, *, limit: int, encoding: str = "utf-8", join_lists: bool = True
) -> str:
    """The server's own words in an error answer, at most ``limit`` characters: OpenAI's
    {"error": {"message"}}, vLLM's {"message"}, FastAPI's {"detail"}, {"error": "..."}, or
    the body (``reason``, the status's phrase, when it is empty).

    ``join_lists``: FastAPI's list of validation errors becomes their messages joined;
    without it the list is kept as it is (the embedder looks for a field name in it).
    """
    try:
        body = json.loads(content)
    except ValueError:
        return content.decode(encoding, "replace").strip()[:limit] or reason
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:limit]
        for key in ("message", "detail", "error"):
            value = body.get(key)
            if value:
                if join_lists and isinstance(value, list):
                    value = "; ".join(
                        str(v.get("msg", v)) if isinstance(v, dict) else str(v) for v in value
                    )
                return str(value)[:limit]
    return str(body)[:limit]


class CompatClient:
    """An HTTP client for one model on an OpenAI-compatible server.

    Subclasses name the server for messages (``server``, e.g. "rerank server") and the
    prefix of its settings (``env_prefix``, e.g. "KB_RERANK"), and say which exceptions a
    ``/models`` answer that is not a model list, or that lacks the model, raises.
    Thread-safe; ``close()`` when done (or use ``with``).
    """

    server: ClassVar[str]
    env_prefix: ClassVar[str]

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None,
        timeout_s: float,
        limits: httpx.Limits,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(
            headers=headers, timeout=timeout_s, transport=transport, limits=limits
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def models_url(self) -> str:
        return f"{self.base_url}/models"

    def hint(self, status: int) -> str:
        """What to check for an error ``status`` (with a leading space), or ""."""
        return {
            401: f" (check {self.env_prefix}_API_KEY)",
            403: f" (check {self.env_prefix}_API_KEY)",
            404: f" (check {self.env_prefix}_URL, which ends in /v1, and {self.env_prefix}_MODEL)",
        }.get(status, "")

    def served_model(self, body: Any) -> dict[str, Any]:
        """Our model's entry in the ``/models`` answer ``body`` ({"data": [{"id", ...}]}).

        Raises what :meth:`not_a_model_list` and :meth:`model_missing` return.
        """
        try:
            entries = [e for e in body["data"] if isinstance(e, dict)]
            ids = [str(e["id"]) for e in entries]
        except (KeyError, TypeError):
            raise self.not_a_model_list(
                f"{self.models_url} did not answer a model list; is {self.env_prefix}_URL the "
                "server's /v1 URL?"
            ) from None
        if self.model not in ids:
            raise self.model_missing(
                f"the {self.server} at {self.base_url} does not serve model {self.model!r} "
                f"({self.env_prefix}_MODEL); it serves: {', '.join(map(repr, ids)) or 'no models'}"
            )
        return entries[ids.index(self.model)]

    def not_a_model_list(self, message: str) -> Exception:
        """The error for a ``/models`` answer that is not a model list."""
        raise NotImplementedError

    def model_missing(self, message: str) -> Exception:
        """The error for a server that does not serve our model."""
        raise NotImplementedError


def retry_after_seconds(resp: httpx.Response) -> float | None:
    """The seconds a ``Retry-After`` header asks for; None without one, or for an HTTP
    date (rare from these servers: the caller's own backoff applies)."""
    try:
        return max(0.0, float(resp.headers.get("Retry-After", "")))
    except ValueError:
        return None
