"""Admin page for jobs: queued, running, failed with reasons; retry."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from app import lifecycle
from app.auth.deps import AdminUser
from app.deps import IdPath, SessionDep
from app.documents.models import Document
from app.jobs.models import Job, JobStatus
from app.web import render

router = APIRouter(include_in_schema=False)


@router.get("/admin/jobs")
def jobs_page(request: Request, session: SessionDep, _admin: AdminUser) -> Response:
    """The latest jobs, unfinished first."""
    rows = session.execute(
        select(Job, Document.filename)
        .outerjoin(Document, Document.id == Job.document_id)
        .order_by((Job.status == JobStatus.DONE), Job.id.desc())
        .limit(300)
    ).all()
    return render(request, "admin/jobs.html", {"jobs": [tuple(r) for r in rows]})


@router.post("/admin/jobs/{job_id}/retry")
def retry_job(session: SessionDep, _admin: AdminUser, job_id: IdPath) -> Response:
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such job")
    lifecycle.retry(session, job)
    session.commit()
    return RedirectResponse("/admin/jobs", status_code=303)
