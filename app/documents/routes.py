"""JSON API for documents: upload, list, get (with job status), delete, re-ingest."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Query, Response, UploadFile, status

from app.auth.deps import EditorUser, ReaderUser
from app.auth.models import Role
from app.collections.service import CollectionNotFound
from app.deps import MAX_ID, IdPath, RuntimeDep, SessionDep
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
    outcomes = service.upload_files(
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
    if items and all(i.result == "rejected" for i in items):
        # The server's storage first (507 full, 503 not writable: retry later), then the
        # files' own faults (413 too large, 400 otherwise).
        storage = [o.storage_status for o in outcomes if o.storage_status]
        if storage:
            code = max(storage)
        elif any(o.too_large for o in outcomes):
            code = status.HTTP_413_CONTENT_TOO_LARGE
        else:
            code = status.HTTP_400_BAD_REQUEST
        headers = {"Retry-After": "60"} if storage else None
        raise HTTPException(code, detail=[i.model_dump() for i in items], headers=headers)
    if not any(i.result == "accepted" for i in items):
        response.status_code = status.HTTP_200_OK
    return UploadOut(items=items)


@router.get("", response_model=list[DocumentOut])
def list_documents(
    rt: RuntimeDep,
    session: SessionDep,
    _user: ReaderUser,
    collection: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[DocumentOut]:
    """Documents, newest first, with their status (``limit`` at most 1000)."""
    col_id = rt.collection(session, collection).id if collection else None
    docs = service.list_documents(session, collection_id=col_id, limit=limit, offset=offset)
    return [DocumentOut.of(d) for d in docs]


@router.get("/{document_id}", response_model=DocumentOut)
def get_document(session: SessionDep, _user: ReaderUser, document_id: IdPath) -> DocumentOut:
    """One document with the status and progress of its latest job."""
    doc = _get(session, document_id)
    return DocumentOut.of(doc, latest_for_document(session, doc.id))


@router.delete("/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_document(
    rt: RuntimeDep, session: SessionDep, user: EditorUser, document_id: IdPath
) -> Response:
    """Remove the document from SQL, the index and the disk (editors: their own only)."""
    doc = _get(session, document_id)
    if doc.uploaded_by_id != user.id and not user.can(Role.ADMIN):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "editors can delete only their own documents"
        )
    removed = service.delete_document(session, doc)
    session.commit()
    service.remove_files(rt.settings, removed)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{document_id}/reingest", response_model=DocumentOut)
def reingest(
    rt: RuntimeDep, session: SessionDep, _user: EditorUser, document_id: IdPath
) -> DocumentOut:
    """Parse and embed the document again (after a failure, or a parser upgrade)."""
    doc = _get(session, document_id)
    job = service.reingest(session, doc, max_attempts=rt.settings.job_max_attempts)
    session.commit()
    return DocumentOut.of(doc, job)


def _get(session: SessionDep, document_id: int) -> service.Document:
    return service.get(session, document_id)
