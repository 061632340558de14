"""Server-side time of the search and ask pages over the dev-eval queries; prints JSON.

    python bench/pages.py --data-dir DIR [--repeat 3]

DIR is a data folder filled by bench/ingest_corpus.py. Requests go through the whole ASGI app
in-process (session, auth, search, highlighting, template rendering) with no network, so
the figures are the server's own time per page.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

from common import DEFAULT_QUERIES, load_queries, pct
from fastapi.testclient import TestClient

from app.auth import service as auth
from app.auth.models import Role
from app.db import transaction
from app.main import create_app
from app.runtime import Runtime
from app.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--queries", type=Path, default=DEFAULT_QUERIES)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    rt = Runtime.create(Settings(data_dir=args.data_dir))
    with transaction(rt.sessions) as s:
        if auth.by_username(s, "bench") is None:
            auth.create_user(s, username="bench", password="bench-password", role=Role.READER)
    queries = load_queries(args.queries)
    logging.disable(logging.INFO)
    out: dict[str, dict[str, float]] = {}
    with TestClient(create_app(runtime=rt)) as client:
        client.post("/login", data={"username": "bench", "password": "bench-password"})
        for page in ("/", "/ask"):
            client.get(page, params={"q": queries[0]})  # load the model and the index first
            ms: list[float] = []
            for _ in range(args.repeat):
                for q in queries:
                    t0 = time.perf_counter()
                    r = client.get(page, params={"q": q})
                    ms.append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200, r.text[:500]
            out[page] = {
                "p50": pct(ms, 0.5),
                "p95": pct(ms, 0.95),
                "mean": round(statistics.fmean(ms), 2),
            }
    rt.close()
    print(json.dumps({"requests_per_page": len(queries) * args.repeat, "ms": out}))


if __name__ == "__main__":
    main()
