"""A loopback stand-in for a GPU embedding server: OpenAI-compatible /v1/embeddings that
answers in a fixed time per token, one batch at a time, like one saturated GPU.

Vectors are pseudo-random unit vectors derived from each text (deterministic), so the
benchmark measures the plumbing, not retrieval quality.
"""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import multiprocessing.process
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from app.text.tokens import count_tokens


class SimGPU:
    def __init__(self, *, tokens_per_s: float, dim: int, overhead_s: float = 0.002) -> None:
        self.tokens_per_s = tokens_per_s
        self.dim = dim
        self.overhead_s = overhead_s
        self._gpu = threading.Lock()  # one batch on the GPU at a time
        self.busy_s = 0.0
        self.tokens = 0
        self.intervals: list[tuple[float, float]] = []  # (start, end) of each batch

    def embed(self, texts: list[str]) -> np.ndarray:
        tokens = sum(count_tokens(t) for t in texts)
        with self._gpu:
            t0 = time.perf_counter()
            deadline = t0 + self.overhead_s + tokens / self.tokens_per_s
            vecs = np.stack([self._vector(t) for t in texts])
            while (left := deadline - time.perf_counter()) > 0:
                time.sleep(left)
            self.busy_s += time.perf_counter() - t0
            self.intervals.append((t0, time.perf_counter()))
            self.tokens += tokens
        return vecs

    def _vector(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
        v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
        return v / np.linalg.norm(v)


def serve(gpu: SimGPU, model: str = "sim/Qwen3-Embedding-4B") -> tuple[ThreadingHTTPServer, str]:
    """Start the server on a free loopback port in a daemon thread; returns it and its base URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/reset":
                gpu.busy_s, gpu.tokens, gpu.intervals = 0.0, 0, []
                self._send(200, {})
            elif self.path.rstrip("/") == "/stats":
                self._send(
                    200, {"busy_s": gpu.busy_s, "tokens": gpu.tokens, "intervals": gpu.intervals}
                )
            elif self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": model, "object": "model"}]})
            else:
                self._send(404, {"object": "error", "message": "not found", "code": 404})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            req = json.loads(self.rfile.read(length))
            texts = req["input"] if isinstance(req["input"], list) else [req["input"]]
            vecs = gpu.embed(texts)
            dims = req.get("dimensions")
            if dims:
                vecs = vecs[:, :dims] / np.linalg.norm(vecs[:, :dims], axis=1, keepdims=True)
            b64 = req.get("encoding_format") == "base64"
            data = [
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode()
                    if b64
                    else v.tolist(),
                }
                for i, v in enumerate(vecs)
            ]
            n = sum(count_tokens(t) for t in texts)
            self._send(
                200,
                {
                    "object": "list",
                    "data": data,
                    "model": model,
                    "usage": {"prompt_tokens": n, "total_tokens": n},
                },
            )

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


def _run(tokens_per_s: float, dim: int, model: str, ports: Any) -> None:
    server, _url = serve(SimGPU(tokens_per_s=tokens_per_s, dim=dim), model)
    ports.put(server.server_address[1])
    threading.Event().wait()


def serve_in_process(
    *, tokens_per_s: float, dim: int, model: str
) -> tuple[multiprocessing.process.BaseProcess, str]:
    """The same server in its own process, as a GPU server is its own machine: its work
    does not compete with the pipeline for this process's interpreter lock."""
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    proc = ctx.Process(target=_run, args=(tokens_per_s, dim, model, ports), daemon=True)
    proc.start()
    port = ports.get(timeout=60)
    return proc, f"http://127.0.0.1:{port}/v1"
