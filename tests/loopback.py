"""The HTTP plumbing the fake servers on 127.0.0.1 share (tests/embedserver, tests/rerankserver).

The stdlib server gives full control over the socket (a dropped connection, an answer
that comes too late) and ``stop()`` closes the connections clients keep alive, so a
stopped server is really down; ``start()`` again binds the same port.

A fake server subclasses ``LoopbackServer`` with its own ``JSONHandler`` subclass (for
the error body shape its real counterpart answers) and implements ``_get``/``_post``;
what a request does and which faults it meets stays in the fake server.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, Self, TypeVar


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threading server that knows its open connections, so that it can cut them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        owner: LoopbackServer[Any, Any, Any],
        handler: type[JSONHandler],
    ) -> None:
        self.owner = owner
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut every connection still open (``shutdown()`` leaves keep-alive ones be)."""
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class JSONHandler(BaseHTTPRequestHandler):
    """Hands each GET and POST to the owning ``LoopbackServer``; answers JSON."""

    protocol_version = "HTTP/1.1"  # keep-alive, as vLLM (uvicorn) does
    server: LoopbackHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def route(self) -> str:
        """The path without query string or trailing slash."""
        return self.path.split("?")[0].rstrip("/")

    def do_GET(self) -> None:
        self.server.owner._get(self)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.owner._post(self, body)

    def send_body(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        """Answer ``data`` as JSON (it need not be valid: a fault may send a broken body)."""
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

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(payload).encode(), headers)

    def send_model_list(self, model: str, max_model_len: int) -> None:
        """vLLM's ``GET /v1/models`` answer for the one model it serves."""
        self.send_json(
            200,
            {
                "object": "list",
                "data": [
                    {
                        "id": model,
                        "object": "model",
                        "created": int(time.time()),
                        "owned_by": "vllm",
                        "root": model,
                        "parent": None,
                        "max_model_len": max_model_len,
                        "permission": [],
                    }
                ],
            },
        )

    def drop(self) -> None:
        """Close the connection without a response."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


H = TypeVar("H", bound=JSONHandler)
F = TypeVar("F")  # what a fake server does to a request instead of answering it
R = TypeVar("R")  # one request as the fake server saw it


class LoopbackServer(Generic[H, F, R]):
    """Start, stop and address a fake server on 127.0.0.1; a context manager too.

    It also keeps what every fake server keeps: the requests it saw (``received``) and a
    queue of injected faults (``inject``), each taken by the next request that can meet
    one; which requests those are and what a fault does stays in the fake server.
    """

    def __init__(self, handler: type[H], thread_name: str) -> None:
        self._handler = handler
        self._thread_name = thread_name  # the serving thread is named "<this>-<port>"
        self.port = 0
        self._httpd: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()  # set by stop(): held-back answers give up
        self.slow_started = threading.Event()  # set when a slow fault begins to wait
        self._faults: queue.Queue[F] = queue.Queue()
        self._received: list[R] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> Self:
        """Listen (on the same port as before after a stop)."""
        assert self._httpd is None, "already running"
        self._stopping = threading.Event()
        self._httpd = LoopbackHTTPServer(("127.0.0.1", self.port), self, self._handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"{self._thread_name}-{self.port}",
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def inject(self, *faults: F) -> None:
        for f in faults:
            self._faults.put(f)

    @property
    def received(self) -> list[R]:
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        with self._lock:
            self._received.clear()

    def _record(self, r: R) -> None:
        with self._lock:
            self._received.append(r)

    def _next_fault(self) -> F | None:
        try:
            return self._faults.get_nowait()
        except queue.Empty:
            return None

    def _hold_back(self, h: H, seconds: float) -> bool:
        """Wait ``seconds`` before answering; False (and the connection closed) on a stop."""
        self.slow_started.set()
        if self._stopping.wait(seconds):
            h.close_connection = True
            return False
        return True

    def _get(self, h: H) -> None:
        raise NotImplementedError

    def _post(self, h: H, body: bytes) -> None:
        raise NotImplementedError
