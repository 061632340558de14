"""What the benchmark scripts share: the dev-eval paths, the import path, percentiles.

Imported first by each script (isort places it before the first-party `app` imports):
it puts the repository on sys.path, so `python bench/X.py` works without installing.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEV_EVAL = ROOT.parent / "shared" / "dev-eval"
DEFAULT_CORPUS = DEV_EVAL / "corpus"
DEFAULT_QUERIES = DEV_EVAL / "queries.jsonl"


def pct(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of ``values``, rounded to 0.01."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def load_queries(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["query"] for line in f if line.strip()]


def parse_weights(text: str) -> Any:
    """FusionWeights from "translated=0,sentences=0.2,verbatim=0" (the rest default), so a
    run can switch levers off one by one; "" gives the defaults."""
    from dataclasses import fields

    from app.search.fusion import FusionWeights

    kinds = {f.name: f.type for f in fields(FusionWeights)}
    values: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in kinds:
            raise SystemExit(f"unknown weight {name!r}: use one of {', '.join(kinds)}")
        kind = str(kinds[name])
        values[name] = (
            value not in ("0", "false", "no")
            if kind == "bool"
            else (float(value) if kind == "float" else int(value) if kind == "int" else value)
        )
    return FusionWeights(**values)
