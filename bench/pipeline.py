"""Pipeline overhead: ingest through a simulated GPU server vs a bare client; prints JSON.

    python bench/pipeline.py [CORPUS] --tokens-per-s 20000 --concurrency 4 --workers 2

A loopback server (bench/simserver.py) answers /v1/embeddings in a fixed time per token,
one batch at a time, as a saturated GPU does. First a bare client sends every chunk text
of the corpus straight to it at the given concurrency; then the real pipeline ingests the
corpus (parse, chunk, embed, store in SQLite) with `--workers` worker processes, each
keeping `--concurrency` requests in flight. The ratio of the two throughputs (tokens per
second) shows what the pipeline costs: 1.0 means the GPU never waited for it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import DEFAULT_CORPUS, ROOT
from sqlalchemy import func, select

from app.cli_ingest import iter_files
from app.db import transaction
from app.documents import service as documents
from app.documents.models import Document
from app.embedding.openai import OpenAIConfig, OpenAIEmbedder
from app.runtime import Runtime
from app.settings import Settings
from app.text.tokens import count_tokens
from bench.simserver import serve_in_process
from ingest.chunk import chunk
from ingest.parse import parse

MODEL = "sim/Qwen3-Embedding-4B"


def chunk_texts(files: list[Path], max_tokens: int) -> list[str]:
    texts: list[str] = []
    for path in files:
        try:
            texts += [c.embed_text for c in chunk(parse(path), max_tokens=max_tokens)]
        except Exception:  # a file the pipeline would fail is left out of both runs
            continue
    return texts


def _upload(rt: Runtime, files: list[tuple[str, bytes]]) -> list[int]:
    """Queue files in one transaction: workers see all of them at once."""
    ids = []
    with transaction(rt.sessions) as s:
        col = rt.collection(s)
        for name, data in files:
            staged = documents.stage_upload(
                io.BytesIO(data), filename=name, files_dir=rt.settings.files_dir, max_bytes=1 << 30
            )
            added = documents.add_document(
                s, collection=col, staged=staged, files_dir=rt.settings.files_dir
            )
            ids.append(added.document.id)
    return ids


def _wait_all_final(rt: Runtime) -> None:
    while True:
        with rt.sessions() as s:
            statuses = list(s.scalars(select(Document.status)))
        if statuses and all(st in ("ready", "failed") for st in statuses):
            return
        time.sleep(0.02)


def _idle_gaps(intervals: list[list[float]], parts: int = 10) -> list[float]:
    """Seconds the simulated GPU sat idle in each tenth of the run (where the pipeline lags)."""
    if not intervals:
        return []
    start, end = intervals[0][0], intervals[-1][1]
    step = (end - start) / parts
    idle = [step] * parts
    for a, b in intervals:
        for i in range(parts):
            lo, hi = start + i * step, start + (i + 1) * step
            idle[i] -= max(0.0, min(b, hi) - max(a, lo))
    return [round(x, 2) for x in idle]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--tokens-per-s", type=float, default=20000.0)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2, help="jobs at once in each worker process")
    args = ap.parse_args()

    files = list(iter_files([args.corpus]))
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp(prefix="kb-pipe-")),
        embedder="openai",
        embedding_model=MODEL,
        embedding_url="http://placeholder/v1",
        embed_batch_size=args.batch_size,
        embedding_concurrency=args.concurrency,
    )
    texts = chunk_texts(files, settings.chunk_max_tokens)
    tokens = sum(count_tokens(t) for t in texts)

    # 1. The bare client: all chunk texts, same batch size, same requests in flight.
    server, url = serve_in_process(tokens_per_s=args.tokens_per_s, dim=args.dim, model=MODEL)
    bare = OpenAIEmbedder(
        OpenAIConfig(
            base_url=url,
            model=MODEL,
            batch_size=args.batch_size,
            concurrency=args.concurrency * args.workers,
        )
    )
    t0 = time.perf_counter()
    bare.embed_documents(texts)
    bare_s = time.perf_counter() - t0
    bare.close()
    server.terminate()

    # 2. The pipeline. Workers are processes, as deployed (`kb worker` × N): parsing is
    # CPU-bound Python, and processes parse in parallel where threads share one GIL.
    server, url = serve_in_process(tokens_per_s=args.tokens_per_s, dim=args.dim, model=MODEL)
    settings = settings.model_copy(update={"embedding_url": url})
    rt = Runtime.create(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env.update(
        KB_DATA_DIR=str(settings.data_dir),
        KB_EMBEDDER="openai",
        KB_EMBEDDING_URL=url,
        KB_EMBEDDING_MODEL=MODEL,
        KB_EMBED_BATCH_SIZE=str(args.batch_size),
        KB_EMBEDDING_CONCURRENCY=str(args.concurrency),
        KB_WORKER_POLL_SECONDS="0.05",
        KB_WORKER_THREADS=str(args.threads),
        OMP_NUM_THREADS="1",
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(args.workers)
    ]
    try:
        # Warm up, as long-running workers are: each thread ingests one small PDF first
        # (imports, the embedder's start-up check), outside the measurement.
        warm = min(files, key=lambda p: p.stat().st_size if p.suffix == ".pdf" else 1 << 60)
        _upload(
            rt,
            [
                (f"warm-up-{i}.pdf", warm.read_bytes() + b"\n%" + bytes(str(i), "ascii"))
                for i in range(args.workers * args.threads)
            ],
        )
        _wait_all_final(rt)
        httpx.get(url.removesuffix("/v1") + "/reset")
        corpus_ids = _upload(rt, [(p.name, p.read_bytes()) for p in files])
        t0 = time.perf_counter()
        _wait_all_final(rt)
        pipe_s = time.perf_counter() - t0
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait(timeout=30)
    with rt.sessions() as s:
        ready = s.scalar(
            select(func.count(Document.id)).where(
                Document.id.in_(corpus_ids), Document.status == "ready"
            )
        )
    stats = httpx.get(url.removesuffix("/v1") + "/stats").json()
    busy_s = stats["busy_s"]
    gaps = _idle_gaps(stats["intervals"])
    server.terminate()
    rt.close()

    print(
        json.dumps(
            {
                "simulated_tokens_per_s": args.tokens_per_s,
                "documents": len(files),
                "ready": ready,
                "chunks": len(texts),
                "tokens": tokens,
                "worker_processes": args.workers,
                "threads_per_worker": args.threads,
                "concurrency_per_worker": args.concurrency,
                "bare_client_s": round(bare_s, 2),
                "pipeline_s": round(pipe_s, 2),
                "gpu_busy_in_pipeline": round(busy_s / pipe_s, 3),
                "ratio": round(bare_s / pipe_s, 3),
                "gpu_idle_s_by_tenth_of_the_run": gaps,
            },
        )
    )


if __name__ == "__main__":
    main()
