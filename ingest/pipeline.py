"""Run one ingest job: parse -> chunk -> embed -> store, with progress and clear failures.

Four stages pass frozen values on: :func:`prepare` (the claimed job's document, marked
parsing) -> :func:`parse_and_chunk` -> :func:`embed` -> :func:`commit`. What a stage
raises is classified once (:func:`classify`: permanent, transient, an outage, or the job
lost) and acted on in one place (:func:`_conclude`); the document's and the job's state
change only through app/lifecycle.py.

A document becomes visible to search only in the final transaction, which writes all
its chunks, marks it ready and bumps the collection's version together.

An outage of the database or the disk (a PostgreSQL restart, a full disk) is waited out:
writes that only inform (progress) are skipped, the writes that matter are retried with
backoff for up to half a lease while the heartbeat keeps the job ours, and a job that
still cannot finish goes back to the queue with the reason and the time of its next try.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app import lifecycle, outages
from app.collections import model_switch
from app.collections.models import Collection
from app.collections.service import bump_version
from app.db import transaction, utcnow
from app.documents.models import DOCUMENT_TAG, ChunkSentences, Document, DocumentTag
from app.documents.models import Chunk as ChunkRow
from app.documents.service import original_path
from app.embedding.base import Embedder, EmbedderInputError, Vectors
from app.embedding.registry import EmbedderSpec, ensure_same_model
from app.jobs import service as jobs
from app.jobs.models import Job, JobStatus
from app.lifecycle import Outcome
from app.runtime import Runtime
from app.settings import Settings
from app.text.language import detect_language
from app.text.plain import plain_passage
from app.text.tags import tag_identity
from app.text.terms import index_text
from app.vectors.index import bytes_to_vectors, vector_to_bytes
from ingest.chunk import chunk as chunk_document
from ingest.errors import IngestError
from ingest.parse.ocr import OcrConfig, ocr_facts
from ingest.sandbox import OcrBusy, OcrLimits, parse_isolated
from ingest.sentences import embed_sentences, known_sentence_vectors
from ingest.titles import document_title
from ingest.types import Chunk, ParsedDocument

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class StageTimes:
    """Seconds spent in each stage of one document (for benchmarks and logs)."""

    parse: float = 0.0
    chunk: float = 0.0
    embed: float = 0.0
    store: float = 0.0
    embedded: int = 0
    reused: int = 0


@dataclass(frozen=True)
class IngestOutcome:
    document_id: int
    status: Outcome
    chunks: int = 0
    pages: int | None = None
    error: str | None = None
    times: StageTimes = field(default_factory=StageTimes)
    # WAITING (an outage requeued the job): seconds until its next try; the worker
    # pauses as long, since every job would meet the same full disk or absent database.
    retry_in: float | None = None
    # WAITING because every OCR process was busy: only this job waits; the worker goes
    # on with the next one at once.
    ocr_busy: bool = False


Progress = Callable[[float, str], None]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embed_chunks(
    embedder: Embedder,
    texts: Sequence[str],
    *,
    batch_size: int,
    known: dict[str, bytes],
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[Vectors, int]:
    """Vectors for ``texts`` in order, reusing ``known`` (hash -> stored vector) where it can.

    Returns the vectors and how many were reused instead of embedded.
    """
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    todo: list[int] = []
    for i, text in enumerate(texts):
        blob = known.get(content_hash(text))
        if blob is None:
            todo.append(i)
        else:
            out[i] = bytes_to_vectors([blob], embedder.dim)[0]
    for start in range(0, len(todo), batch_size):
        idx = todo[start : start + batch_size]
        vecs = embedder.embed_documents([texts[i] for i in idx])
        if vecs.shape != (len(idx), embedder.dim):
            raise RuntimeError(
                f"embedder returned shape {vecs.shape}, expected {(len(idx), embedder.dim)}"
            )
        out[idx] = vecs
        if on_batch is not None:
            on_batch(min(start + batch_size, len(todo)), len(todo))
    return out, len(texts) - len(todo)


def texts_per_call(embedder: Embedder, batch_size: int) -> int:
    """How many texts to hand the embedder at once.

    An embedder that keeps several requests in flight (``concurrency`` > 1) gets enough
    texts for all of them (its ``batch_size``, else ``batch_size``, per request); a CPU one
    gets ``batch_size``.
    """
    if embedder.concurrency > 1:
        per_request = embedder.batch_size if embedder.batch_size is not None else batch_size
        return max(1, per_request) * embedder.concurrency
    return batch_size


def _known_vectors(session: Session, collection_id: int, hashes: set[str]) -> dict[str, bytes]:
    """Vectors already stored in this collection for identical texts (same model)."""
    found: dict[str, bytes] = {}
    wanted = sorted(hashes)
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(ChunkRow.content_hash, ChunkRow.vector).where(
                ChunkRow.collection_id == collection_id,
                ChunkRow.content_hash.in_(wanted[start : start + 500]),
            )
        ).all()
        found.update({h: v for h, v in rows})
    return found


def _brief(exc: BaseException) -> str:
    """One line for a log or an admin: the driver's error, not SQLAlchemy's SQL dump."""
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip().splitlines()
    return f"{type(inner).__name__}: {text[0] if text else ''}"[:300]


def _best_effort(what: str, write: Callable[[], object]) -> None:
    """A write that only informs (progress, a status): an outage skips it, nothing more."""
    try:
        write()
    except jobs.LeaseLost:
        raise
    except Exception as exc:
        cause = outages.transient_cause(exc)
        if cause is None:
            raise
        log.info("%s skipped: %s", what, cause)


def _with_db_retry(
    rt: Runtime,
    action: Callable[[], T],
    *,
    what: str,
    on_wait: Callable[[str, datetime, BaseException], None] | None = None,
) -> T:
    """``action()`` (its own transaction), retried through an outage with backoff.

    For at most half a lease: the heartbeat (every third of one) keeps the job ours
    meanwhile, and should it not reach the database either, we stop before the lease
    can run out under us. Other errors, and the outage's last one, propagate.
    """
    deadline = time.monotonic() + rt.settings.job_lease_seconds / 2
    backoff = jobs.Backoff(base=0.25, cap=8.0)
    while True:
        try:
            return action()
        except Exception as exc:
            cause = outages.transient_cause(exc)
            delay = backoff.next_delay()
            if cause is None or time.monotonic() + delay > deadline:
                raise
            # One line per try, no traceback: an outage is not a bug.
            log.warning("%s: %s (%s); next try in %.1f s", what, cause, _brief(exc), delay)
            if on_wait is not None:
                at = utcnow() + timedelta(seconds=delay)
                _best_effort(f"{what}: showing why", partial(on_wait, cause, at, exc))
            time.sleep(delay)


# -- the values the stages pass on ---------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """The claimed job and what the stages need of its document, read as it starts parsing."""

    job_id: int
    document_id: int
    worker_id: str
    path: Path
    filename: str
    doc_type: str
    collection_id: int
    collection: str  # the collection's name, model and dimension as recorded at the start
    embedder: str
    model: str
    dim: int

    @property
    def held(self) -> lifecycle.Held:
        return lifecycle.Held(self.job_id, self.document_id, self.worker_id)


@dataclass(frozen=True)
class Chunked:
    parsed: ParsedDocument
    chunks: tuple[Chunk, ...]
    texts: tuple[str, ...]  # what is embedded, one per chunk
    language: str | None  # the document's: the main language of its prose
    # Each chunk's own language (its document's where its prose is too little to tell).
    languages: tuple[str | None, ...]


@dataclass(frozen=True)
class Embedded:
    vectors: Vectors
    reused: int
    # Per chunk, its sentences' vectors as one blob (b"": none); empty when the embedder
    # keeps no sentence vectors (ingest/sentences.py).
    sentences: tuple[bytes, ...] = ()


# -- the stages -----------------------------------------------------------------------------


def prepare(rt: Runtime, job_id: int, document_id: int, worker_id: str) -> Prepared | None:
    """Mark the document parsing; None (and the job finished) when it was deleted."""
    with transaction(rt.sessions) as s:
        doc = s.get(Document, document_id)
        if doc is None:
            j = s.get(Job, job_id)
            if j is not None:
                lifecycle.finish_job(j, message="document was deleted before it was ingested")
            return None
        collection = s.get(Collection, doc.collection_id)
        assert collection is not None
        lifecycle.start_parsing(doc)
        return Prepared(
            job_id=job_id,
            document_id=document_id,
            worker_id=worker_id,
            path=original_path(rt.settings.files_dir, doc),
            filename=doc.filename,
            doc_type=doc.doc_type,
            collection_id=collection.id,
            collection=collection.name,
            embedder=collection.embedder,
            model=collection.model,
            dim=collection.dim,
        )


def parse_and_chunk(rt: Runtime, p: Prepared, progress: Progress, times: StageTimes) -> Chunked:
    """The stored original, parsed in a sandbox and cut into chunks along its headings."""
    progress(0.02, "parsing")
    t0 = time.perf_counter()
    if not p.path.exists():
        raise IngestError("the stored original is missing; upload the file again")
    parsed: ParsedDocument = parse_isolated(
        p.path,
        filename=p.filename,
        timeout_s=rt.settings.parse_timeout_seconds,
        memory_mb=rt.settings.parse_memory_mb,
        ocr=ocr_limits(rt.settings),
        ocr_progress=partial(_ocr_progress, progress),
        # A scan waits for a free OCR process in the queue, not in this worker thread,
        # which goes on with other documents meanwhile.
        ocr_wait=False,
    )
    times.parse = time.perf_counter() - t0

    t0 = time.perf_counter()
    chunks = chunk_document(parsed, max_tokens=rt.settings.chunk_max_tokens)
    times.chunk = time.perf_counter() - t0
    if not chunks:
        raise IngestError("no text was found in the file")
    language = detect_language(parsed.text)
    return Chunked(
        parsed=parsed,
        chunks=tuple(chunks),
        texts=tuple(c.embed_text for c in chunks),
        language=language,
        languages=chunk_languages(chunks, language),
    )


def ocr_limits(settings: Settings) -> OcrLimits:
    """The KB_OCR_* settings as the sandbox takes them."""
    return OcrLimits(
        config=OcrConfig(
            enabled=settings.ocr_active,
            max_pages=settings.ocr_max_pages,
            dpi=settings.ocr_dpi,
            max_megapixels=settings.ocr_max_megapixels,
            low_confidence=settings.ocr_low_confidence,
            threads=settings.ocr_threads or 0,
            use_gpu=settings.ocr_use_gpu,
        ),
        workers=settings.ocr_workers,
        memory_mb=settings.ocr_memory_mb,
        page_timeout_s=settings.ocr_page_timeout_seconds,
        timeout_s=settings.ocr_timeout_seconds,
    )


# The job message while OCR runs (the documents page shows it); the parse stage's share
# of the progress bar is 0.02-0.1.
OCR_WAITING = "waiting for OCR"
OCR_PAGE = "OCR page {page} of {pages}"
OCR_DONE = "OCR done: {pages} pages"
# A scan met every OCR process busy: it waits in the queue this long, its attempt kept.
OCR_BUSY = "all OCR processes are busy"
OCR_BUSY_DELAY_S = 5.0


def _ocr_progress(progress: Progress, done: int, total: int) -> None:
    if not total:
        progress(0.02, OCR_WAITING)
    elif done < total:
        progress(0.02 + 0.08 * done / total, OCR_PAGE.format(page=done + 1, pages=total))
    else:
        progress(0.1, OCR_DONE.format(pages=total))


def chunk_languages(chunks: Sequence[Chunk], document: str | None) -> tuple[str | None, ...]:
    """The language of each chunk's own prose; ``document`` (the document's language)
    where a chunk's cannot be told: only code, digits, a word or two."""
    return tuple(detect_language(c.text, strict=True) or document for c in chunks)


