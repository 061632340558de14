"""Documents: accept an upload (row + original + job in one transaction), list, delete."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.models import User
from app.collections.models import Collection
from app.collections.service import bump_version
from app.documents.models import Document, DocumentStatus, DocumentTag
from app.jobs import service as jobs
from app.jobs.models import Job, JobKind
from app.text.tags import TAG_SPLIT, normalise_tags

log = logging.getLogger(__name__)

# DocumentTag.source of tags a person set (on upload); a re-ingest keeps them.
UPLOAD_TAG = "upload"

# Extension -> document type. The worker checks the content; this only turns away
# files we could never read, before they are stored.
SUPPORTED_TYPES = {".pdf": "pdf", ".md": "markdown", ".markdown": "markdown", ".txt": "markdown"}


class DocumentNotFound(LookupError):
    """No document with that id."""


class UploadRejected(ValueError):
    """The upload cannot be accepted; the message says why, for a person."""

    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.too_large = too_large


@dataclass(frozen=True)
class StagedFile:
    """An upload copied to the data folder and hashed, not yet recorded in SQL."""

    path: Path
    filename: str
    size: int
    sha256: str
    doc_type: str


@dataclass(frozen=True)
class AddResult:
    document: Document
    duplicate: bool


def safe_filename(name: str) -> str:
    """The base name a person gave the file, without any path or control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:255] or "unnamed"


def doc_type_for(filename: str) -> str:
    ext = os.path.splitext(filename)[1].lower()
    try:
        return SUPPORTED_TYPES[ext]
    except KeyError:
        kinds = ", ".join(sorted(SUPPORTED_TYPES))
        raise UploadRejected(
            f"unsupported file type {ext or '(no extension)'!r}: supported types are {kinds}"
        ) from None


def stage_upload(stream: BinaryIO, *, filename: str, files_dir: Path, max_bytes: int) -> StagedFile:
    """Copy ``stream`` under a generated name while hashing it; reject empty or huge files."""
    filename = safe_filename(filename)
    doc_type = doc_type_for(filename)
    files_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=files_dir, prefix=".upload-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            while block := stream.read(1 << 20):
                size += len(block)
                if size > max_bytes:
                    raise UploadRejected(
                        f"file is larger than the limit of {max_bytes // (1024 * 1024)} MiB",
                        too_large=True,
                    )
                digest.update(block)
                out.write(block)
        if size == 0:
            raise UploadRejected("the file is empty (0 bytes)")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return StagedFile(tmp, filename, size, digest.hexdigest(), doc_type)


def parse_tags(value: str | Iterable[str] | None) -> list[str]:
    """Tags a person typed (one field, or several): split and normalised as tags read
    from front matter are (:mod:`app.text.tags`)."""
    if value is None:
        return []
    values = [value] if isinstance(value, str) else value
    return normalise_tags(part for v in values for part in TAG_SPLIT.split(v))


def add_document(
    session: Session,
    *,
    collection: Collection,
    staged: StagedFile,
    files_dir: Path,
    max_attempts: int = 5,
    uploaded_by: User | None = None,
    tags: Iterable[str] = (),
) -> AddResult:
    """Record the staged file as a queued document with its ingest job (flushed, not committed).

    ``tags`` (normalised again with :func:`parse_tags`) are stored as upload tags, which a
    re-ingest keeps. The same content in the same collection is not stored twice: the
    existing document is returned with ``duplicate=True`` (its tags unchanged) and the
    staged copy is removed.
    """
    existing = session.scalars(
        select(Document).where(
            Document.collection_id == collection.id, Document.content_hash == staged.sha256
        )
    ).first()
    if existing is not None:
        staged.path.unlink(missing_ok=True)
        return AddResult(existing, duplicate=True)
    key = f"{uuid.uuid4().hex}{os.path.splitext(staged.filename)[1].lower()}"
    os.replace(staged.path, files_dir / key)
    doc = Document(
        collection_id=collection.id,
        filename=staged.filename,
        content_hash=staged.sha256,
        size_bytes=staged.size,
        doc_type=staged.doc_type,
        storage_key=key,
        status=DocumentStatus.QUEUED,
        uploaded_by_id=uploaded_by.id if uploaded_by is not None else None,
    )
    doc.tag_rows = [
        DocumentTag(tag=tag, position=i, source=UPLOAD_TAG)
        for i, tag in enumerate(parse_tags(list(tags)))
    ]
    session.add(doc)
    session.flush()
    jobs.enqueue(
        session,
        kind=JobKind.INGEST,
        payload={"document_id": doc.id},
        document_id=doc.id,
        max_attempts=max_attempts,
    )
    return AddResult(doc, duplicate=False)


