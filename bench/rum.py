"""PostgreSQL's lexical query through its GIN index (what the app runs) against the RUM
extension's index, which ranks inside the index (``ORDER BY search_vector <=> query``).

    apt-get install postgresql-15-rum        # Debian's package; not a dependency of ours
    python bench/rum.py [--chunks 100000] [--queries 60] [--k 40] [--seed 0]

Builds ``--chunks`` synthetic chunks as bench/scale.py does in a throwaway cluster,
adds a RUM index on ``chunks.search_vector`` (the stored tsvector the GIN index
covers), then runs each dev-eval query both ways back to back with the same terms (the
app's pruning included): the app's ``lexical_search`` (GIN match, ``ts_rank`` over every
match, top k), and RUM's ``<=>`` ordering with ``LIMIT k``. Also reported: each
index's size and build time, and how many of each top k the in-memory BM25 leg (what
the app uses from ``KB_LEXICAL_MEMORY_MIN_CHUNKS`` chunks) also returns. The last line
is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import scale
from common import DEFAULT_QUERIES, load_queries, pct
from pgcluster import start_cluster
from sqlalchemy import text

from app.runtime import Runtime
from app.search import lexical
from app.search.lexical import PG_VECTOR_COLUMN, lexical_search, memory_search
from app.settings import Settings

RUM_INDEX = "ix_bench_chunks_rum"


def rum_search(rt: Runtime, collection_id: int, query: str, k: int) -> list[int]:
    """The same terms as ``lexical_search`` (pruned), ordered by RUM's distance."""
    with rt.sessions() as s:
        terms = lexical.query_terms(s, collection_id, query)
        q = lexical._join(terms, "postgresql")
        if not q:
            return []
        rows = s.execute(
            text(
                f"SELECT id FROM chunks WHERE {PG_VECTOR_COLUMN} @@ CAST(:q AS tsquery) "
                "AND collection_id = :c AND NOT disabled "
                f"ORDER BY {PG_VECTOR_COLUMN} <=> CAST(:q AS tsquery), id LIMIT :k"
            ),
            {"q": q, "c": collection_id, "k": k},
        ).all()
    return [int(r[0]) for r in rows]


def gin_search(rt: Runtime, collection_id: int, query: str, k: int) -> list[int]:
    with rt.sessions() as s:
        return [cid for cid, _ in lexical_search(s, collection_id, query, k)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("--k", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.disable(logging.INFO)
    cluster = start_cluster()
    work = Path(tempfile.mkdtemp(prefix="kb-rum-"))
    try:
        url = cluster.create_database("kb")
        settings = Settings(
            data_dir=work / "data", database_url=url, lexical_memory_min_chunks=None
        )
        rt = Runtime.create(settings)
        src = scale.prepared_source(None, None, settings.embedder)
        rng = np.random.default_rng(args.seed)
        scale.build(rt, src, scale.plan_documents(src, args.chunks, 300, rng), rng, 0.01)
        with rt.sessions() as s:
            col = rt.collection(s)
            cid = col.id
            index = rt.indexes.get(s, col)
        rt.indexes.build_terms(index)  # the in-memory BM25 leg, as the reference
        view = index.terms.view() if index.terms is not None else None
        with rt.engine.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS rum")
            t0 = time.perf_counter()
            conn.exec_driver_sql(
                f"CREATE INDEX {RUM_INDEX} ON chunks USING rum "
                f"({PG_VECTOR_COLUMN} rum_tsvector_ops)"
            )
            rum_build_s = time.perf_counter() - t0
            conn.exec_driver_sql("ANALYZE chunks")
            sizes = {
                name: int(conn.execute(text("SELECT pg_relation_size(:n)"), {"n": name}).scalar())
                for name in (lexical.PG_VECTOR_INDEX, RUM_INDEX)
            }
        queries = load_queries(DEFAULT_QUERIES)[: args.queries]
        for q in queries[:5]:  # warm the buffers and the term counts
            gin_search(rt, cid, q, args.k)
            rum_search(rt, cid, q, args.k)
        times: dict[str, list[float]] = {"gin": [], "rum": []}
        overlap: dict[str, list[float]] = {"gin": [], "rum": [], "gin_rum": []}
        for q in queries:
            t0 = time.perf_counter()
            gin = gin_search(rt, cid, q, args.k)
            t1 = time.perf_counter()
            rum = rum_search(rt, cid, q, args.k)
            t2 = time.perf_counter()
            times["gin"].append((t1 - t0) * 1000)
            times["rum"].append((t2 - t1) * 1000)
            if view is not None:
                bm25 = {c for c, _ in memory_search([(view, None)], q, args.k)}
                if bm25:
                    overlap["gin"].append(len(bm25 & set(gin)) / len(bm25))
                    overlap["rum"].append(len(bm25 & set(rum)) / len(bm25))
            if gin:
                overlap["gin_rum"].append(len(set(gin) & set(rum)) / len(gin))
        out = {
            "chunks": args.chunks,
            "k": args.k,
            "queries": len(queries),
            "gin_ms": {"p50": pct(times["gin"], 0.5), "p95": pct(times["gin"], 0.95)},
            "rum_ms": {"p50": pct(times["rum"], 0.5), "p95": pct(times["rum"], 0.95)},
            "gin_index_mb": round(sizes[lexical.PG_VECTOR_INDEX] / 2**20, 1),
            "rum_index_mb": round(sizes[RUM_INDEX] / 2**20, 1),
            "rum_build_s": round(rum_build_s, 1),
            "top_k_shared_with_bm25": {
                name: round(float(np.mean(v)), 3) if v else None
                for name, v in overlap.items()
                if name != "gin_rum"
            },
            "gin_top_k_in_rum": round(float(np.mean(overlap["gin_rum"])), 3)
            if overlap["gin_rum"]
            else None,
        }
        rt.close()
        print(json.dumps(out))
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
