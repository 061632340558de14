"""Document pages: list with live progress, upload, view, original, delete, retry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile, status
from fastapi.responses import FileResponse, RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.deps import EditorUser, ReaderUser
from app.auth.models import Role, User
from app.collections import service as collections
from app.collections.service import CollectionNotFound
from app.deps import RuntimeDep, SessionDep
from app.documents import service
from app.documents.models import Chunk, Document, DocumentStatus
from app.jobs.models import Job
from app.runtime import Runtime
from app.text.render import render_markdown
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
    request: Request, rt: RuntimeDep, session: SessionDep, user: EditorUser, document_id: int
) -> Response:
    doc = _get(session, document_id)
    if not _can_delete(user, doc):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "editors can delete only their own documents"
        )
    key = service.delete_document(session, doc)
    session.commit()
    service.remove_stored_file(rt.settings.files_dir, key)
    return RedirectResponse("/documents", status_code=303)


@router.post("/documents/{document_id}/reingest")
def reingest_document(
    rt: RuntimeDep, session: SessionDep, _user: EditorUser, document_id: int
) -> Response:
    """Retry a failed document, or parse and embed a ready one again."""
    service.reingest(session, _get(session, document_id), max_attempts=rt.settings.job_max_attempts)
    session.commit()
    return RedirectResponse("/documents", status_code=303)


@dataclass(frozen=True)
class ChunkView:
    chunk: Chunk
    anchor: str | None  # the rendered Markdown heading this chunk sits under


@router.get("/documents/{document_id}")
def document_page(
    request: Request, session: SessionDep, rt: RuntimeDep, user: ReaderUser, document_id: int
) -> Response:
    """A document's metadata, its sections and chunks, and (Markdown) its rendered text."""
    doc = _get(session, document_id)
    chunks = list(
        session.scalars(select(Chunk).where(Chunk.document_id == doc.id).order_by(Chunk.ordinal))
    )
    html: Markup | None = None
    anchors: dict[str, str] = {}
    if doc.doc_type == "markdown":
        path = service.original_path(rt.settings.files_dir, doc)
        if path.exists():
            html, headings = render_markdown(_decode(path.read_bytes()))
            for h in headings:
                anchors.setdefault(h.text, h.anchor)
    views = [
        ChunkView(c, anchors.get(c.heading_path[-1]) if c.heading_path else None) for c in chunks
    ]
    collection = collections.get(session, doc.collection_id)
    ctx = {
        "doc": doc,
        "chunks": views,
        "html": html,
        "collection": collection,
        "can_delete": _can_delete(user, doc),
    }
    return render(request, "document.html", ctx)


def _decode(data: bytes) -> str:
    for enc in ("utf-8-sig", "utf-16", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


@router.get("/documents/{document_id}/original")
def original(rt: RuntimeDep, session: SessionDep, _user: ReaderUser, document_id: int) -> Response:
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
        headers={"X-Content-Type-Options": "nosniff"},
    )


# --- upload ---------------------------------------------------------------------------


def _upload_ctx(rt: Runtime, session: Session, **extra: object) -> dict[str, object]:
    rt.collection(session)  # the default collection exists
    return {
        "collections": [c.name for c in collections.list_all(session)],
        "max_bytes": rt.settings.max_upload_bytes,
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
    items = service.accept_uploads(
        session,
        collection=col,
        files=[(f.filename or "unnamed", f.file) for f in files if f.filename],
        files_dir=rt.settings.files_dir,
        max_bytes=rt.settings.max_upload_bytes,
        max_attempts=rt.settings.job_max_attempts,
        uploaded_by=user,
        tags=service.parse_tags(tags),
    )
    session.commit()
    ctx = _upload_ctx(rt, session, items=items, chosen=col.name)
    return render(request, "upload.html", ctx, block="upload_results")