def _start_embedding(rt: Runtime, document_id: int) -> None:
    with transaction(rt.sessions) as s:
        doc = s.get(Document, document_id)
        if doc is not None:
            lifecycle.start_embedding(doc)


def _known_or_none(rt: Runtime, lookup: Callable[[Session], dict[str, bytes]]) -> dict[str, bytes]:
    """Stored vectors to reuse; none during an outage (reuse saves work, nothing more)."""
    try:
        with rt.sessions() as s:
            return lookup(s)
    except Exception as exc:
        cause = outages.transient_cause(exc)
        if cause is None:
            raise
        log.info("reusing stored vectors skipped: %s", cause)
        return {}


def embed(rt: Runtime, p: Prepared, c: Chunked, progress: Progress, times: StageTimes) -> Embedded:
    """The chunks' vectors from the collection's model, reusing stored ones."""
    _best_effort(
        f"status of document {p.document_id}", partial(_start_embedding, rt, p.document_id)
    )
    progress(0.1, f"embedding {len(c.chunks)} chunks")
    known = _known_or_none(
        rt, lambda s: _known_vectors(s, p.collection_id, {content_hash(t) for t in c.texts})
    )
    embedder = rt.embedders.get(p.embedder)
    ensure_same_model(
        EmbedderSpec(embedder.name, embedder.model, embedder.dim),
        collection=p.collection,
        model=p.model,
        dim=p.dim,
    )
    t0 = time.perf_counter()
    vectors, reused = embed_chunks(
        embedder,
        c.texts,
        batch_size=texts_per_call(embedder, rt.settings.embed_batch_size),
        known=known,
        on_batch=lambda done, total: progress(
            0.1 + (0.4 if embedder.sentence_vectors else 0.85) * done / max(total, 1),
            f"embedded {done} of {total} chunks",
        ),
    )
    sentences: tuple[bytes, ...] = ()
    if embedder.sentence_vectors:
        hashes = [content_hash(t) for t in c.texts]
        sentences = embed_sentences(
            embedder,
            # The passages as people read them (what Ask and snippets split).
            [plain_passage(ch.text, p.doc_type) for ch in c.chunks],
            hashes,
            batch_size=texts_per_call(embedder, rt.settings.embed_batch_size),
            known=_known_or_none(
                rt, lambda s: known_sentence_vectors(s, p.collection_id, p.model, set(hashes))
            ),
            on_batch=lambda done, total: progress(
                0.5 + 0.45 * done / max(total, 1), f"embedded {done} of {total} sentences"
            ),
        )
    times.embed = time.perf_counter() - t0
    times.embedded, times.reused = len(c.texts) - reused, reused
    return Embedded(vectors, reused, sentences)


