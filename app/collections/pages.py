"""Admin page for collections: create, rename, describe; see the model each was built with."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select

from app.auth.deps import AdminUser
from app.collections import access, model_switch, service
from app.collections.models import Collection
from app.deps import IdPath, RuntimeDep, SessionDep
from app.documents.models import Document
from app.embedding.base import EmbedderError
from app.embedding.registry import UnknownEmbedder
from app.jobs.models import Job, JobKind
from app.web import render

router = APIRouter(include_in_schema=False)


def _page(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    rt.collection(session)
    counts = dict(
        session.execute(
            select(Document.collection_id, func.count(Document.id)).group_by(Document.collection_id)
        ).all()
    )
    reembeds = {
        j.payload.get("collection_id"): j
        for j in session.scalars(select(Job).where(Job.kind == JobKind.REEMBED).order_by(Job.id))
    }
    rows = [(c, counts.get(c.id, 0), reembeds.get(c.id)) for c in service.list_all(session)]
    ctx = {
        "rows": rows,
        "grants": {c.id: access.grants(session, c) for c, _, _ in rows},
        "group_names": [g.name for g in access.groups(session)],
        "embedders": rt.embedders.names(),
        "default_embedder": rt.settings.embedder,
        "error": error,
    }
    return render(request, "admin/collections.html", ctx, status_code=status)


@router.get("/admin/collections")
def collections_page(
    request: Request, rt: RuntimeDep, session: SessionDep, _admin: AdminUser
) -> Response:
    return _page(request, rt, session)


@router.post("/admin/collections")
def create_collection(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    _admin: AdminUser,
    name: Annotated[str, Form()],
    description: Annotated[str, Form()] = "",
    embedder: Annotated[str, Form()] = "",
    private: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    try:
        spec = rt.embedders.spec(embedder or rt.settings.embedder)
        col = service.create(session, name=name, description=description, spec=spec)
        access.set_private(session, col, private in ("1", "on", "true"))
    except (service.CollectionError, UnknownEmbedder) as exc:
        session.rollback()
        return _page(request, rt, session, error=str(exc), status=400)
    session.commit()
    return RedirectResponse("/admin/collections", status_code=303)


@router.post("/admin/collections/{collection_id}/embedder")
def change_model(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    _admin: AdminUser,
    collection_id: IdPath,
    embedder: Annotated[str, Form()],
) -> Response:
    """Start re-embedding the collection with another model (search keeps working)."""
    try:
        col = session.get(Collection, collection_id)
        if col is None:
            raise service.CollectionError("no such collection")
        model_switch.start_reembed(session, col, spec=rt.embedders.spec(embedder))
    except (service.CollectionError, UnknownEmbedder, EmbedderError) as exc:
        session.rollback()
        return _page(request, rt, session, error=str(exc), status=400)
    session.commit()
    return RedirectResponse("/admin/collections", status_code=303)


@router.post("/admin/collections/{collection_id}")
def update_collection(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    _admin: AdminUser,
    collection_id: IdPath,
    name: Annotated[str, Form()],
    description: Annotated[str, Form()] = "",
    query_instruction: Annotated[str | None, Form()] = None,
) -> Response:
    col = session.get(Collection, collection_id)
    try:
        if col is None:
            raise service.CollectionError("no such collection")
        if col.name == rt.settings.default_collection and name.strip() != col.name:
            raise service.CollectionError("the default collection keeps its name")
        service.rename(
            session, col, name=name, description=description, query_instruction=query_instruction
        )
    except service.CollectionError as exc:
        session.rollback()
        return _page(request, rt, session, error=str(exc), status=400)
    session.commit()
    return RedirectResponse("/admin/collections", status_code=303)
