"""Every table, imported in one place for Alembic and for create-all in tests."""

from app.auth.models import ApiToken, Role, User
from app.collections.models import Collection
from app.db import Base
from app.documents.models import Chunk, Document, DocumentStatus
from app.feedback.models import Feedback, QueryLog
from app.jobs.models import Job, JobKind, JobStatus

__all__ = [
    "ApiToken",
    "Base",
    "Chunk",
    "Collection",
    "Document",
    "DocumentStatus",
    "Feedback",
    "Job",
    "JobKind",
    "JobStatus",
    "QueryLog",
    "Role",
    "User",
]
