"""Concurrent load on the web server (``--processes`` of it): req/s, latencies; prints JSON.

    python bench/load.py --backend sqlite|postgresql [--clients 8,32,128] [--seconds 10]
                         [--corpus DIR | --synthetic N] [--data-dir DIR] [--processes 1]
                         [--warmup 2] [--set KB_NAME=VALUE ...]

Ingests CORPUS (default ../shared/dev-eval/corpus), or builds ``--synthetic`` N chunks as
bench/scale.py does, into a fresh database (SQLite, or a throwaway PostgreSQL cluster),
starts ``kb serve`` as its own process on a loopback port (no worker inside; ``--set``
passes settings), and for each client count sends the dev-eval queries back to back for
``--seconds`` to the search API (Bearer token) and then to the search page (session
cookie), while /healthz is probed every 0.2 s. Each run also reports the server's CPU
per answered request (its processes, from /proc), PostgreSQL's and the load generator's.
``--data-dir`` reuses a SQLite folder (filled by bench/ingest_corpus.py, by
bench/scale.py --data-dir, or by an earlier run). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from common import DEFAULT_CORPUS, DEFAULT_QUERIES, load_queries
from sqlalchemy import create_engine, text

from app.auth import service as auth
from app.auth.models import Role
from app.cli_ingest import iter_files
from app.db import transaction
from app.documents import service as documents
from app.runtime import Runtime
from app.settings import Settings
from ingest.worker import Worker
from tests.e2e.browser import start_live_server, stop_live_server
from tests.loadgen import Target, child_pids, process_cpu_s, run_load
from tests.pg import start_cluster

PASSWORD = "bench-load-Pa55word"


def tree_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) of a process and its children (the web processes of
    ``kb serve --processes N``), from /proc; None where there is no /proc."""
    try:
        return sum(process_cpu_s(p) for p in [pid, *child_pids(pid)])
    except (OSError, ValueError, IndexError):
        return None