def commit(rt: Runtime, p: Prepared, c: Chunked, e: Embedded) -> bool:
    """Store chunks and vectors, and mark the document ready, in one transaction.

    The vectors are paid for: a short outage is waited out here rather than embed again.
    False when the document was deleted or the job taken away meanwhile.
    """
    return _with_db_retry(
        rt,
        partial(_commit_once, rt, p, c, e),
        what=f"storing document {p.document_id}",
        on_wait=partial(_show_waiting, rt, p),
    )


def _commit_once(rt: Runtime, p: Prepared, c: Chunked, e: Embedded) -> bool:
    with transaction(rt.sessions) as s:
        j = s.get(Job, p.job_id)
        doc = s.get(Document, p.document_id)
        if doc is None or j is None or j.worker_id != p.worker_id:
            return False
        if j.status == JobStatus.DONE:
            return True  # an earlier try committed, and only its answer was lost
        model_switch.ensure_unchanged(
            s, p.collection_id, embedder=p.embedder, model=p.model, dim=p.dim
        )
        _store(s, doc, c, e, model=p.model)
        doc.title = document_title(c.parsed, p.filename)
        _store_tags(s, doc, c.parsed.tags)
        doc.language = c.language
        doc.page_count = c.parsed.page_count
        doc.ocr_pages, doc.ocr_low_confidence_pages = ocr_facts(c.parsed.notes)
        doc.chunk_count = len(c.chunks)
        bump_version(s, p.collection_id)
        lifecycle.mark_ready(doc, j, message=f"{len(c.chunks)} chunks")
        return True


