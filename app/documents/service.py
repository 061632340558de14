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
import stat
import tempfile
import uuid
import zipfile
import zlib
from collections.abc import Collection as AbstractCollection
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

from sqlalchemy import event, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, SessionTransaction

from app import lifecycle, outages
from app.auth.models import Role, User
from app.collections.access import EVERYTHING, Access, NoWriteAccess
from app.collections.models import Collection
from app.collections.service import bump_version
from app.documents.models import Chunk, Document, DocumentStatus, DocumentTag
from app.documents.rendered import RenderCache
from app.errors import NotFound
from app.jobs.models import Job
from app.settings import Settings
from app.text.errors import error_detail
from app.text.filetypes import ACCEPTED
from app.text.sizes import human_size
from app.text.tags import TAG_SPLIT, normalise_tags, tag_identity

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


def passage(session: Session, chunk_id: int, access: Access = EVERYTHING) -> Passage:
    """The chunk ``chunk_id`` of a ready document in a collection ``access`` may read
    (:class:`PassageNotFound` otherwise)."""
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
    if row is None or not access.can_read(row[1]):
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


def get(session: Session, document_id: int) -> Document:
    doc = session.get(Document, document_id)
    if doc is None:
        raise DocumentNotFound("no document with id {id}", id=document_id)
    return doc


def get_for(session: Session, document_id: int, access: Access, *, write: bool = False) -> Document:
    """The document if ``access`` may read its collection (and, with ``write``, change
    it): one it may not read is not found, as if it did not exist."""
    doc = get(session, document_id)
    if not access.can_read(doc.collection_id):
        raise DocumentNotFound("no document with id {id}", id=document_id)
    if write and not access.can_write(doc.collection_id):
        raise NoWriteAccess(
            "you may read this document's collection but not change it; ask an "
            "administrator for write access"
        )
    return doc


def list_documents(
    session: Session,
    *,
    collection_id: int | None = None,
    limit: int = 1000,
    offset: int = 0,
    collection_ids: AbstractCollection[int] | None = None,
) -> list[Document]:
    """Newest first (``collection_ids``: only those collections; None, every one)."""
    query = select(Document).order_by(Document.id.desc()).limit(limit).offset(offset)
    if collection_ids is not None:
        query = query.where(Document.collection_id.in_(sorted(collection_ids)))
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


# --- the documents page: search, sort, filter, paginate -------------------------------

# Sort keys of the documents page (``?sort=``); anything else sorts by date.
SORT_KEYS = ("name", "date", "size", "pages", "chunks", "status")
DEFAULT_SORT = "date"
PAGE_SIZE = 50


@dataclass(frozen=True)
class DocumentFilter:
    """What the documents page asks for; every field optional (empty: no filter)."""

    q: str = ""  # part of the file name or title, any case
    status: str | None = None
    collection_id: int | None = None
    language: str | None = None
    tag: str | None = None
    doc_type: str | None = None
    sort: str = DEFAULT_SORT
    descending: bool = True

    @property
    def active(self) -> bool:
        """Whether any filter (not the sort) narrows the list."""
        return bool(
            self.q
            or self.status
            or self.collection_id is not None
            or self.language
            or self.tag
            or self.doc_type
        )


