"""Document pages: list with live progress, upload, view, original, delete, retry."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile, status
from fastapi.responses import FileResponse, RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.deps import EditorUser, ReaderUser
from app.auth.models import Role, User
from app.collections import service as collections
from app.collections.service import CollectionNotFound
from app.deps import IdPath, RuntimeDep, SessionDep
from app.documents import service
from app.documents.models import Chunk, Document, DocumentStatus
from app.documents.rendered import RenderCache, chunk_key
from app.jobs.models import Job
from app.runtime import Runtime
from app.text import filetypes
from app.text.sizes import human_size
from app.web import render

router = APIRouter(include_in_schema=False)

IN_PROGRESS = {DocumentStatus.QUEUED, DocumentStatus.PARSING, DocumentStatus.EMBEDDING}


@dataclass(frozen=True)
class DocRow:
    doc: Document
    uploader: str | None
    progress: float | None  # 0..1 while a job runs
    message: str
    can_delete: bool


def _rows(session: Session, user: User) -> list[DocRow]:
    docs = service.list_documents(session, limit=500)
    names = dict(session.execute(select(User.id, User.username)).all())
    running = {d.id for d in docs if d.status in IN_PROGRESS}
    jobs: dict[int, Job] = {}
    if running:
        query = select(Job).where(Job.document_id.in_(running)).order_by(Job.id)
        for j in session.scalars(query):  # ordered by id: the latest job per document wins
            if j.document_id is not None:
                jobs[j.document_id] = j
    rows = []
    for d in docs:
        job = jobs.get(d.id)
        rows.append(
            DocRow(
                doc=d,
                uploader=names.get(d.uploaded_by_id) if d.uploaded_by_id else None,
                progress=job.progress if job else None,
                message=job.message if job else "",
                can_delete=_can_delete(user, d),
            )
        )
    return rows


def _can_delete(user: User, doc: Document) -> bool:
    return user.can(Role.ADMIN) or (user.can(Role.EDITOR) and doc.uploaded_by_id == user.id)


@router.get("/documents")
def documents_page(request: Request, session: SessionDep, user: ReaderUser) -> Response:
    """All documents; while any is being ingested, htmx refreshes the rows every second."""
    rows = _rows(session, user)
    polling = any(r.doc.status in IN_PROGRESS for r in rows)
    return render(request, "documents.html", {"rows": rows, "polling": polling}, block="rows")


def _get(session: Session, document_id: int) -> Document:
    try:
        return service.get(session, document_id)
    except service.DocumentNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@router.post("/documents/{document_id}/delete")
def delete_document(
    request: Request, rt: RuntimeDep, session: SessionDep, user: EditorUser, document_id: IdPath
) -> Response:
    doc = _get(session, document_id)
    if not _can_delete(user, doc):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "editors can delete only their own documents"
        )
    removed = service.delete_document(session, doc)
    session.commit()
    service.remove_files(rt.settings, removed)
    return RedirectResponse("/documents", status_code=303)


@router.post("/documents/{document_id}/reingest")
def reingest_document(
    rt: RuntimeDep, session: SessionDep, _user: EditorUser, document_id: IdPath
) -> Response:
    """Retry a failed document, or parse and embed a ready one again."""
    service.reingest(session, _get(session, document_id), max_attempts=rt.settings.job_max_attempts)
    session.commit()
    return RedirectResponse("/documents", status_code=303)


@dataclass(frozen=True)
class ChunkView:
    chunk: Chunk
    anchor: str | None  # the rendered Markdown heading this chunk sits under (on this page)


@dataclass(frozen=True)
class PartNav:
    """Where this page is among the parts of a long document (1-based)."""

    number: int
    count: int


# A document without rendered text (PDF) shows this much chunk text per page.
CHUNK_PAGE_CHARS = 128 * 1024


@router.get("/documents/{document_id}")
def document_page(
    request: Request,
    session: SessionDep,
    rt: RuntimeDep,
    user: ReaderUser,
    document_id: IdPath,
    part: Annotated[int, Query(ge=1, le=10_000_000)] = 1,
    chunk: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    """A document's metadata and one part of its text: rendered (Markdown) and its chunks.

    A long document is shown in parts (``?part=N``) of a bounded size; ``?chunk=ID``
    opens the part that holds that chunk (search results link there). A part is rendered
    once per content and read back from the cache after that (``app.documents.rendered``).
    """
    doc = _get(session, document_id)
    cache = RenderCache(rt.settings.render_cache_dir)
    outline = None
    if doc.doc_type == "markdown":
        outline = cache.outline(doc.content_hash, service.original_path(rt.settings.files_dir, doc))
    if outline:
        key = chunk_key(doc.id, doc.updated_at, doc.chunk_count)
        starts = cache.chunk_starts(outline, key, lambda: _chunk_texts(session, doc.id))
    else:
        starts = _chunk_pages(session, doc.id)
    index = min(part, len(starts)) - 1
    if chunk is not None:
        ordinal = session.scalar(
            select(Chunk.ordinal).where(Chunk.id == chunk, Chunk.document_id == doc.id)
        )
        if ordinal is not None:
            index = max(0, bisect.bisect_right(starts, ordinal) - 1)
    query = select(Chunk).where(Chunk.document_id == doc.id, Chunk.ordinal >= starts[index])
    if index + 1 < len(starts):
        query = query.where(Chunk.ordinal < starts[index + 1])
    chunks = list(session.scalars(query.order_by(Chunk.ordinal)))
    html: Markup | None = None
    anchors: dict[str, str] = {}
    if outline:
        rendered = cache.part(outline, index)
        html = rendered.html
        for h in rendered.headings:
            anchors.setdefault(h.text, h.anchor)
    views = [ChunkView(c, _nearest_anchor(c.heading_path, anchors)) for c in chunks]
    collection = collections.get(session, doc.collection_id)
    ctx = {
        "doc": doc,
        "chunks": views,
        "html": html,
        "nav": PartNav(index + 1, len(starts)) if len(starts) > 1 else None,
        "collection": collection,
        "can_delete": _can_delete(user, doc),
    }
    return render(request, "document.html", ctx)


def _chunk_texts(session: Session, document_id: int) -> list[tuple[int, str]]:
    query = select(Chunk.ordinal, Chunk.text).where(Chunk.document_id == document_id)
    return [(o, t) for o, t in session.execute(query.order_by(Chunk.ordinal))]


def _chunk_pages(session: Session, document_id: int) -> list[int]:
    """First chunk ordinal of each page of a document shown by its chunks alone."""
    query = select(Chunk.ordinal, func.length(Chunk.text)).where(Chunk.document_id == document_id)
    starts: list[int] = []
    used = 0
    for ordinal, size in session.execute(query.order_by(Chunk.ordinal)):
        if not starts or (used and used + size > CHUNK_PAGE_CHARS):
            starts.append(ordinal)
            used = 0
        used += size
    return starts or [0]


@router.get("/documents/{document_id}/original")
def original(
    rt: RuntimeDep, session: SessionDep, _user: ReaderUser, document_id: IdPath
) -> Response:
    """The uploaded file: a PDF opens in the browser (``#page=N`` works), text downloads."""
    doc = _get(session, document_id)
    path = service.original_path(rt.settings.files_dir, doc)
    if not path.exists():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the original file is missing")
    if doc.doc_type == "pdf":
        media, disposition = "application/pdf", "inline"
    else:
        # Never text/html: an uploaded file must not run as a page of this site.
        media, disposition = "text/plain; charset=utf-8", "attachment"
    return FileResponse(
        path,
        media_type=media,
        filename=doc.filename,
        content_disposition_type=disposition,
        # sandbox: a PDF's scripts and forms run in an opaque origin, never as this site
        # (Chromium's viewer still shows it inline, #page=N included).
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'; frame-ancestors 'none'",
        },
    )


