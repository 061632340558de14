"""A throwaway PostgreSQL cluster for a benchmark run (initdb + pg_ctl, trust auth).

A copy of the few lines of tests/pg.py that bench/scale.py needs: the benchmarks run
with the project installed as scripts/up.sh installs it, without the tests' helpers.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    pass


def _find_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise PostgresUnavailable(
        f"{name} not found: install PostgreSQL (Debian: apt-get install postgresql)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresCluster:
    root: Path
    port: int
    pg_ctl: str
    as_postgres: list[str]

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """CREATE DATABASE ``name``; its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            [*self.as_postgres, self.pg_ctl, "-D", str(self.root / "data"), "-m", "fast", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster() -> PostgresCluster:
    """initdb a new cluster in a temporary folder and start it on a free loopback port
    (fsync off: the cluster is thrown away; the rest of the configuration is initdb's)."""
    initdb, pg_ctl = _find_bin("initdb"), _find_bin("pg_ctl")
    root = Path(tempfile.mkdtemp(prefix="kb-bench-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: run it as the postgres user.
        shutil.chown(root, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    subprocess.run(
        [
            *as_postgres,
            initdb,
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
        ],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    subprocess.run(
        [*as_postgres, pg_ctl, "-D", str(data), "-l", str(root / "log"), "-o", opts, "-w", "start"],
        check=True,
        capture_output=True,
    )
    return PostgresCluster(root=root, port=port, pg_ctl=pg_ctl, as_postgres=as_postgres)
