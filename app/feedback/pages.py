"""The thumbs on the Search and Ask pages, and the admins' Insights page with its export."""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from app.auth.deps import AdminUser, ReaderUser
from app.db import utcnow
from app.deps import MAX_ID, SessionDep
from app.feedback import insights
from app.feedback.charts import Series, bar_chart
from app.feedback.models import FeedbackKind, Rating, Source
from app.feedback.querylog import lifespan, writer
from app.feedback.routes import router as api_router
from app.feedback.service import MAX_QUERY_CHARS, record_feedback
from app.web import is_htmx, render

router = APIRouter(include_in_schema=False, lifespan=lifespan)
router.include_router(api_router)

Days = Annotated[int, Query(ge=1, le=365)]


def _safe_next(target: str) -> str:
    """Only a path of this site: never redirect to another host."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _chunk_ids(text: str) -> list[int]:
    """``"3,1,2"`` -> [3, 1, 2]; anything that is not an id is left out."""
    ids = []
    for part in text.split(","):
        part = part.strip()
        if part.isascii() and part.isdigit() and 1 <= int(part) <= MAX_ID:
            ids.append(int(part))
    return ids


@router.post("/feedback")
def rate_page(
    request: Request,
    session: SessionDep,
    user: ReaderUser,
    rating: Annotated[Rating, Form()],
    q: Annotated[str, Form(max_length=MAX_QUERY_CHARS)],
    collection: Annotated[str, Form(max_length=200)],
    chunk_id: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
    chunk_ids: Annotated[str, Form(max_length=4000)] = "",
    weak: Annotated[bool, Form()] = False,
    source: Annotated[Source, Form()] = Source.SEARCH,
    next: Annotated[str, Form(max_length=4000)] = "/",
    kind: Annotated[FeedbackKind, Form()] = FeedbackKind.HIT,
    model: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """A thumbs on a hit (``chunk_id``) or on the written answer (``kind=answer``, with
    its ``model``): htmx swaps in the thanks; a plain form goes back to the page."""
    record_feedback(
        session,
        user=user,
        kind=kind,
        query=q,
        collection=collection,
        chunk_ids=_chunk_ids(chunk_ids),
        rating=rating,
        chunk_id=chunk_id,
        model=model or None,
        weak_match=weak,
        source=source,
    )
    session.commit()
    if is_htmx(request):
        return render(request, "_thanks.html", {"rating": rating})
    back = _safe_next(next)
    sep = "&" if "?" in back else "?"
    rated = chunk_id if kind == FeedbackKind.HIT else "answer"
    return RedirectResponse(f"{back}{sep}rated={rated}", status_code=303)


@router.get("/admin/insights")
def insights_page(
    request: Request, session: SessionDep, _admin: AdminUser, days: Days = 30
) -> Response:
    """Questions to answer first (weak matches, rated down) and charts of the last days."""
    log_writer = writer(request)
    if log_writer is not None:
        log_writer.flush()  # the questions of the last seconds too
    now = utcnow()
    found = insights.questions(session, start=insights.since(days, now=now))
    daily = insights.per_day(session, days=days, now=now)
    dates = [d.day for d in daily]
    asked = sum(d.questions for d in daily)
    weak = sum(d.weak for d in daily)
    ctx = {
        "days": days,
        "questions": found[: insights.MAX_QUESTIONS],
        "more": max(0, len(found) - insights.MAX_QUESTIONS),
        "asked": asked,
        "weak_rate": (weak / asked) if asked else None,
        "up": sum(d.up for d in daily),
        "down": sum(d.down for d in daily),
        "questions_chart": bar_chart(dates, [Series("asked", [d.questions for d in daily])]),
        "weak_chart": bar_chart(
            dates, [Series("weak", [d.weak_rate for d in daily])], percent=True
        ),
        "ratings_chart": bar_chart(
            dates, [Series("up", [d.up for d in daily]), Series("down", [d.down for d in daily])]
        ),
    }
    return render(request, "admin/insights.html", ctx)


@router.get("/admin/insights/export.jsonl")
def export(request: Request, session: SessionDep, _admin: AdminUser, days: Days = 30) -> Response:
    """Rated and weakly matched questions as graded queries, one JSON object a line."""
    log_writer = writer(request)
    if log_writer is not None:
        log_writer.flush()
    now = utcnow()
    lines = insights.graded_queries(session, start=insights.since(days, now=now))
    body = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    name = f"kb-feedback-{now:%Y%m%d}.jsonl"
    return Response(
        body,
        media_type="application/x-ndjson; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