@dataclass(frozen=True)
class DocumentPage:
    """One page of a filtered, sorted document list."""

    documents: list[Document]
    total: int  # documents matching the filter, on every page
    page: int  # 1-based, within 1..pages
    pages: int  # at least 1
    page_size: int
    requested_page: int  # what was asked for (over ``pages``: the last page is shown)

    @property
    def clamped(self) -> bool:
        return self.requested_page != self.page


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def _filtered(query: Any, f: DocumentFilter, collection_ids: AbstractCollection[int] | None) -> Any:
    if collection_ids is not None:
        query = query.where(Document.collection_id.in_(list(collection_ids)))
    if f.q:
        pattern = _like_pattern(f.q)
        query = query.where(
            func.lower(Document.filename).like(pattern, escape="\\")
            | func.lower(func.coalesce(Document.title, "")).like(pattern, escape="\\")
        )
    if f.status:
        query = query.where(Document.status == f.status)
    if f.collection_id is not None:
        query = query.where(Document.collection_id == f.collection_id)
    if f.language:
        query = query.where(Document.language == f.language)
    if f.doc_type:
        query = query.where(Document.doc_type == f.doc_type)
    if f.tag:
        wanted = tag_identity(f.tag)
        tagged = select(DocumentTag.document_id).where(
            (func.lower(DocumentTag.tag) == wanted) | (DocumentTag.tag == f.tag)
        )
        query = query.where(Document.id.in_(tagged))
    return query


def _order(f: DocumentFilter) -> list[Any]:
    column: Any = {
        "name": func.lower(func.coalesce(Document.title, Document.filename)),
        "date": Document.created_at,
        "size": Document.size_bytes,
        "pages": func.coalesce(Document.page_count, 0),
        "chunks": Document.chunk_count,
        "status": Document.status,
    }.get(f.sort, Document.created_at)
    tie = Document.id.desc() if f.descending else Document.id.asc()
    return [column.desc() if f.descending else column.asc(), tie]


