"""``kb ingest``: add many files, run a local worker, and show progress until done.

The terminal side of the command (typer messages, a tqdm bar). The worker comes from the
caller (``app.cli`` passes ``ingest.worker.Worker``), so that nothing in ``app`` but the
CLI and the app factory imports ``ingest``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import typer
from sqlalchemy import select
from tqdm import tqdm

from app.db import transaction
from app.documents import service as documents
from app.documents.models import Document, DocumentStatus
from app.jobs.models import Job
from app.runtime import Runtime

FINAL = {DocumentStatus.READY, DocumentStatus.FAILED}


class IngestWorker(Protocol):
    """What the command needs of a worker (``ingest.worker.Worker``)."""

    def run_forever(self) -> None: ...

    def stop(self) -> None: ...


def iter_files(paths: list[Path]) -> Iterator[Path]:
    """Files named directly, and supported files found recursively in folders, sorted."""
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in documents.SUPPORTED_TYPES:
                    yield f
        else:
            yield p


def run_ingest_command(
    rt: Runtime,
    paths: list[Path],
    *,
    collection: str | None,
    wait: bool,
    make_worker: Callable[[Runtime], IngestWorker],
    tags: Sequence[str] = (),
) -> int:
    """Queue every file, then (if ``wait``) ingest them here with ``make_worker(rt)``;
    returns the exit code."""
    doc_ids: list[int] = []
    rejected = duplicates = 0
    for path in iter_files(paths):
        try:
            with open(path, "rb") as stream:
                staged = documents.stage_upload(
                    stream,
                    filename=path.name,
                    files_dir=rt.settings.files_dir,
                    max_bytes=rt.settings.max_upload_bytes,
                )
        except (documents.UploadRejected, OSError) as exc:
            rejected += 1
            reason = exc.reason if isinstance(exc, documents.UploadRejected) else str(exc)
            typer.secho(f"rejected {path}: {reason}", fg="red", err=True)
            continue
        with transaction(rt.sessions) as s:
            added = documents.add_document(
                s,
                collection=rt.collection(s, collection, create=True),
                staged=staged,
                files_dir=rt.settings.files_dir,
                max_attempts=rt.settings.job_max_attempts,
                tags=tags,
            )
            doc_id, dup, status = added.document.id, added.duplicate, added.document.status
        if dup:
            duplicates += 1
            typer.echo(f"already in the collection: {path} (document {doc_id}, {status})", err=True)
            if status == DocumentStatus.READY:
                continue
        doc_ids.append(doc_id)
    if not wait or not doc_ids:
        typer.echo(f"queued {len(doc_ids)}, duplicates {duplicates}, rejected {rejected}", err=True)
        return 1 if rejected else 0

    worker = make_worker(rt)
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        failed = _wait(rt, doc_ids)
    finally:
        worker.stop()
        thread.join(timeout=60)
    ready = len(doc_ids) - len(failed)
    typer.echo(
        f"ready {ready}, failed {len(failed)}, duplicates {duplicates}, rejected {rejected}",
        err=True,
    )
    for name, reason in failed:
        typer.secho(f"failed {name}: {reason}", fg="red", err=True)
    return 1 if failed or rejected else 0


def _wait(rt: Runtime, doc_ids: list[int]) -> list[tuple[str, str]]:
    """Poll SQL until every document is ready or failed (works with remote workers too)."""
    bar = tqdm(total=len(doc_ids), unit="doc", desc="ingest", dynamic_ncols=True)
    try:
        while True:
            with rt.sessions() as s:
                docs = list(s.scalars(select(Document).where(Document.id.in_(doc_ids))))
                running = {
                    j.document_id: j.progress
                    for j in s.scalars(
                        select(Job).where(Job.document_id.in_(doc_ids), Job.status == "running")
                    )
                }
            done = [d for d in docs if d.status in FINAL]
            bar.n = round(len(done) + sum(running.values()), 2)
            current = next((d.filename for d in docs if d.id in running), "")
            bar.set_postfix_str(current[:40], refresh=False)
            bar.refresh()
            if len(done) == len(docs):
                return [
                    (d.filename, d.error or "") for d in docs if d.status == DocumentStatus.FAILED
                ]
            time.sleep(0.3)
    finally:
        bar.close()