def _show_waiting(rt: Runtime, p: Prepared, cause: str, at: datetime, exc: BaseException) -> None:
    """While a write is retried in place: say why on the job and the document."""
    with transaction(rt.sessions) as s:
        lifecycle.show_waiting(
            s,
            p.held,
            reason=jobs.waiting_reason(cause, at),
            detail=f"{cause}: {_brief(exc)}",
        )


def run_ingest(
    rt: Runtime, job: Job, *, worker_id: str, backoff: jobs.Backoff | None = None
) -> IngestOutcome:
    """Process a claimed ingest job to its end: ready, failed, or requeued for a retry.

    prepare -> parse_and_chunk -> embed -> commit; whatever a stage raises is classified
    (:func:`classify`) and acted on in one place (:func:`_conclude`). ``backoff`` is the
    worker's: the delays of consecutive outages grow across jobs.
    """
    document_id = int(job.payload["document_id"])
    times = StageTimes()
    try:
        prepared = _with_db_retry(
            rt,
            partial(prepare, rt, job.id, document_id, worker_id),
            what=f"starting job {job.id}",
        )
    except Exception as exc:
        return _stalled(job.id, document_id, exc, times)
    if prepared is None:
        return IngestOutcome(document_id, Outcome.DELETED)
    progress = partial(_report_progress, rt, prepared)
    try:
        chunked = parse_and_chunk(rt, prepared, progress, times)
        embedded = embed(rt, prepared, chunked, progress, times)
        t0 = time.perf_counter()
        if not commit(rt, prepared, chunked, embedded):
            return IngestOutcome(document_id, Outcome.DELETED, times=times)
        times.store = time.perf_counter() - t0
        return IngestOutcome(
            document_id, Outcome.READY, len(chunked.chunks), chunked.parsed.page_count, times=times
        )
    except Exception as exc:
        return _conclude(rt, prepared, exc, backoff=backoff, times=times)