def find_documents(
    session: Session,
    f: DocumentFilter,
    *,
    page: int = 1,
    page_size: int = PAGE_SIZE,
    collection_ids: AbstractCollection[int] | None = None,
) -> DocumentPage:
    """The documents matching ``f``, sorted, one page of them (``collection_ids``: only
    those collections; None, every one). A page past the last shows the last page."""
    page_size = max(1, page_size)
    total = int(session.scalar(_filtered(select(func.count(Document.id)), f, collection_ids)) or 0)
    pages = max(1, -(-total // page_size))
    shown = min(max(1, page), pages)
    query = _filtered(select(Document), f, collection_ids).order_by(*_order(f))
    docs = list(session.scalars(query.limit(page_size).offset((shown - 1) * page_size)))
    return DocumentPage(docs, total, shown, pages, page_size, page)


@dataclass(frozen=True)
class DocumentFacets:
    """The values the documents page's filters offer: those present in the documents."""

    languages: list[str]
    doc_types: list[str]
    tags: list[str]
    any_documents: bool


def document_facets(
    session: Session,
    *,
    collection_ids: AbstractCollection[int] | None = None,
    max_tags: int = 500,
) -> DocumentFacets:
    def restricted(query: Any) -> Any:
        if collection_ids is None:
            return query
        return query.where(Document.collection_id.in_(list(collection_ids)))

    languages = session.scalars(
        restricted(select(Document.language).where(Document.language.is_not(None)).distinct())
    )
    types = session.scalars(restricted(select(Document.doc_type).distinct()))
    tag_query = restricted(
        select(DocumentTag.tag).join(Document, Document.id == DocumentTag.document_id).distinct()
    )
    tags = session.scalars(tag_query.order_by(DocumentTag.tag).limit(max_tags))
    anything = session.scalar(restricted(select(Document.id)).limit(1)) is not None
    return DocumentFacets(sorted(x for x in languages if x), sorted(types), list(tags), anything)


def documents_by_ids(
    session: Session, ids: Iterable[int], *, collection_ids: AbstractCollection[int] | None = None
) -> list[Document]:
    """The documents with these ids that exist (and are in ``collection_ids``), by id."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    query = select(Document).where(Document.id.in_(wanted))
    if collection_ids is not None:
        query = query.where(Document.collection_id.in_(list(collection_ids)))
    return list(session.scalars(query.order_by(Document.id)))


# --- progress and "failed for good" ----------------------------------------------------

# Where the pipeline's progress bar stands when each stage starts (ingest/pipeline.py:
# parsing reports 0.02, OCR moves it to 0.1, embedding starts at 0.1).
STAGE_START_PROGRESS = {DocumentStatus.PARSING: 0.02, DocumentStatus.EMBEDDING: 0.1}


def eta_seconds(progress: float | None, *, stage_start: float, elapsed_s: float) -> float | None:
    """Seconds left when the rate since the stage began holds: ``elapsed_s`` since the
    stage started at ``stage_start`` progress, now at ``progress``; None when there is
    too little to go on (no progress yet, or under two seconds)."""
    if progress is None or elapsed_s < 2:
        return None
    done = progress - stage_start
    if done < 0.01 or progress >= 1:
        return None
    return max(0.0, elapsed_s * (1 - progress) / done)


# Words of a failure reason that mean the file itself is the trouble: retrying the same
# bytes gives the same answer; only another upload of the complete file can help.
_FOR_GOOD = (
    "damaged",
    "corrupt",
    "truncated",
    "incomplete",
    "password",
    "encrypted",
    "unsupported",
    "mislabelled",
    "not a pdf",
    "is not a",
    "is not an",
    "old binary office format",
)


def failed_for_good(document: Document) -> bool:
    """A failed document whose reason is its file (damaged, truncated, encrypted,
    unsupported): a retry fails again the same way."""
    if document.status != DocumentStatus.FAILED or not document.error:
        return False
    reason = document.error.lower()
    return any(word in reason for word in _FOR_GOOD)


# --- bulk operations ------------------------------------------------------------------

BulkAction = Literal["delete", "reingest"]
# Why a document of a bulk operation was skipped (English message ids).
SKIP_NOT_FOUND = "no such document"
SKIP_NOT_OWNER = "editors can delete only their own documents"
SKIP_IN_PROGRESS = "it is being ingested; wait until it is ready or failed"


@dataclass(frozen=True)
class BulkResult:
    action: str
    done: list[int]
    skipped: list[tuple[int, str]]  # (document id, reason message id)
    removed: list[Removed] = field(default_factory=list)  # remove_files after the commit


def run_bulk(
    session: Session,
    settings: Settings,
    *,
    action: BulkAction,
    ids: Iterable[int],
    user: User,
    collection_ids: AbstractCollection[int] | None = None,
) -> BulkResult:
    """:func:`bulk_operation`, committed, then the deleted documents' files removed
    (what the documents page and the API both do)."""
    result = bulk_operation(
        session,
        action=action,
        ids=ids,
        user=user,
        max_attempts=settings.job_max_attempts,
        collection_ids=collection_ids,
    )
    session.commit()
    for removed in result.removed:
        remove_files(settings, removed)
    return result


def bulk_operation(
    session: Session,
    *,
    action: BulkAction,
    ids: Iterable[int],
    user: User,
    max_attempts: int = 5,
    collection_ids: AbstractCollection[int] | None = None,
) -> BulkResult:
    """Delete or re-ingest the documents ``ids`` (flushed, not committed), each on its
    own terms: an editor deletes only their own; a document being ingested is not
    queued again. The caller commits, then calls :func:`remove_files` for ``removed``."""
    wanted = sorted(set(ids))
    found = {d.id: d for d in documents_by_ids(session, wanted, collection_ids=collection_ids)}
    done: list[int] = []
    skipped: list[tuple[int, str]] = []
    removed: list[Removed] = []
    for doc_id in wanted:
        doc = found.get(doc_id)
        if doc is None:
            skipped.append((doc_id, SKIP_NOT_FOUND))
        elif action == "delete":
            if not (user.can(Role.ADMIN) or doc.uploaded_by_id == user.id):
                skipped.append((doc_id, SKIP_NOT_OWNER))
                continue
            removed.append(delete_document(session, doc))
            done.append(doc_id)
        elif doc.status not in (DocumentStatus.READY, DocumentStatus.FAILED):
            skipped.append((doc_id, SKIP_IN_PROGRESS))
        else:
            reingest(session, doc, max_attempts=max_attempts)
            done.append(doc_id)
    return BulkResult(action, done, skipped, removed)


# --- knowledge-base uploads: .zip archives and folders (admins) -----------------------

ARCHIVE_SUFFIXES = (".zip",)
# Archives inside an archive are not unpacked (one level only: no bomb of bombs).
NESTED_ARCHIVE_SUFFIXES = (
    ".zip", ".7z", ".rar", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".jar", ".cab",
)  # fmt: skip
# What an OS leaves in an archive beside the files (macOS resource forks, Finder and
# Explorer metadata): skipped without a result line.
_ARCHIVE_LITTER = ("__MACOSX/", ".DS_Store", "Thumbs.db", "desktop.ini")

ARCHIVE_ONLY_ADMINS = "only administrators can upload .zip archives; unpack it and upload its files"
ARCHIVE_UNREADABLE = "the file is not a readable .zip archive ({detail})"
ARCHIVE_TOO_MANY = "the archive has {count} entries, more than the limit of {limit}"
ARCHIVE_TOO_BIG = (
    "the archive unpacks to {size}, more than the limit of {limit} (it may be a zip bomb)"
)
ENTRY_UNSAFE_PATH = "the entry's path is unsafe (absolute, or with '..'); it was skipped"
ENTRY_SYMLINK = "the entry is a symbolic link; links are not followed"
ENTRY_NESTED = "archives inside an archive are not unpacked; unpack it and upload its files"
ENTRY_ENCRYPTED = "the entry is encrypted; upload an archive without a password"
ENTRY_TOO_LARGE = "the entry unpacks to {size}, more than the limit of {limit} per file"
ENTRY_RATIO = "the entry is compressed more than {ratio}:1, as only zip bombs are; it was skipped"
ENTRY_DAMAGED = "the entry is damaged or uses an unsupported compression ({detail})"


@dataclass(frozen=True)
class ArchiveLimits:
    """What a .zip upload may unpack to. Sizes are the ones the archive's directory
    states; reading an entry stops at its stated size and checks its CRC
    (``zipfile``), so an archive that lies is caught while it is read."""

    max_entries: int = 10_000
    max_total_bytes: int = 4 * 1024 * 1024 * 1024
    # Each file's own limit is the upload limit (``max_bytes``), as for a plain upload.
    max_ratio: int = 200  # documents compress 2-20:1; zeros ~1000:1
    ratio_floor_bytes: int = 1024 * 1024  # small entries may have odd ratios


ARCHIVE_LIMITS = ArchiveLimits()


@dataclass
class IncomingFile:
    """One file of an upload batch: a sent file, or an entry of a sent archive.

    ``open`` gives its stream (an archive entry is opened only when it is staged);
    ``rejected`` is set when it was refused before that (unsafe path, nested archive...);
    ``folder`` is its folder path, kept as an upload tag."""

    name: str
    open: Any = None  # Callable[[], BinaryIO]
    folder: str | None = None
    rejected: UploadOutcome | None = None
    close_after: bool = False


def folder_of(path: str) -> str | None:
    """The folder part of a relative path ("kb/hr/leave.md" -> "kb/hr"), with empty,
    "." and ".." parts left out; None when the file is at the top."""
    parts = [p for p in path.replace("\\", "/").split("/")[:-1] if p not in ("", ".", "..")]
    clean = ["".join(ch for ch in p if ch.isprintable()).strip() for p in parts]
    folder = "/".join(p for p in clean if p)
    return folder[:MAX_FOLDER_TAG] or None


MAX_FOLDER_TAG = 100  # app.text.tags.MAX_TAG_LENGTH


def _unsafe_entry_path(name: str) -> bool:
    path = name.replace("\\", "/")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":") or "\x00" in path:
        return True
    return any(part == ".." for part in path.split("/"))


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _is_litter(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return name.startswith("__MACOSX/") or base.startswith("._") or base in _ARCHIVE_LITTER


def expand_archive(
    name: str,
    stream: BinaryIO,
    *,
    max_bytes: int,
    stack: ExitStack,
    limits: ArchiveLimits = ARCHIVE_LIMITS,
) -> list[IncomingFile]:
    """The files of the .zip ``stream`` (sent as ``name``), each checked on its own; the
    whole archive is one rejected line when it cannot be read or is over the limits.

    Entries keep their folder inside the archive, under the archive's name ("kb.zip"
    with "hr/leave.md": folder "kb/hr"). Nothing is written here: an entry is read only
    when it is staged (:func:`stage_upload`, with the per-file limit ``max_bytes``).
    """
    shown = safe_filename(name)
    top = os.path.splitext(shown)[0]
    try:
        archive = stack.enter_context(zipfile.ZipFile(stream))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        return [IncomingFile(shown, rejected=UploadOutcome.rejected(
            shown, ARCHIVE_UNREADABLE, detail=detail))]  # fmt: skip
    files = [i for i in infos if not i.is_dir() and not _is_litter(i.filename)]
    if len(infos) > limits.max_entries:
        return [IncomingFile(shown, rejected=UploadOutcome.rejected(
            shown, ARCHIVE_TOO_MANY, count=len(infos), limit=limits.max_entries))]  # fmt: skip
    total = sum(i.file_size for i in files)
    if total > limits.max_total_bytes:
        return [IncomingFile(shown, rejected=UploadOutcome.rejected(
            shown, ARCHIVE_TOO_BIG, size=human_size(total),
            limit=human_size(limits.max_total_bytes)))]  # fmt: skip
    out: list[IncomingFile] = []
    for info in files:
        entry = "".join(ch for ch in info.filename if ch.isprintable())[:400]
        label = f"{shown}/{entry}"
        reason: tuple[str, dict[str, Any]] | None = None
        suffix = os.path.splitext(entry)[1].lower()
        if _unsafe_entry_path(info.filename):
            reason = (ENTRY_UNSAFE_PATH, {})
        elif _is_symlink(info):
            reason = (ENTRY_SYMLINK, {})
        elif suffix in NESTED_ARCHIVE_SUFFIXES:
            reason = (ENTRY_NESTED, {})
        elif info.flag_bits & 0x1:
            reason = (ENTRY_ENCRYPTED, {})
        elif suffix not in SUPPORTED_TYPES:
            try:
                doc_type_for(entry)
            except UploadRejected as exc:
                reason = (exc.message, exc.params)
        elif info.file_size > max_bytes:
            reason = (ENTRY_TOO_LARGE, {"size": human_size(info.file_size),
                                        "limit": human_size(max_bytes)})  # fmt: skip
        elif info.file_size > max(
            limits.ratio_floor_bytes, limits.max_ratio * max(info.compress_size, 1)
        ):
            reason = (ENTRY_RATIO, {"ratio": limits.max_ratio})
        if reason is not None:
            message, params = reason
            out.append(
                IncomingFile(label, rejected=UploadOutcome.rejected(label, message, **params))
            )
            continue
        folder = folder_of(f"{top}/{info.filename}")
        out.append(
            IncomingFile(
                label, open=lambda info=info: archive.open(info), folder=folder, close_after=True
            )
        )
    return out


def incoming_files(
    files: Iterable[tuple[str, BinaryIO]],
    *,
    max_bytes: int,
    stack: ExitStack,
    archives: bool = False,
    folders: bool = False,
    limits: ArchiveLimits = ARCHIVE_LIMITS,
) -> list[IncomingFile]:
    """The files of an upload: ``.zip`` archives unpacked when ``archives`` (else
    refused with a reason), and each sent name's folder path kept when ``folders``
    (a folder picked in the browser sends "folder/sub/file.md")."""
    out: list[IncomingFile] = []
    for name, stream in files:
        if name.lower().endswith(ARCHIVE_SUFFIXES):
            if not archives:
                shown = safe_filename(name)
                out.append(IncomingFile(shown, rejected=UploadOutcome.rejected(
                    shown, ARCHIVE_ONLY_ADMINS)))  # fmt: skip
                continue
            out.extend(
                expand_archive(name, stream, max_bytes=max_bytes, stack=stack, limits=limits)
            )
            continue
        out.append(
            IncomingFile(
                # Shown and stored by its base name: a path in the name is never followed.
                safe_filename(name),
                open=lambda stream=stream: stream,
                folder=folder_of(name) if folders else None,
            )
        )
    return out


def _stage_incoming(item: IncomingFile, *, files_dir: Path, max_bytes: int) -> StagedFile:
    stream = item.open()
    try:
        return stage_upload(stream, filename=item.name, files_dir=files_dir, max_bytes=max_bytes)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError, zlib.error) as exc:
        raise UploadRejected(ENTRY_DAMAGED, detail=error_detail(exc)) from None
    finally:
        if item.close_after:
            stream.close()


def upload_batch(
    session: Session,
    *,
    collection: Collection,
    files: Iterable[tuple[str, BinaryIO]],
    files_dir: Path,
    max_bytes: int,
    max_attempts: int = 5,
    uploaded_by: User | None = None,
    tags: Iterable[str] = (),
    archives: bool = False,
    folders: bool = False,
    limits: ArchiveLimits = ARCHIVE_LIMITS,
) -> list[UploadOutcome]:
    """Stage, record and commit the files of an upload (the upload page and the API):
    one bad file rejects only itself, and every accepted one gets ``tags`` (duplicates
    keep their own). Each file of each ``.zip`` is one result line (when ``archives``),
    and a file's folder path (inside its archive, or as a picked folder sends it, when
    ``folders``) becomes one more upload tag, such as "handbook/hr".

    A file the disk refuses (full, read-only) is rejected with a storage reason
    (:attr:`UploadOutcome.storage_status`). When the database refuses the commit, the
    transaction rolls back, the originals placed for it are removed, and every file that
    would have been stored is reported rejected with the storage reason, not a 500."""
    tags = list(tags)
    outcomes: list[UploadOutcome] = []
    with ExitStack() as stack:
        items = incoming_files(
            files, max_bytes=max_bytes, stack=stack, archives=archives, folders=folders,
            limits=limits,
        )  # fmt: skip
        try:
            for item in items:
                if item.rejected is not None:
                    outcomes.append(item.rejected)
                    continue
                try:
                    staged = _stage_incoming(item, files_dir=files_dir, max_bytes=max_bytes)
                    added = add_document(
                        session,
                        collection=collection,
                        staged=staged,
                        files_dir=files_dir,
                        max_attempts=max_attempts,
                        uploaded_by=uploaded_by,
                        tags=[*tags, item.folder] if item.folder else tags,
                    )
                except UploadRejected as exc:
                    outcomes.append(UploadOutcome.rejected(
                        item.name, exc.message, too_large=exc.too_large, **exc.params))  # fmt: skip
                    continue
                except OSError as exc:
                    log.error("upload of %r not stored in %s: %s", item.name, files_dir, exc)
                    outcomes.append(
                        UploadOutcome.rejected(item.name, storage_failure(exc) or STORAGE_FULL)
                    )
                    continue
                result: Literal["duplicate", "accepted"] = (
                    "duplicate" if added.duplicate else "accepted"
                )
                outcomes.append(UploadOutcome(item.name, result, document_id=added.document.id))
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
    for i, item in enumerate(items):
        done = outcomes[i] if i < len(outcomes) else None
        if done is not None and (
            done.result == "rejected"
            or (done.result == "duplicate" and done.document_id not in lost)
        ):
            answer.append(done)
        else:
            answer.append(UploadOutcome.rejected(item.name, failure))
    return answer
