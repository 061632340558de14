"""Query latency benchmark: p50/p95 per stage over the dev-eval queries; prints JSON.

    python bench/query.py --data-dir DIR [--queries FILE] [--repeat 3] [--modes hybrid,dense]

DIR is a data folder filled by bench/ingest_corpus.py --data-dir DIR (same embedder).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from common import DEFAULT_QUERIES, load_queries, parse_weights, pct

from app.runtime import Runtime
from app.search.service import search
from app.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--queries", type=Path, default=DEFAULT_QUERIES)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--modes", default="hybrid,dense,lexical", help="comma-separated")
    ap.add_argument(
        "--weights", default="", help="fusion levers, e.g. translated=0,sentences=0,verbatim=0"
    )
    args = ap.parse_args()

    rt = Runtime.create(Settings(data_dir=args.data_dir))
    with rt.sessions() as s:
        col = rt.collection(s)
        embedder = col.embedder
    queries = load_queries(args.queries)
    weights = parse_weights(args.weights)
    search(rt, query=queries[0], k=args.k)  # load the model and the index first
    by_mode: dict[str, dict[str, dict[str, float]]] = {}
    for mode in args.modes.split(","):
        timings: dict[str, list[float]] = {}
        for _ in range(args.repeat):
            for q in queries:
                result = search(rt, query=q, k=args.k, mode=mode, weights=weights)
                for stage, ms in result.timings.items():
                    timings.setdefault(stage, []).append(ms)
        by_mode[mode] = {
            stage: {"p50": pct(v, 0.5), "p95": pct(v, 0.95), "mean": round(statistics.fmean(v), 2)}
            for stage, v in timings.items()
        }
    rt.close()
    out = {
        "embedder": embedder,
        "weights": args.weights,
        "queries": len(queries) * args.repeat,
        "ms": by_mode,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
