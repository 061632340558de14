"""End to end through the real entry points: `kb ingest`, `kb search`, `kb serve`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app.documents.models import Document
from app.runtime import Runtime
from app.settings import Settings
from tests.samples import GUIDE_MD, LEAVE_MD

pytestmark = pytest.mark.slow
KB = [sys.executable, "-m", "app.cli"]


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env.update(KB_DATA_DIR=str(data_dir), OMP_NUM_THREADS="1", KB_WORKER_POLL_SECONDS="0.2")
    return env


def _kb(args: list[str], data_dir: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KB, *args],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=300,
        **kw,  # type: ignore[call-overload]
    )


def test_cli_ingest_search_batch_documents_reindex(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus" / "nested"
    corpus.mkdir(parents=True)
    (corpus / "guide.md").write_text(GUIDE_MD, encoding="utf-8")
    (corpus / "leave.md").write_text(LEAVE_MD, encoding="utf-8")
    (corpus / "notes.bin").write_bytes(b"\x00\x01")  # not a supported type: skipped in folders
    data = tmp_path / "data"

    r = _kb(["ingest", str(tmp_path / "corpus"), "--tag", "handbook", "--tag", "HR"], data)
    assert r.returncode == 0, r.stderr
    assert "ready 2, failed 0" in r.stderr

    r = _kb(["ingest", str(corpus / "guide.md")], data)
    assert r.returncode == 0 and "already in the collection" in r.stderr

    queries = tmp_path / "q.jsonl"
    queries.write_text(
        json.dumps({"id": "q1", "query": "How many days of paid annual leave?"})
        + "\n"
        + json.dumps({"id": "q2", "query": "备份保留多少天？"})
        + "\n",
        encoding="utf-8",
    )
    r = _kb(["search", "--batch", str(queries), "--k", "2"], data)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [line["id"] for line in lines] == ["q1", "q2"]
    top1, top2 = lines[0]["results"][0], lines[1]["results"][0]
    assert set(top1) >= {"file", "text", "heading_path", "page", "score", "document_id", "chunk_id"}
    assert top1["file"] == "leave.md" and top1["heading_path"] == "员工休假制度 > 年假"
    assert top2["file"] == "guide.md" and "thirty days" in top2["text"]

    r = _kb(["search", "病假需要证明吗", "--json", "--k", "1"], data)
    out = json.loads(r.stdout)
    assert out["results"][0]["file"] == "leave.md" and out["weak_match"] is False
    snip = out["results"][0]["snippet"]  # the same snippet as the API's
    assert snip["text"] and all(snip["text"][a:b] for a, b in snip["highlights"])
    assert any("病假" in snip["text"][a:b] for a, b in snip["highlights"])
    rt = Runtime.create(Settings(data_dir=data))
    try:
        with rt.sessions() as s:
            assert {tuple(d.tags) for d in s.scalars(select(Document))} == {("handbook", "HR")}
    finally:
        rt.close()

    r = _kb(["documents", "list"], data)
    assert "guide.md" in r.stdout and "ready" in r.stdout

    (data / "index").mkdir(exist_ok=True)
    for snap in (data / "index").glob("*.kbidx"):
        snap.write_bytes(b"garbage")
    r = _kb(["reindex"], data)
    assert r.returncode == 0 and "default:" in r.stdout

    r = _kb(["ingest", str(tmp_path / "missing.pdf")], data)
    assert r.returncode == 1 and "rejected" in r.stderr

    # A new collection is created by ingesting into it; searching a missing one is an error.
    r = _kb(["ingest", "--collection", "hr", str(corpus / "leave.md")], data)
    assert r.returncode == 0, r.stderr
    r = _kb(["search", "年假", "--collection", "hr", "--json"], data)
    assert {h["file"] for h in json.loads(r.stdout)["results"]} == {"leave.md"}
    r = _kb(["search", "年假", "--collection", "nope"], data)
    assert r.returncode == 2 and "no collection named 'nope'" in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_runs_api_and_worker(tmp_path: Path) -> None:
    data = tmp_path / "data"
    r = _kb(["user", "create", "ed", "--role", "editor", "--password", "editor-pass-1"], data)
    assert r.returncode == 0, r.stderr
    token = _kb(["user", "token", "ed"], data).stdout.strip()
    auth = {"Authorization": f"Bearer {token}"}
    port = _free_port()
    proc = subprocess.Popen(
        [*KB, "serve", "--port", str(port)],
        env=_env(data),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError("server did not start")
        assert httpx.get(f"{base}/api/v1/documents").status_code == 401
        r = httpx.post(
            f"{base}/api/v1/documents",
            headers=auth,
            files=[("files", ("leave.md", LEAVE_MD.encode())), ("files", ("empty.md", b""))],
        )
        assert r.status_code == 201
        items = r.json()["items"]
        assert items[1]["result"] == "rejected" and "empty" in items[1]["reason"]
        doc_id = items[0]["document_id"]
        deadline = time.time() + 120
        while time.time() < deadline:
            d = httpx.get(f"{base}/api/v1/documents/{doc_id}", headers=auth).json()
            if d["status"] in ("ready", "failed"):
                break
            time.sleep(0.2)
        assert d["status"] == "ready", d
        hits = httpx.get(
            f"{base}/api/v1/search", params={"q": "sick leave pay"}, headers=auth
        ).json()["results"]
        assert hits[0]["file"] == "leave.md"
        login = httpx.get(base + "/", params={"q": "sick leave"}, follow_redirects=True)
        assert login.status_code == 200 and "/login" in str(login.url)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode == 0, proc.stdout.read() if proc.stdout else ""


def test_worker_killed_mid_job_is_taken_over_without_duplicates(tmp_path: Path) -> None:
    from sqlalchemy import func, select

    from app.documents.models import Chunk, Document
    from app.jobs.models import Job
    from app.runtime import Runtime
    from app.settings import Settings
    from ingest.worker import Worker

    data = tmp_path / "data"
    # Many sections, so embedding takes long enough to kill the worker in the middle.
    sections = "\n\n".join(
        f"## Section {i}\n\nParagraph {i} about topic number {i}, " + "with filler words " * 60
        for i in range(300)
    )
    big = tmp_path / "big.md"
    big.write_text(f"# Big manual\n\n{sections}\n", encoding="utf-8")
    assert _kb(["ingest", "--no-wait", str(big)], data).returncode == 0

    env = _env(data) | {"KB_JOB_LEASE_SECONDS": "3", "KB_EMBED_BATCH_SIZE": "4"}
    proc = subprocess.Popen(
        [*KB, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    settings = Settings(data_dir=data, job_lease_seconds=3)
    rt = Runtime.create(settings)
    try:
        deadline = time.time() + 120
        progress = 0.0
        while time.time() < deadline and progress < 0.2:
            with rt.sessions() as s:
                progress = s.scalar(select(Job.progress)) or 0.0
            time.sleep(0.1)
        assert 0.2 <= progress < 1.0, "the worker should be in the middle of embedding"
    finally:
        proc.kill()
        proc.wait(timeout=10)
    try:
        with rt.sessions() as s:
            assert s.scalar(select(func.count(Chunk.id))) == 0  # nothing half-visible
            assert s.scalar(select(Document.status)) == "embedding"
        time.sleep(3.5)  # the dead worker's lease runs out
        (outcome,) = Worker(rt).run_until_idle()
        assert outcome.status == "ready"
        with rt.sessions() as s:
            job = s.scalars(select(Job)).one()
            assert job.attempts == 2 and job.status == "done"
            n = s.scalar(select(func.count(Chunk.id)))
            assert n == outcome.chunks == s.scalar(select(Document.chunk_count))
    finally:
        rt.close()
