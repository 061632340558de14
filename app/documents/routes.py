"""JSON API for documents: upload, list, get (with job status), delete, re-ingest."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Response, UploadFile, status

from app.auth.deps import EditorUser, ReaderUser
from app.auth.models import Role
from app.collections.service import CollectionNotFound
from app.deps import RuntimeDep, SessionDep
from app.documents import service
from app.documents.schemas import DocumentOut, UploadItem, UploadOut
from app.jobs.service import latest_for_document

router = APIRouter(prefix="/api/v1/documents", tags=["documents"])


@router.post("", response_model=UploadOut, status_code=status.HTTP_201_CREATED)
def upload(
    rt: RuntimeDep,
    session: SessionDep,
    user: EditorUser,
    response: Response,
    files: Annotated[list[UploadFile], File(description="PDF or Markdown files")],
    collection: Annotated[str | None, Form()] = None,
    tags: Annotated[
        str | None,
        Form(
            max_length=5000,
            description="tags for every new document, separated by , ， 、 ; or ；",
        ),
    ] = None,
) -> UploadOut:
    """Store each file and queue it for ingest; the same content is never stored twice.

    ``tags`` are kept across re-ingests; a duplicate keeps the tags it had."""
    try:
        col = rt.collection(session, collection)
    except CollectionNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    outcomes = service.accept_uploads(
        session,
        collection=col,
        files=[(f.filename or "unnamed", f.file) for f in files],
        files_dir=rt.settings.files_dir,
        max_bytes=rt.settings.max_upload_bytes,
        max_attempts=rt.settings.job_max_attempts,
        uploaded_by=user,
        tags=service.parse_tags(tags),
    )
    items = [
        UploadItem(filename=o.filename, result=o.result, document_id=o.document_id, reason=o.reason)
        for o in outcomes
    ]
    too_large = any(o.too_large for o in outcomes)
    session.commit()
    if items and all(i.result == "rejected" for i in items):
        code = status.HTTP_413_CONTENT_TOO_LARGE if too_large else status.HTTP_400_BAD_REQUEST
        raise HTTPException(code, detail=[i.model_dump() for i in items])
    if not any(i.result == "accepted" for i in items):
        response.status_code = status.HTTP_200_OK
    return UploadOut(items=items)


@router.get("", response_model=list[DocumentOut])
def list_documents(
    rt: RuntimeDep,
    session: SessionDep,
    _user: ReaderUser,
    collection: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[DocumentOut]:
    """Documents, newest first, with their status."""
    col_id = rt.collection(session, collection).id if collection else None
    docs = service.list_documents(
        session, collection_id=col_id, limit=min(limit, 1000), offset=offset
    )
    return [DocumentOut.of(d) for d in docs]


@router.get("/{document_id}", response_model=DocumentOut)
def get_document(session: SessionDep, _user: ReaderUser, document_id: int) -> DocumentOut:
    """One document with the status and progress of its latest job."""
    doc = _get(session, document_id)
    return DocumentOut.of(doc, latest_for_document(session, doc.id))


@router.delete("/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_document(
    rt: RuntimeDep, session: SessionDep, user: EditorUser, document_id: int
) -> Response:
    """Remove the document from SQL, the index and the disk (editors: their own only)."""
    doc = _get(session, document_id)
    if doc.uploaded_by_id != user.id and not user.can(Role.ADMIN):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "editors can delete only their own documents"
        )
    key = service.delete_document(session, doc)
    session.commit()
    service.remove_stored_file(rt.settings.files_dir, key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{document_id}/reingest", response_model=DocumentOut)
def reingest(
    rt: RuntimeDep, session: SessionDep, _user: EditorUser, document_id: int
) -> DocumentOut:
    """Parse and embed the document again (after a failure, or a parser upgrade)."""
    doc = _get(session, document_id)
    job = service.reingest(session, doc, max_attempts=rt.settings.job_max_attempts)
    session.commit()
    return DocumentOut.of(doc, job)


def _get(session: SessionDep, document_id: int) -> service.Document:
    try:
        return service.get(session, document_id)
    except service.DocumentNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