def _report_progress(rt: Runtime, p: Prepared, fraction: float, message: str) -> None:
    def write() -> None:
        with transaction(rt.sessions) as s:
            jobs.heartbeat(
                s,
                job_id=p.job_id,
                worker_id=p.worker_id,
                lease_s=rt.settings.job_lease_seconds,
                progress=fraction,
                message=message,
            )

    _best_effort(f"progress of job {p.job_id}", write)


# -- when a stage raises --------------------------------------------------------------------


class Failure(StrEnum):
    """What an exception raised by a stage means for the job."""

    LOST = "lost"  # the job was taken away (deleted, or our lease expired): stop
    PERMANENT = "permanent"  # the input itself: the document fails, retrying cannot help
    OUTAGE = "outage"  # the database or the disk: waited out, the attempt given back
    TRANSIENT = "transient"  # the embedder away, the model switched, unknown: counted retry
    BUSY = "busy"  # every OCR process in use: back to the queue for a while, not counted


@dataclass(frozen=True)
class Verdict:
    kind: Failure
    reason: str  # for a person: why it failed, why it retries, or the outage's cause


def classify(exc: BaseException, *, filename: str) -> Verdict:
    """The one place that decides whether an error is permanent, transient or an outage."""
    if isinstance(exc, jobs.LeaseLost):
        return Verdict(Failure.LOST, str(exc))
    if isinstance(exc, IngestError):
        return Verdict(Failure.PERMANENT, exc.reason)
    if isinstance(exc, OcrBusy):
        return Verdict(Failure.BUSY, OCR_BUSY)
    if isinstance(exc, EmbedderInputError):  # a passage the model cannot take
        return Verdict(Failure.PERMANENT, f"a passage cannot be embedded: {exc}")
    cause = outages.transient_cause(exc)
    if cause is not None:
        return Verdict(Failure.OUTAGE, cause)
    # ModelChanged (embed again with the new model), the embedder unreachable, a bug.
    return Verdict(Failure.TRANSIENT, f"{filename}: {type(exc).__name__}: {exc}")


