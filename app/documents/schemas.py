"""JSON shapes of documents and uploads in the API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from app.documents.models import Document
from app.jobs.models import Job


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: str
    progress: float
    message: str
    error: str | None
    attempts: int


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    collection_id: int
    filename: str
    # Never empty: the stored title, or one made of the file name (Document.display_title).
    title: str = Field(validation_alias=AliasChoices("display_title", "title"))
    doc_type: str
    language: str | None
    status: str
    error: str | None
    size_bytes: int
    page_count: int | None
    chunk_count: int
    tags: list[str]
    content_hash: str
    created_at: datetime
    updated_at: datetime
    job: JobOut | None = None

    @classmethod
    def of(cls, doc: Document, job: Job | None = None) -> DocumentOut:
        out = cls.model_validate(doc)
        out.job = JobOut.model_validate(job) if job is not None else None
        return out


class UploadItem(BaseModel):
    filename: str
    result: Literal["accepted", "duplicate", "rejected"]
    document_id: int | None = None
    reason: str | None = None


class UploadOut(BaseModel):
    items: list[UploadItem]