@dataclass(frozen=True)
class UploadOutcome:
    """What happened to one uploaded file, for the person who sent it."""

    filename: str
    result: Literal["accepted", "duplicate", "rejected"]
    document_id: int | None = None
    reason: str | None = None
    too_large: bool = False


def accept_uploads(
    session: Session,
    *,
    collection: Collection,
    files: Iterable[tuple[str, BinaryIO]],
    files_dir: Path,
    max_bytes: int,
    max_attempts: int = 5,
    uploaded_by: User | None = None,
    tags: Iterable[str] = (),
) -> list[UploadOutcome]:
    """Stage and record each file (flushed, not committed); one bad file rejects only itself.

    Every accepted file gets ``tags`` (see :func:`parse_tags`); duplicates keep their own.
    """
    tags = list(tags)
    outcomes = []
    for name, stream in files:
        try:
            staged = stage_upload(stream, filename=name, files_dir=files_dir, max_bytes=max_bytes)
        except UploadRejected as exc:
            outcomes.append(
                UploadOutcome(name, "rejected", reason=exc.reason, too_large=exc.too_large)
            )
            continue
        added = add_document(
            session,
            collection=collection,
            staged=staged,
            files_dir=files_dir,
            max_attempts=max_attempts,
            uploaded_by=uploaded_by,
            tags=tags,
        )
        result: Literal["duplicate", "accepted"] = "duplicate" if added.duplicate else "accepted"
        outcomes.append(UploadOutcome(staged.filename, result, document_id=added.document.id))
    return outcomes


def get(session: Session, document_id: int) -> Document:
    doc = session.get(Document, document_id)
    if doc is None:
        raise DocumentNotFound(f"no document with id {document_id}")
    return doc


def list_documents(
    session: Session, *, collection_id: int | None = None, limit: int = 1000, offset: int = 0
) -> list[Document]:
    query = select(Document).order_by(Document.id.desc()).limit(limit).offset(offset)
    if collection_id is not None:
        query = query.where(Document.collection_id == collection_id)
    return list(session.scalars(query))


def count_documents(session: Session, *, collection_id: int | None = None) -> int:
    query = select(func.count(Document.id))
    if collection_id is not None:
        query = query.where(Document.collection_id == collection_id)
    return int(session.scalar(query) or 0)


def delete_document(session: Session, document: Document) -> str:
    """Delete the row, its chunks and jobs (flushed); returns the storage key to remove."""
    had_chunks = document.chunk_count > 0 or document.status == DocumentStatus.READY
    key = document.storage_key
    collection_id = document.collection_id
    session.delete(document)
    session.flush()
    if had_chunks:
        bump_version(session, collection_id)
    return key


def remove_stored_file(files_dir: Path, storage_key: str) -> None:
    """Remove an original after the transaction that deleted its row has committed."""
    path = files_dir / storage_key
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)


def reingest(session: Session, document: Document, *, max_attempts: int = 5) -> Job:
    """Queue the document to be parsed and embedded again (flushed, not committed)."""
    document.status = DocumentStatus.QUEUED
    document.error = None
    return jobs.enqueue(
        session,
        kind=JobKind.INGEST,
        payload={"document_id": document.id},
        document_id=document.id,
        max_attempts=max_attempts,
    )


def original_path(files_dir: Path, document: Document) -> Path:
    return files_dir / document.storage_key