# --- upload ---------------------------------------------------------------------------


def _upload_ctx(rt: Runtime, session: Session, **extra: object) -> dict[str, object]:
    rt.collection(session)  # the default collection exists
    return {
        "collections": [c.name for c in collections.list_all(session)],
        "max_bytes": rt.settings.max_upload_bytes,
        "max_size": human_size(rt.settings.max_upload_bytes),
        "accepted": filetypes.accepted_list(),
        "accept": filetypes.accept_attribute(),
        **extra,
    }


@router.get("/upload")
def upload_page(
    request: Request, rt: RuntimeDep, session: SessionDep, _user: EditorUser
) -> Response:
    return render(request, "upload.html", _upload_ctx(rt, session, items=None))


@router.post("/upload")
def upload(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    user: EditorUser,
    files: Annotated[list[UploadFile], File()],
    collection: Annotated[str, Form()] = "",
    tags: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """Accept several files; report for each: accepted, duplicate, or rejected and why."""
    try:
        col = rt.collection(session, collection or None)
    except CollectionNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    # Each file's outcome shows on the page, a full or read-only disk included (its reason,
    # translated): the page answers 200 so that htmx shows it.
    items = service.upload_files(
        session,
        collection=col,
        files=[(f.filename or "unnamed", f.file) for f in files if f.filename],
        files_dir=rt.settings.files_dir,
        max_bytes=rt.settings.max_upload_bytes,
        max_attempts=rt.settings.job_max_attempts,
        uploaded_by=user,
        tags=service.parse_tags(tags),
    )
    ctx = _upload_ctx(rt, session, items=items, chosen=col.name)
    return render(request, "upload.html", ctx, block="upload_results")


def _nearest_anchor(path: list[str] | None, anchors: dict[str, str]) -> str | None:
    """The anchor of the deepest entry of a chunk's heading path that is a rendered
    heading: a man-page option or an exam part is named in the path but is no heading."""
    for entry in reversed(path or []):
        if entry in anchors:
            return anchors[entry]
    return None
