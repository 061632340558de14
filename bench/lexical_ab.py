"""The SQLite lexical leg with and without ranking inside FTS5 first (``_fts_first``).

    python bench/lexical_ab.py --data-dir D [--queries 60] [--k 40] [--repeat 2]

D is a SQLite data folder (bench/scale.py --data-dir keeps one; bench/ingest_corpus.py
makes one from the dev-eval corpus). Each query runs both ways back to back, so both see
the same machine; ``symdiff`` counts result ids that differ between them (0: the same
results). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import DEFAULT_QUERIES, load_queries, pct

import app.search.lexical as lexical
from app.runtime import Runtime
from app.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("--k", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    rt = Runtime.create(Settings(data_dir=args.data_dir))
    queries = load_queries(DEFAULT_QUERIES)[: args.queries]
    fts_first = lexical._fts_first
    times: dict[str, list[float]] = {"fts_first": [], "joined": []}
    symdiff = 0
    try:
        with rt.sessions() as s:
            col = rt.collection(s)
            for q in queries[:3]:  # warm the caches
                lexical.lexical_search(s, col.id, q, args.k)
            for rep in range(args.repeat):
                for q in queries:
                    lexical._fts_first = fts_first
                    t0 = time.perf_counter()
                    a = lexical.lexical_search(s, col.id, q, args.k)
                    times["fts_first"].append((time.perf_counter() - t0) * 1000)
                    lexical._fts_first = lambda *_: None  # the joined query alone
                    t0 = time.perf_counter()
                    b = lexical.lexical_search(s, col.id, q, args.k)
                    times["joined"].append((time.perf_counter() - t0) * 1000)
                    if rep == 0:
                        symdiff += len({i for i, _ in a} ^ {i for i, _ in b})
    finally:
        lexical._fts_first = fts_first
        rt.close()
    out = {k: {"p50": pct(v, 0.5), "p95": pct(v, 0.95)} for k, v in times.items()}
    print(json.dumps({**out, "queries": len(queries), "k": args.k, "symdiff": symdiff}))


if __name__ == "__main__":
    main()
