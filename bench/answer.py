"""Written answers: time to first token and our side's overhead, against the fake chat
server (tests/chatserver) with a fixed delay before each piece of the answer; prints JSON.

    python bench/answer.py [--repeat 5] [--token-delay 0.02] [--stream-path api|service]

The sample documents (tests/samples.py, English and Chinese) are ingested with the CPU
embedder into a temporary folder; each question runs through ``POST /api/v1/answer`` with
``"stream": true`` (in-process ASGI, SSE parsed as a client would) or the service alone.
The fake server measures its own time per answer (its delays), so:

- ``ttft_ms``: from sending the question to the first ``token`` event;
- ``ttft_overhead_ms``: ``ttft_ms`` less the server's first delay: retrieval (embedding
  the question, FAISS, full-text, fusion) + prompt building + the relay;
- ``overhead_ms``: the whole answer's time less the server's: what our side adds.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import pct

from app.answer.service import stream_answer
from app.auth.models import Role
from app.llm import ChatClient, ChatConfig
from app.runtime import Runtime
from app.settings import Settings
from tests.chatserver import ChatServer
from tests.factories import settle, store_upload, token_for
from tests.samples import EXPENSES_MD, GUIDE_MD, LEAVE_MD, RELEASE_MD

QUESTIONS = [
    "How long are backups kept?",
    "How many days of paid annual leave do employees get after one year?",
    "When do production deploys happen?",
    "病假超过三天需要什么？",
    "备份保留多少天？",
    "出差结束后多久必须提交报销？",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--token-delay", type=float, default=0.02, help="seconds before each piece")
    ap.add_argument("--stream-path", choices=["api", "service"], default="api")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp, ChatServer(token_delay=args.token_delay) as chat:
        rt = Runtime.create(Settings(data_dir=Path(tmp)))
        for name, text in [("guide.md", GUIDE_MD), ("leave.md", LEAVE_MD),
                           ("release.md", RELEASE_MD), ("expenses.md", EXPENSES_MD)]:  # fmt: skip
            store_upload(rt, name, text.encode())
        settle(rt)
        rt.llm = ChatClient(ChatConfig(base_url=chat.url, model=chat.model, timeout_s=30))
        run = _run_api if args.stream_path == "api" else _run_service
        runs = run(rt, chat, args)
        rt.close()
    ttft, ttft_over, total, over, retrieve = (list(x) for x in zip(*runs, strict=True))
    out = {
        "path": args.stream_path,
        "token_delay_ms": args.token_delay * 1000,
        "answers": len(runs),
        "ttft_ms": {"p50": pct(ttft, 0.5), "p95": pct(ttft, 0.95)},
        "ttft_overhead_ms": {"p50": pct(ttft_over, 0.5), "p95": pct(ttft_over, 0.95)},
        "total_ms": {"p50": pct(total, 0.5), "p95": pct(total, 0.95)},
        "overhead_ms": {"p50": pct(over, 0.5), "p95": pct(over, 0.95)},
        "retrieve_ms": {"p50": pct(retrieve, 0.5), "p95": pct(retrieve, 0.95)},
    }
    print(json.dumps(out))


Run = tuple[float, float, float, float, float]


def _server_time(chat: ChatServer) -> float:
    """The fake server's own time for the last answer (its delays, as it measured), ms."""
    return chat.chat_requests()[-1].seconds * 1000


def _run_api(rt: Runtime, chat: ChatServer, args: argparse.Namespace) -> list[Run]:
    from fastapi.testclient import TestClient

    from app.main import create_app

    token = token_for(rt, "bench", Role.READER)
    runs: list[Run] = []
    with TestClient(create_app(runtime=rt)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        client.post("/api/v1/answer", json={"q": QUESTIONS[0]})  # load the model first
        for _ in range(args.repeat):
            for q in QUESTIONS:
                t0 = time.perf_counter()
                first: float | None = None
                done: dict[str, object] = {}
                with client.stream("POST", "/api/v1/answer", json={"q": q, "stream": True}) as r:
                    for line in r.iter_lines():
                        if line == "event: token" and first is None:
                            first = time.perf_counter() - t0
                        elif line.startswith("data: ") and '"passages"' in line:
                            done = json.loads(line[6:])
                total = (time.perf_counter() - t0) * 1000
                assert first is not None and done.get("answer"), (q, done)
                timings = done["timings"]
                assert isinstance(timings, dict)
                runs.append(_run(first * 1000, total, chat, args.token_delay, timings))
    return runs


def _run_service(rt: Runtime, chat: ChatServer, args: argparse.Namespace) -> list[Run]:
    runs: list[Run] = []
    list(stream_answer(rt, question=QUESTIONS[0]))
    for _ in range(args.repeat):
        for q in QUESTIONS:
            t0 = time.perf_counter()
            first: float | None = None
            timings: dict[str, float] = {}
            for event in stream_answer(rt, question=q):
                if event.event == "token" and first is None:
                    first = time.perf_counter() - t0
                if event.event == "done":
                    timings = event.data()["timings"]
            total = (time.perf_counter() - t0) * 1000
            assert first is not None, q
            runs.append(_run(first * 1000, total, chat, args.token_delay, timings))
    return runs


def _run(first_ms: float, total_ms: float, chat: ChatServer, delay: float,
         timings: dict[str, float]) -> Run:  # fmt: skip
    server_ms = _server_time(chat)
    return (
        first_ms,
        first_ms - delay * 1000,
        total_ms,
        total_ms - server_ms,
        float(timings.get("retrieve_ms", 0.0)),
    )


if __name__ == "__main__":
    main()