def postmaster_pid(root: Path) -> int | None:
    """The PostgreSQL server's pid (its backends are its children), from its pid file."""
    try:
        return int((root / "data" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ingest(settings: Settings, corpus: Path) -> int:
    """Ingest every file of ``corpus`` unless the database has documents; the chunk count."""
    rt = Runtime.create(settings)
    try:
        with transaction(rt.sessions) as s:
            col = rt.collection(s)
            if documents.count_documents(s) == 0:
                for path in iter_files([corpus]):
                    with open(path, "rb") as f:
                        staged = documents.stage_upload(
                            f, filename=path.name, files_dir=settings.files_dir, max_bytes=1 << 30
                        )
                    documents.add_document(
                        s, collection=col, staged=staged, files_dir=settings.files_dir
                    )
        Worker(rt).run_until_idle()
        return add_loader(rt)
    finally:
        rt.close()


def synthesize(settings: Settings, chunks: int, seed: int) -> int:
    """A synthetic collection of ``chunks`` chunks built as bench/scale.py builds it
    (through the app's store path, seeded), its index snapshotted for the server to
    load, unless the database has documents; the chunk count."""
    import scale

    rt = Runtime.create(settings)
    try:
        with rt.sessions() as s:
            empty = documents.count_documents(s) == 0
        if empty:
            src = scale.prepared_source(None, None, settings.embedder)
            rng = np.random.default_rng(seed)
            docs = scale.plan_documents(src, chunks, 300, rng)
            scale.build(rt, src, docs, rng, 0.01)
            with rt.sessions() as s:
                rt.indexes.rebuild(s, rt.collection(s))  # IVF past the threshold
            rt.indexes.save_all()
        return add_loader(rt)
    finally:
        rt.close()


def add_loader(rt: Runtime) -> int:
    """The reader the load runs as (created once); the chunk count."""
    with transaction(rt.sessions) as s:
        if auth.by_username(s, "loader") is None:
            auth.create_user(s, username="loader", password=PASSWORD, role=Role.READER)
        return int(s.execute(text("SELECT count(*) FROM chunks")).scalar() or 0)


def warm_caches(settings: Settings) -> None:
    """The lexical postings and the sentence file a large collection gets, written now
    for the server processes to map (a warmed-up server; a cold one builds them in the
    background, every process its own, while SQL answers)."""
    rt = Runtime.create(settings)
    try:
        with rt.sessions() as s:
            idx = rt.indexes.get(s, rt.collection(s))
            rt.indexes.load_terms(idx) or rt.indexes.prepare_terms(idx)
            rt.indexes.load_sentences(idx) or rt.indexes.prepare_sentences(idx)
        rt.indexes.save_all()
    finally:
        rt.close()


def token(settings: Settings) -> str:
    rt = Runtime.create(settings)
    try:
        with transaction(rt.sessions) as s:
            user = auth.by_username(s, "loader")
            assert user is not None
            return auth.create_token(s, user, "bench")[1]
    finally:
        rt.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--clients", default="8,32,128", help="comma-separated client counts")
    ap.add_argument("--seconds", type=float, default=10.0, help="per client count and target")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--queries", type=Path, default=DEFAULT_QUERIES)
    ap.add_argument("--data-dir", type=Path, default=None, help="reuse (SQLite only)")
    ap.add_argument(
        "--synthetic",
        type=int,
        default=0,
        metavar="N",
        help="instead of the corpus: N synthetic chunks as bench/scale.py builds them "
        "(either backend; e.g. 100000)",
    )
    ap.add_argument("--seed", type=int, default=0, help="of --synthetic")
    ap.add_argument("--processes", type=int, default=1, help="web processes (kb serve --processes)")
    ap.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="seconds of untimed searches first (each process loads the model and the index, "
        "and from 20k chunks builds its lexical postings: ~3 s at 100k)",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KB_NAME=VALUE",
        help="a setting for the server (repeatable), e.g. KB_WEB_THREADS=8",
    )
    args = ap.parse_args()
    logging.disable(logging.INFO)

    work = Path(tempfile.mkdtemp(prefix="kb-load-"))
    data_dir = args.data_dir or work / "data"
    cluster = start_cluster() if args.backend == "postgresql" else None
    env = {"KB_RUN_WORKER_IN_SERVER": "false", "KB_WEB_PROCESSES": str(args.processes)}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("KB_"):
            ap.error(f"--set wants KB_NAME=VALUE, not {item!r}")
        env[name] = value
    url = None
    if cluster is not None:
        admin = create_engine(cluster.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text('CREATE DATABASE "kb_load"'))
        admin.dispose()
        url = cluster.url("kb_load")
        env["KB_DATABASE_URL"] = url
    settings = Settings(data_dir=data_dir, database_url=url)
    t0 = time.perf_counter()
    if args.synthetic:
        chunks = synthesize(settings, args.synthetic, args.seed)
    else:
        chunks = ingest(settings, args.corpus)
    ingest_s = time.perf_counter() - t0
    warm_caches(settings)
    bearer = token(settings)
    queries = load_queries(args.queries)
    env["KB_DATA_DIR"] = str(data_dir)
    server = start_live_server(work, env=env)
    db_pid = postmaster_pid(cluster.root) if cluster is not None else None
    runs: list[dict[str, object]] = []
    try:
        login = httpx.post(
            server.url("/login"),
            data={"username": "loader", "password": PASSWORD},
            headers={"Origin": server.base_url},
        )
        cookies = dict(login.cookies)
        api = [
            Target("/api/v1/search", {"q": q}, {"Authorization": f"Bearer {bearer}"})
            for q in queries
        ]
        page = [Target("/", {"q": q}) for q in queries]
        # Warm up: load the model and the index before anything is timed.
        run_load(
            server.base_url, api, clients=2 * args.processes, seconds=args.warmup, cookies=cookies
        )
        for clients in (int(c) for c in args.clients.split(",")):
            for name, targets in (("search_api", api), ("search_page", page)):
                assert server.process is not None
                server_before, client_before = tree_cpu_s(server.process.pid), own_cpu_s()
                db_before = tree_cpu_s(db_pid) if db_pid is not None else None
                result = run_load(
                    server.base_url, targets, clients=clients, seconds=args.seconds,
                    cookies=cookies,
                )  # fmt: skip
                server_after, client_after = tree_cpu_s(server.process.pid), own_cpu_s()
                db_after = tree_cpu_s(db_pid) if db_pid is not None else None
                # Where the two cores went: the server's CPU per answered request, and
                # this process's (the load generator's) on the same machine.
                done = max(result.answered, 1)
                cpu = {
                    "server_cpu_ms_per_request": None
                    if server_before is None or server_after is None
                    else round((server_after - server_before) / done * 1000, 1),
                    "client_cpu_ms_per_request": round(
                        (client_after - client_before) / done * 1000, 1
                    ),
                    # PostgreSQL's server processes (its backends), on the same cores.
                    "db_cpu_ms_per_request": None
                    if db_before is None or db_after is None
                    else round((db_after - db_before) / done * 1000, 1),
                }
                runs.append({"target": name, **result.summary(), **cpu})
                print(json.dumps(runs[-1]), flush=True)
    finally:
        stop_live_server(server)
        if cluster is not None:
            cluster.stop()
    print(
        json.dumps(
            {
                "backend": args.backend,
                "chunks": chunks,
                "ingest_s": round(ingest_s, 1),
                "seconds_per_run": args.seconds,
                "cores": os.cpu_count(),
                "processes": args.processes,
                "synthetic": args.synthetic,
                "settings": dict(item.partition("=")[::2] for item in args.set),
                "runs": runs,
            }
        )
    )


if __name__ == "__main__":
    main()
