"""JSON shapes of documents and uploads in the API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from app.documents.models import Document
from app.jobs.models import Job


class JobOut(BaseModel):
    id: int
    status: str
    progress: float
    message: str
    error: str | None
    attempts: int

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(
            id=job.id,
            status=job.status,
            progress=job.progress,
            message=job.message,
            error=job.error,
            attempts=job.attempts,
        )


class DocumentOut(BaseModel):
    id: int
    collection_id: int
    filename: str
    title: str | None
    doc_type: str
    language: str | None
    status: str
    error: str | None
    size_bytes: int
    page_count: int | None
    chunk_count: int
    content_hash: str
    created_at: datetime
    updated_at: datetime
    job: JobOut | None = None

    @classmethod
    def of(cls, doc: Document, job: Job | None = None) -> DocumentOut:
        return cls(
            id=doc.id,
            collection_id=doc.collection_id,
            filename=doc.filename,
            title=doc.title,
            doc_type=doc.doc_type,
            language=doc.language,
            status=doc.status,
            error=doc.error,
            size_bytes=doc.size_bytes,
            page_count=doc.page_count,
            chunk_count=doc.chunk_count,
            content_hash=doc.content_hash,
            created_at=doc.created_at,
            updated_at=doc.updated_at,
            job=JobOut.of(job) if job is not None else None,
        )


class UploadItem(BaseModel):
    filename: str
    result: Literal["accepted", "duplicate", "rejected"]
    document_id: int | None = None
    reason: str | None = None


class UploadOut(BaseModel):
    items: list[UploadItem]
