"""Parse throughput: every file of a corpus through ``ingest.parse.parse`` in a pool of N
worker processes, for each N; then chunking on its own. Prints JSON.

    python bench/parse.py [CORPUS] [--processes 1,2,4] [--repeat 1]

CORPUS defaults to ../shared/dev-eval/corpus. One task per file, biggest files first (so a
big PDF does not start last and hold up the end); the pool is started and warmed before
the clock starts, so the figures are parsing, not Python start-up. Each worker is a
forkserver child, as the ingest sandbox's parser processes are, without their limits.

Per process count: wall seconds, files, pages (PDF pages; Markdown has none), pages/s,
MB/s, and the speed-up over one process. For one process also the seconds (and pages)
of each file.
``cpu_s`` sums the per-file seconds the workers measured: when it grows with N, the
cores (or memory bandwidth) are shared by more than the pool. Chunking (``ingest.chunk.chunk`` at --chunk-max-tokens) is timed separately, in this
process, over the documents parsed. ``cpu_count`` is the machine's ``os.cpu_count()``:
pages/s stops growing past it.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from common import DEFAULT_CORPUS

from app.cli_ingest import iter_files
from ingest.chunk import chunk
from ingest.errors import IngestError
from ingest.types import ParsedDocument


def _quiet() -> None:
    # pypdf warns about every odd object; thousands of lines would swamp the JSON.
    logging.disable(logging.ERROR)


def _warm(_: int) -> int:
    from ingest.parse import parse  # noqa: F401  (already imported by the forkserver)

    time.sleep(0.2)  # long enough that every worker gets one, so all are started
    return os.getpid()


def _parse_one(path: str) -> tuple[str, float, ParsedDocument | None, str | None]:
    from ingest.parse import parse

    t0 = time.perf_counter()
    try:
        doc: ParsedDocument | None = parse(Path(path))
        error = None
    except IngestError as exc:
        doc, error = None, exc.reason
    return path, time.perf_counter() - t0, doc, error


def run(files: list[Path], processes: int) -> dict[str, object]:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["ingest.parse"])
    with ProcessPoolExecutor(max_workers=processes, mp_context=ctx, initializer=_quiet) as pool:
        workers = set(pool.map(_warm, range(processes * 2)))
        t0 = time.perf_counter()
        results = list(pool.map(_parse_one, [str(f) for f in files]))
        wall = time.perf_counter() - t0
    docs = {path: doc for path, _, doc, _ in results}
    pages = sum((doc.page_count or 0) for doc in docs.values() if doc is not None)
    size = sum(f.stat().st_size for f in files)
    return {
        "processes": processes,
        "workers_started": len(workers),
        "wall_s": round(wall, 3),
        "files": len(files),
        "failed": {Path(p).name: e for p, _, _, e in results if e},
        "pages": pages,
        "pages_per_s": round(pages / wall, 1),
        "mb_per_s": round(size / 1e6 / wall, 2),
        "files_per_s": round(len(files) / wall, 2),
        "cpu_s": round(sum(s for _, s, _, _ in results), 3),
        "_per_file": {
            Path(p).name: {"s": round(s, 3), "pages": d.page_count if d else None}
            for p, s, d, _ in results
        },
        "_docs": docs,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument(
        "--processes",
        default=None,
        help="comma-separated pool sizes (default: 1, 2, 4 ... up to twice the CPU count)",
    )
    ap.add_argument("--repeat", type=int, default=1, help="runs per pool size; the best is kept")
    ap.add_argument("--chunk-max-tokens", type=int, default=400)
    args = ap.parse_args()

    cpus = os.cpu_count() or 1
    if args.processes:
        counts = [int(n) for n in args.processes.split(",")]
    else:
        counts = [1]
        while counts[-1] * 2 <= 2 * cpus:
            counts.append(counts[-1] * 2)
    # Biggest first: one task per file, and the longest ones must not start last.
    files = sorted(iter_files([args.corpus]), key=lambda f: f.stat().st_size, reverse=True)
    _quiet()
    load_before = round(os.getloadavg()[0], 2)

    runs = []
    for n in counts:
        best = min((run(files, n) for _ in range(args.repeat)), key=lambda r: r["wall_s"])  # type: ignore[arg-type, return-value]
        runs.append(best)
    base = runs[0]["wall_s"] if counts[0] == 1 else None
    docs: dict[str, ParsedDocument | None] = runs[0]["_docs"]  # type: ignore[assignment]
    per_file = runs[0]["_per_file"] if counts[0] == 1 else None
    for r in runs:
        r.pop("_docs")
        r.pop("_per_file")
        if base:
            r["speedup"] = round(base / r["wall_s"], 2)  # type: ignore[operator]

    parsed = [d for d in docs.values() if d is not None]
    t0 = time.perf_counter()
    chunks = sum(len(chunk(d, max_tokens=args.chunk_max_tokens)) for d in parsed)
    chunk_s = time.perf_counter() - t0
    pages = sum(d.page_count or 0 for d in parsed)
    print(
        json.dumps(
            {
                "corpus": str(args.corpus),
                "cpu_count": os.cpu_count(),
                # Other work on the machine slows every run; pages/s is only comparable
                # between runs made at a similar load.
                "load_avg_1m_before": load_before,
                "files": len(files),
                "pdf_files": sum(f.suffix.lower() == ".pdf" for f in files),
                "bytes": sum(f.stat().st_size for f in files),
                "runs": runs,
                "per_file_s_processes_1": per_file,
                "chunk": {
                    "max_tokens": args.chunk_max_tokens,
                    "documents": len(parsed),
                    "chunks": chunks,
                    "seconds": round(chunk_s, 3),
                    "pages_per_s": round(pages / max(chunk_s, 1e-9), 1),
                    "chunks_per_s": round(chunks / max(chunk_s, 1e-9), 1),
                },
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
