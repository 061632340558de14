"""JSON API for documents: upload, list, get (with job status), delete, re-ingest."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    HTTPException,
    Query,
    Response,
    UploadFile,
    status,
)
from pydantic import BaseModel, Field

from app.auth.deps import EditorUser, ReaderUser
from app.auth.models import Role
from app.collections.access import Access, check_write, readable_collection
from app.collections.deps import AccessDep
from app.collections.service import CollectionNotFound
from app.deps import MAX_ID, IdPath, RuntimeDep, SessionDep
from app.documents import chunks as chunk_edits
from app.documents import service
from app.documents.models import Chunk, Document
from app.documents.schemas import DocumentOut, UploadItem, UploadOut
from app.jobs.service import latest_for_document

router = APIRouter(prefix="/api/v1/documents", tags=["documents"])


@router.post("", response_model=UploadOut, status_code=status.HTTP_201_CREATED)
def upload(
    rt: RuntimeDep,
    session: SessionDep,
    user: EditorUser,
    access: AccessDep,
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

    ``tags`` are kept across re-ingests; a duplicate keeps the tags it had. An admin may
    send ``.zip`` archives (each file inside is one item, "kb.zip/hr/leave.md") and
    files named with their folder ("kb/hr/leave.md"): the folder ("kb/hr") becomes a tag."""
    try:
        col = rt.collection(session, collection)
        check_write(access, col)
    except CollectionNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    admin = user.can(Role.ADMIN)
    outcomes = service.upload_batch(
        session,
        collection=col,
        files=[(f.filename or "unnamed", f.file) for f in files],
        files_dir=rt.settings.files_dir,
        max_bytes=rt.settings.max_upload_bytes,
        max_attempts=rt.settings.job_max_attempts,
        uploaded_by=user,
        tags=service.parse_tags(tags),
        archives=admin,
        folders=admin,
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
    access: AccessDep,
    collection: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[DocumentOut]:
    """Documents, newest first, with their status (``limit`` at most 1000)."""
    col_id = readable_collection(session, access, collection).id if collection else None
    docs = service.list_documents(
        session,
        collection_id=col_id,
        limit=limit,
        offset=offset,
        collection_ids=access.readable,
    )
    return [DocumentOut.of(d) for d in docs]


class BulkIn(BaseModel):
    action: Literal["delete", "reingest"]
    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(max_length=1000)


class BulkSkipped(BaseModel):
    id: int
    reason: str


class BulkOut(BaseModel):
    action: str
    done: list[int]
    skipped: list[BulkSkipped]


@router.post("/bulk", response_model=BulkOut)
def bulk(
    rt: RuntimeDep, session: SessionDep, user: EditorUser, access: AccessDep, body: BulkIn
) -> BulkOut:
    """Delete or re-ingest several documents; each is done or skipped with a reason
    (an editor deletes only their own; one being ingested is not queued again)."""
    result = service.run_bulk(
        session,
        rt.settings,
        action=body.action,
        ids=body.ids,
        user=user,
        collection_ids=access.writable,
    )
    skipped = [BulkSkipped(id=i, reason=r) for i, r in result.skipped]
    return BulkOut(action=result.action, done=result.done, skipped=skipped)


@router.get("/{document_id}", response_model=DocumentOut)
def get_document(
    session: SessionDep, _user: ReaderUser, access: AccessDep, document_id: IdPath
) -> DocumentOut:
    """One document with the status and progress of its latest job."""
    doc = _get(session, document_id, access)
    return DocumentOut.of(doc, latest_for_document(session, doc.id))


@router.delete("/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_document(
    rt: RuntimeDep, session: SessionDep, user: EditorUser, access: AccessDep, document_id: IdPath
) -> Response:
    """Remove the document from SQL, the index and the disk (editors: their own only)."""
    doc = _get(session, document_id, access, write=True)
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
    rt: RuntimeDep, session: SessionDep, _user: EditorUser, access: AccessDep, document_id: IdPath
) -> DocumentOut:
    """Parse and embed the document again (after a failure, or a parser upgrade)."""
    doc = _get(session, document_id, access, write=True)
    job = service.reingest(session, doc, max_attempts=rt.settings.job_max_attempts)
    session.commit()
    return DocumentOut.of(doc, job)


def _get(
    session: SessionDep, document_id: int, access: Access, *, write: bool = False
) -> service.Document:
    return service.get_for(session, document_id, access, write=write)


# --- chunks: edit a chunk's text, disable or enable it (app.documents.chunks) -----------

chunks_router = APIRouter(prefix="/api/v1/chunks", tags=["chunks"])


class ChunkPatch(BaseModel):
    """What to change; a field left out stays as it is."""

    text: str | None = Field(
        default=None,
        max_length=chunk_edits.MAX_TEXT_CHARS,
        description="the chunk's new text (embedded again at once; a re-ingest of the "
        "document replaces its chunks and loses the edit)",
    )
    disabled: bool | None = Field(
        default=None, description="true: leave the chunk out of every search; false: back in"
    )


class ChunkOut(BaseModel):
    id: int
    document_id: int
    collection_id: int
    ordinal: int
    heading_path: list[str]
    text: str
    language: str | None
    kind: str
    disabled: bool

    @classmethod
    def of(cls, chunk: Chunk) -> ChunkOut:
        return cls(
            id=chunk.id,
            document_id=chunk.document_id,
            collection_id=chunk.collection_id,
            ordinal=chunk.ordinal,
            heading_path=list(chunk.heading_path or []),
            text=chunk.text,
            language=chunk.language,
            kind=chunk.kind,
            disabled=chunk.disabled,
        )


class ChunkEditOut(BaseModel):
    id: int
    action: Literal["edit", "disable", "enable"]
    user: str | None
    old_text: str | None
    new_text: str | None
    created_at: datetime


def _writable_chunk(
    session: SessionDep, user: EditorUser, access: AccessDep, chunk_id: IdPath
) -> tuple[Document, Chunk]:
    """The chunk, if the user may change it: resolved before the body is read, so that a
    chunk of a collection the user may not read is a 404 whatever the body is."""
    return chunk_edits.get_for(session, chunk_id, access, user)


WritableChunk = Annotated[tuple[Document, Chunk], Depends(_writable_chunk)]


@chunks_router.patch("/{chunk_id}", response_model=ChunkOut)
def patch_chunk(
    rt: RuntimeDep, session: SessionDep, user: EditorUser, found: WritableChunk, body: ChunkPatch
) -> ChunkOut:
    """Change a chunk's text (embedded again with the collection's model: 503 when that
    model is down, and nothing changes), or disable or enable it. Admins, and the editor
    who uploaded the document, with write access to its collection."""
    _doc, chunk = found
    if body.text is not None:
        chunk_edits.edit_chunk(rt, session, chunk, body.text, user)
    if body.disabled is not None:
        chunk_edits.set_disabled(session, chunk, body.disabled, user)
    session.commit()
    return ChunkOut.of(chunk)


@chunks_router.get("/{chunk_id}/history", response_model=list[ChunkEditOut])
def chunk_history(session: SessionDep, found: WritableChunk) -> list[ChunkEditOut]:
    """The chunk's changes, newest first."""
    _doc, chunk = found
    return [
        ChunkEditOut(
            id=e.id,
            action=e.action,  # type: ignore[arg-type]
            user=e.user,
            old_text=e.old_text,
            new_text=e.new_text,
            created_at=e.created_at,
        )
        for e in chunk_edits.history(session, chunk.id)
    ]
