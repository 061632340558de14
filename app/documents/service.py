"""Documents: accept an upload (row + original + job in one transaction), list, delete.

An original is moved into ``files/`` only inside the transaction that records its row, and
removed again if that transaction does not commit (:func:`_place_original`), so no file
there is ever without a row and no committed row is without its file. A full or read-only
disk or database rejects the files it hit with a reason a person can act on
(:data:`STORAGE_FULL`, :data:`STORAGE_UNWRITABLE`); files already stored stay stored.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

from sqlalchemy import event, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, SessionTransaction

from app import lifecycle, outages
from app.auth.models import User
from app.collections.models import Collection
from app.collections.service import bump_version
from app.documents.models import Chunk, Document, DocumentStatus, DocumentTag
from app.documents.rendered import RenderCache
from app.errors import NotFound
from app.jobs.models import Job
from app.settings import Settings
from app.text.filetypes import ACCEPTED
from app.text.sizes import human_size
from app.text.tags import TAG_SPLIT, normalise_tags

log = logging.getLogger(__name__)

# DocumentTag.source of tags a person set (on upload); a re-ingest keeps them.
UPLOAD_TAG = "upload"

# Extension -> document type. The worker checks the content; this only turns away
# files we could never read, before they are stored.
SUPPORTED_TYPES = ACCEPTED


class DocumentNotFound(NotFound, LookupError):
    """No document with that id."""


class PassageNotFound(NotFound, LookupError):
    """No chunk with that id (deleted, or never there)."""


@dataclass(frozen=True)
class Passage:
    """One chunk's text with what a page needs to show it on its own."""

    chunk_id: int
    collection_id: int
    text: str
    doc_type: str
    language: str | None  # the chunk's own, else its document's


def passage(session: Session, chunk_id: int) -> Passage:
    """The chunk ``chunk_id`` of a ready document (:class:`PassageNotFound` otherwise)."""
    row = session.execute(
        select(
            Chunk.text,
            Chunk.collection_id,
            Document.doc_type,
            func.coalesce(Chunk.language, Document.language),
        )
        .join(Document, Document.id == Chunk.document_id)
        .where(Chunk.id == chunk_id, Document.status == DocumentStatus.READY)
    ).first()
    if row is None:
        raise PassageNotFound("no passage with that id")
    text, collection_id, doc_type, language = row
    return Passage(chunk_id, collection_id, text, doc_type, language)


class UploadRejected(ValueError):
    """The upload cannot be accepted; the message says why, for a person.

    ``message`` is the English message id (translated on pages with ``params``);
    ``reason`` is it formatted, for the API and the CLI."""

    def __init__(self, message: str, /, *, too_large: bool = False, **params: object) -> None:
        self.message = message
        self.params = params
        self.reason = message.format(**params) if params else message
        super().__init__(self.reason)
        self.too_large = too_large


# Why a file was not stored when the server's storage failed (files/ or the database);
# each is answered with its HTTP status when no file of the request could be stored.
STORAGE_FULL = (
    "the server's storage is full, so the file was not stored; "
    "try again after an administrator frees space"
)
STORAGE_UNWRITABLE = (
    "the server cannot write to its storage (read-only or not permitted), "
    "so the file was not stored; tell an administrator"
)
STORAGE_STATUS = {STORAGE_FULL: 507, STORAGE_UNWRITABLE: 503}


def storage_failure(exc: BaseException) -> str | None:
    """:data:`STORAGE_FULL` or :data:`STORAGE_UNWRITABLE` when ``exc`` is the disk (any
    OSError while storing) or the database refusing a write; None for any other database
    error (a bug stays a bug)."""
    cause = outages.transient_cause(exc)
    if cause == outages.DISK_FULL:
        return STORAGE_FULL
    if cause == outages.DISK_UNWRITABLE or isinstance(exc, OSError):
        return STORAGE_UNWRITABLE
    return None


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
            "unsupported file type {ext}: supported types are {kinds}",
            ext=repr(ext or "(no extension)"),
            kinds=kinds,
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
                        "file is larger than the limit of {size}",
                        too_large=True,
                        size=human_size(max_bytes),
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
    _place_original(session, staged.path, files_dir / key)
    doc = Document(
        collection_id=collection.id,
        filename=staged.filename,
        content_hash=staged.sha256,
        size_bytes=staged.size,
        doc_type=staged.doc_type,
        storage_key=key,
        uploaded_by_id=uploaded_by.id if uploaded_by is not None else None,
    )
    doc.tag_rows = [
        DocumentTag(tag=tag, position=i, source=UPLOAD_TAG)
        for i, tag in enumerate(parse_tags(list(tags)))
    ]
    lifecycle.submit(session, doc, max_attempts=max_attempts)
    return AddResult(doc, duplicate=False)


# session.info key: originals moved into files/ by the session's open transaction.
_PLACED = "kb_placed_originals"


def _place_original(session: Session, staged: Path, target: Path) -> None:
    """Move a staged upload to its final name, undone unless the transaction commits.

    The file is in place before the commit (a worker that claims the job at once finds
    it), and removed when the transaction rolls back or is closed uncommitted: a failed
    commit (a full disk, a lost database) leaves no file without its row.
    """
    try:
        os.replace(staged, target)
    except OSError:
        staged.unlink(missing_ok=True)
        raise
    if _PLACED not in session.info:
        session.info[_PLACED] = []
        event.listen(session, "after_commit", _originals_committed)
        event.listen(session, "after_transaction_end", _originals_discarded)
    session.info[_PLACED].append(target)