def _conclude(
    rt: Runtime,
    p: Prepared,
    exc: Exception,
    *,
    backoff: jobs.Backoff | None,
    times: StageTimes,
) -> IngestOutcome:
    """Act on what :func:`classify` says of ``exc``: the job's and the document's end."""
    verdict = classify(exc, filename=p.filename)
    held = p.held
    if verdict.kind is Failure.LOST:
        log.info("job %s was taken away (deleted or lease expired); stopping", p.job_id)
        return IngestOutcome(p.document_id, Outcome.ABANDONED, times=times)
    if verdict.kind is Failure.PERMANENT:
        return _record(
            rt, p, times, partial(lifecycle.mark_failed, held=held, reason=verdict.reason)
        )
    if verdict.kind is Failure.BUSY:
        log.info("document %s waits for a free OCR process", p.document_id)
        wait = partial(
            lifecycle.wait_for_infrastructure,
            cause=verdict.reason,
            detail=verdict.reason,
            delay_s=OCR_BUSY_DELAY_S,
            held=held,
        )
        return replace(_record(rt, p, times, wait), retry_in=OCR_BUSY_DELAY_S, ocr_busy=True)
    if verdict.kind is Failure.OUTAGE:
        cause = verdict.reason
        delay = (backoff or jobs.Backoff()).next_delay()
        log.warning(
            "ingest of document %s waits: %s (%s); next try in %.1f s",
            p.document_id,
            cause,
            _brief(exc),
            delay,
        )
        wait = partial(
            lifecycle.wait_for_infrastructure,
            cause=cause,
            detail=f"{cause}: {_brief(exc)}",
            delay_s=delay,
            held=held,
        )
        return replace(_record(rt, p, times, wait), retry_in=delay)
    log.error("ingest of document %s failed; will retry", p.document_id, exc_info=exc)
    return _record(rt, p, times, partial(lifecycle.requeue, held=held, reason=verdict.reason))


def _record(
    rt: Runtime, p: Prepared, times: StageTimes, change: Callable[[Session], lifecycle.Ended]
) -> IngestOutcome:
    """Write how a job ended (one transition, its own transaction), through an outage."""

    def write() -> lifecycle.Ended:
        with transaction(rt.sessions) as s:
            return change(s)

    try:
        ended = _with_db_retry(rt, write, what=f"recording the end of job {p.job_id}")
    except Exception as exc:
        return _stalled(p.job_id, p.document_id, exc, times)
    return IngestOutcome(p.document_id, ended.outcome, error=ended.error, times=times)


def _stalled(job_id: int, document_id: int, exc: Exception, times: StageTimes) -> IngestOutcome:
    """The outage outlasted our retries: leave the job to its lease.

    Nothing can be written, releasing the job included. Nothing of the document is
    visible, and once the lease ends any worker takes the job up again.
    """
    cause = outages.transient_cause(exc)
    if cause is None:
        raise exc
    log.error(
        "job %s: %s (%s); it will be taken up again when its lease ends", job_id, cause, _brief(exc)
    )
    return IngestOutcome(document_id, Outcome.STALLED, error=cause, times=times)


def _store_tags(s: Session, doc: Document, tags: Sequence[str]) -> None:
    """Replace the tags read from the file; tags a person set on upload stay."""
    kept = [row for row in doc.tag_rows if row.source != DOCUMENT_TAG]
    # Reuse the rows of tags the file still has: deleting and re-inserting the same
    # primary key in one flush would collide.
    previous = {row.tag: row for row in doc.tag_rows if row.source == DOCUMENT_TAG}
    taken = {tag_identity(row.tag) for row in kept}
    rows = list(kept)
    for tag in tags:
        if tag_identity(tag) not in taken:
            taken.add(tag_identity(tag))
            rows.append(previous.get(tag) or DocumentTag(tag=tag, source=DOCUMENT_TAG))
    for position, row in enumerate(rows):
        row.position = position
    doc.tag_rows = rows
    s.flush()


def _store(s: Session, doc: Document, c: Chunked, e: Embedded, *, model: str) -> None:
    """Replace the document's chunks (a re-ingest leaves no old rows behind), with their
    sentence vectors where there are any."""
    s.execute(delete(ChunkRow).where(ChunkRow.document_id == doc.id))
    rows = [
        ChunkRow(
            document_id=doc.id,
            collection_id=doc.collection_id,
            ordinal=ch.ordinal,
            heading_path=list(ch.heading_path),
            text=ch.text,
            page_start=ch.page_start,
            page_end=ch.page_end,
            token_count=ch.token_count,
            kind=ch.kind.value,
            question=ch.question,
            content_hash=content_hash(t),
            vector=vector_to_bytes(v),
            search_terms=index_text(ch.heading_path, ch.text),
            language=lang,
        )
        for ch, t, v, lang in zip(c.chunks, c.texts, e.vectors, c.languages, strict=True)
    ]
    s.add_all(rows)
    s.flush()
    s.add_all(
        ChunkSentences(chunk_id=row.id, model=model, vectors=blob)
        for row, blob in zip(rows, e.sentences, strict=False)
        if blob
    )
    s.flush()
