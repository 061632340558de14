"""A real HTTP server on 127.0.0.1 that speaks vLLM's rerank API (``POST /v1/rerank``).

It scores each document by token overlap with the query (case-folded words; CJK text as
character bigrams), so its order means something a test can predict. It records every
request and applies injected faults, one per request to ``/v1/rerank``, in order:

    with RerankServer() as server:
        server.inject(RerankFault.error(503), RerankFault.slow(2.0), RerankFault.drop())
"""

from __future__ import annotations

import contextlib
import json
import math
import queue
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

RERANK_MODEL = "Qwen/Qwen3-Reranker-0.6B"

_WORD = re.compile(r"\w+")
_CJK_RUN = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+)")


def tokens(text: str) -> set[str]:
    """Case-folded words; a run of CJK characters gives its bigrams (or the lone char)."""
    out: set[str] = set()
    for word in _WORD.findall(text.casefold()):
        for i, part in enumerate(_CJK_RUN.split(word)):
            if not part:
                continue
            if i % 2 == 0 or len(part) == 1:  # Latin letters and digits; a lone CJK char
                out.add(part)
            else:
                out.update(part[j : j + 2] for j in range(len(part) - 1))
    return out


def relevance(query: str, document: str) -> float:
    """Token overlap in [0, 1]: shared tokens over sqrt(|query| * |document|)."""
    q, d = tokens(query), tokens(document)
    if not q or not d:
        return 0.0
    return len(q & d) / math.sqrt(len(q) * len(d))


@dataclass(frozen=True)
class RerankFault:
    """What the server does to one request to /v1/rerank instead of answering it."""

    kind: str  # ok | status | slow | drop | malformed | bad_index | duplicate | bad_score
    status: int = 0
    message: str = ""
    style: str = "openai"  # error body: openai {"error": {...}} | vllm {"message"} | detail
    seconds: float = 0.0

    @classmethod
    def ok(cls) -> RerankFault:
        """Answer normally (to place the next fault on a later request)."""
        return cls("ok")

    @classmethod
    def error(
        cls, status: int = 500, message: str = "Internal Server Error", style: str = "openai"
    ) -> RerankFault:
        return cls("status", status=status, message=message, style=style)

    @classmethod
    def slow(cls, seconds: float) -> RerankFault:
        """Answer only after ``seconds`` (past the client's timeout)."""
        return cls("slow", seconds=seconds)

    @classmethod
    def drop(cls) -> RerankFault:
        """Close the connection without a response."""
        return cls("drop")

    @classmethod
    def malformed(cls) -> RerankFault:
        """200 with a body that is not JSON."""
        return cls("malformed")

    @classmethod
    def bad_index(cls) -> RerankFault:
        """A result whose index is past the documents sent."""
        return cls("bad_index")

    @classmethod
    def duplicate(cls) -> RerankFault:
        """The same index twice."""
        return cls("duplicate")

    @classmethod
    def bad_score(cls) -> RerankFault:
        """A score that is a string."""
        return cls("bad_score")