def _originals_committed(session: Session) -> None:
    if not session.in_nested_transaction():  # the outermost transaction committed
        session.info[_PLACED].clear()


def _originals_discarded(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return  # a savepoint: its files are kept or removed with the outer transaction
    placed: list[Path] = session.info[_PLACED]
    for path in placed:
        remove_stored_file(path.parent, path.name)
    placed.clear()


@dataclass(frozen=True)
class UploadOutcome:
    """What happened to one uploaded file, for the person who sent it."""

    filename: str
    result: Literal["accepted", "duplicate", "rejected"]
    document_id: int | None = None
    reason: str | None = None
    too_large: bool = False
    # The reason's English message id and parameters, for a translated page.
    message: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def storage_status(self) -> int | None:
        """507 (storage full) or 503 (not writable) when the server's storage refused it."""
        return STORAGE_STATUS.get(self.message or "")

    @classmethod
    def rejected(
        cls, filename: str, message: str, *, too_large: bool = False, **params: Any
    ) -> UploadOutcome:
        reason = message.format(**params) if params else message
        return cls(filename, "rejected", None, reason, too_large, message, params)


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
    into: list[UploadOutcome] | None = None,
) -> list[UploadOutcome]:
    """Stage and record each file (flushed, not committed); one bad file rejects only itself.

    Every accepted file gets ``tags`` (see :func:`parse_tags`); duplicates keep their own.
    A file that the disk refuses (full, read-only) is rejected with a storage reason
    (:attr:`UploadOutcome.storage_status`); the files before it stay accepted. Outcomes
    are appended to ``into`` as they happen (a new list if None), so a caller whose
    commit fails still knows how far the files got.
    """
    outcomes = into if into is not None else []
    tags = list(tags)
    for name, stream in files:
        try:
            staged = stage_upload(stream, filename=name, files_dir=files_dir, max_bytes=max_bytes)
            added = add_document(
                session,
                collection=collection,
                staged=staged,
                files_dir=files_dir,
                max_attempts=max_attempts,
                uploaded_by=uploaded_by,
                tags=tags,
            )
        except UploadRejected as exc:
            outcomes.append(
                UploadOutcome.rejected(name, exc.message, too_large=exc.too_large, **exc.params)
            )
            continue
        except OSError as exc:
            log.error("upload of %r not stored in %s: %s", name, files_dir, exc)
            outcomes.append(UploadOutcome.rejected(name, storage_failure(exc) or STORAGE_FULL))
            continue
        result: Literal["duplicate", "accepted"] = "duplicate" if added.duplicate else "accepted"
        outcomes.append(UploadOutcome(staged.filename, result, document_id=added.document.id))
    return outcomes


def upload_files(
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
    """:func:`accept_uploads` and commit: what the upload page and API do.

    When the database refuses the write (its disk is full, it is read-only), the
    transaction rolls back, the originals placed for it are removed, and every file that
    would have been stored is reported rejected with the storage reason instead of a 500.
    """
    files = list(files)
    outcomes: list[UploadOutcome] = []
    try:
        accept_uploads(
            session,
            collection=collection,
            files=files,
            files_dir=files_dir,
            max_bytes=max_bytes,
            max_attempts=max_attempts,
            uploaded_by=uploaded_by,
            tags=tags,
            into=outcomes,
        )
        session.commit()
        return outcomes
    except sa_exc.SQLAlchemyError as exc:
        failure = storage_failure(exc)
        session.rollback()  # removes the originals placed by this transaction
        if failure is None:
            raise
        log.error("upload not recorded, the database refused the write: %s", exc)
    lost = {o.document_id for o in outcomes if o.result == "accepted"}
    answer = []
    for i, (name, _stream) in enumerate(files):
        done = outcomes[i] if i < len(outcomes) else None
        if done is not None and (
            done.result == "rejected"
            or (done.result == "duplicate" and done.document_id not in lost)
        ):
            answer.append(done)
        else:
            answer.append(UploadOutcome.rejected(done.filename if done else name, failure))
    return answer


def get(session: Session, document_id: int) -> Document:
    doc = session.get(Document, document_id)
    if doc is None:
        raise DocumentNotFound("no document with id {id}", id=document_id)
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


@dataclass(frozen=True)
class Removed:
    """What a deleted document leaves on disk, removed once its deletion has committed."""

    storage_key: str
    content_hash: str


def delete_document(session: Session, document: Document) -> Removed:
    """Delete the row, its chunks and jobs (flushed); returns what to remove from disk."""
    had_chunks = document.chunk_count > 0 or document.status == DocumentStatus.READY
    removed = Removed(document.storage_key, document.content_hash)
    collection_id = document.collection_id
    session.delete(document)
    session.flush()
    if had_chunks:
        bump_version(session, collection_id)
    return removed


def remove_files(settings: Settings, removed: Removed) -> None:
    """Remove a deleted document's original and its rendered pages (after the commit).

    The rendered pages are kept by content hash; a copy of the same file in another
    collection simply renders them again."""
    remove_stored_file(settings.files_dir, removed.storage_key)
    RenderCache(settings.render_cache_dir).forget(removed.content_hash)


def remove_stored_file(files_dir: Path, storage_key: str) -> None:
    """Remove an original after the transaction that deleted its row has committed."""
    path = files_dir / storage_key
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)


def reingest(session: Session, document: Document, *, max_attempts: int = 5) -> Job:
    """Queue the document to be parsed and embedded again (flushed, not committed)."""
    return lifecycle.reingest(session, document, max_attempts=max_attempts)


def original_path(files_dir: Path, document: Document) -> Path:
    return files_dir / document.storage_key