@dataclass
class RerankRequest:
    """One request as the server saw it."""

    method: str
    path: str
    authorization: str | None
    model: str | None = None
    query: str | None = None
    documents: list[str] = field(default_factory=list)
    top_n: int | None = None
    fault: str | None = None


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: RerankServer) -> None:
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

    def send_body(self, status: int, data: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (timeout) or the server is stopping
            self.close_connection = True

    def send_json(self, status: int, payload: Any) -> None:
        self.send_body(status, json.dumps(payload).encode())

    def send_error_json(self, status: int, message: str, style: str = "openai") -> None:
        if style == "detail":
            self.send_json(status, {"detail": message})
            return
        kinds = {400: "BadRequestError", 401: "invalid_request_error", 404: "NotFoundError"}
        kind = kinds.get(status, "InternalServerError" if status >= 500 else "Error")
        error = {"message": message, "type": kind, "param": None, "code": status}
        if style == "vllm":
            self.send_json(status, {"object": "error", **error})
        else:
            self.send_json(status, {"error": error})


class RerankServer:
    """A fake vLLM rerank server; a context manager that starts and stops it."""

    def __init__(self, *, model: str = RERANK_MODEL, api_key: str | None = None) -> None:
        self.model = model
        self.api_key = api_key
        self.max_results: int | None = None  # return at most this many, whatever top_n says
        self.port = 0
        self.slow_started = threading.Event()
        self._faults: queue.Queue[RerankFault] = queue.Queue()
        self._received: list[RerankRequest] = []
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- control -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> RerankServer:
        assert self._httpd is None, "already running"
        self._stopping = threading.Event()
        self._httpd = _HTTPServer(("127.0.0.1", self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"rerankserver-{self.port}",
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

    def __enter__(self) -> RerankServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def inject(self, *faults: RerankFault) -> None:
        for f in faults:
            self._faults.put(f)

    @property
    def received(self) -> list[RerankRequest]:
        with self._lock:
            return list(self._received)

    def rerank_requests(self) -> list[RerankRequest]:
        return [r for r in self.received if r.path == "/v1/rerank"]

    def clear(self) -> None:
        with self._lock:
            self._received.clear()

    # -- handling ----------------------------------------------------------------------

    def _authorised(self, h: _Handler) -> bool:
        return self.api_key is None or h.headers.get("Authorization") == f"Bearer {self.api_key}"

    def _unauthorised(self, h: _Handler) -> None:
        h.send_json(
            401,
            {
                "error": {
                    "message": "Incorrect API key provided.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            },
        )

    def _record(self, r: RerankRequest) -> None:
        with self._lock:
            self._received.append(r)

    def _get(self, h: _Handler) -> None:
        path = h.path.split("?")[0].rstrip("/")
        self._record(RerankRequest("GET", path, h.headers.get("Authorization")))
        if path == "/health":
            h.send_json(200, {})
        elif not self._authorised(h):
            self._unauthorised(h)
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
                            "max_model_len": 40960,
                            "permission": [],
                        }
                    ],
                },
            )
        else:
            h.send_json(404, {"detail": "Not Found"})

    def _post(self, h: _Handler, body: bytes) -> None:
        path = h.path.split("?")[0].rstrip("/")
        if path != "/v1/rerank":
            self._record(RerankRequest("POST", path, h.headers.get("Authorization")))
            h.send_json(404, {"detail": "Not Found"})
            return
        try:
            req = json.loads(body)
            query, documents = req["query"], req["documents"]
            top_n = req.get("top_n")
            assert isinstance(query, str) and isinstance(documents, list)
            assert all(isinstance(d, str) for d in documents)
            assert top_n is None or (isinstance(top_n, int) and not isinstance(top_n, bool))
        except (ValueError, KeyError, TypeError, AssertionError):
            self._record(RerankRequest("POST", path, h.headers.get("Authorization")))
            h.send_error_json(400, "invalid request body")
            return
        try:
            fault: RerankFault | None = self._faults.get_nowait()
        except queue.Empty:
            fault = None
        self._record(
            RerankRequest(
                "POST",
                path,
                h.headers.get("Authorization"),
                model=req.get("model"),
                query=query,
                documents=list(documents),
                top_n=top_n,
                fault=fault.kind if fault else None,
            )
        )
        if not self._authorised(h):
            self._unauthorised(h)
            return
        if fault is not None:
            if fault.kind == "status":
                h.send_error_json(fault.status, fault.message, fault.style)
                return
            if fault.kind == "drop":
                h.close_connection = True
                with contextlib.suppress(OSError):
                    h.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault.kind == "malformed":
                h.send_body(200, b'{"results": [{"index": 0, "relevance_sc')
                return
            if fault.kind == "slow":
                self.slow_started.set()
                if self._stopping.wait(fault.seconds):
                    h.close_connection = True
                    return
        if req.get("model") != self.model:
            h.send_error_json(404, f"The model `{req.get('model')}` does not exist.")
            return
        if not documents:
            h.send_error_json(400, "documents must not be empty")
            return
        scored = sorted(
            ((relevance(query, d), i) for i, d in enumerate(documents)),
            key=lambda s: (-s[0], s[1]),
        )
        if top_n is not None and top_n > 0:
            scored = scored[:top_n]
        if self.max_results is not None:
            scored = scored[: self.max_results]
        results: list[dict[str, Any]] = [
            {"index": i, "document": {"text": documents[i]}, "relevance_score": score}
            for score, i in scored
        ]
        if fault is not None and results:
            if fault.kind == "bad_index":
                results[0]["index"] = len(documents) + 3
            elif fault.kind == "duplicate" and len(results) > 1:
                results[1]["index"] = results[0]["index"]
            elif fault.kind == "bad_score":
                results[0]["relevance_score"] = "high"
        total = sum(len(tokens(query)) + len(tokens(d)) for d in documents)
        h.send_json(
            200,
            {
                "id": f"rerank-{uuid.uuid4().hex}",
                "model": self.model,
                "usage": {"total_tokens": total},
                "results": results,
            },
        )
