"""Admin pages for who may read which collection: private collections, grants, groups."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.auth import service as users
from app.auth.deps import AdminUser
from app.collections import access
from app.collections.models import Collection
from app.deps import IdPath, SessionDep
from app.errors import AppError, NotFound
from app.web import render

router = APIRouter(include_in_schema=False)

Name = Annotated[str, Form(max_length=200)]


def _collection(session: SessionDep, collection_id: int) -> Collection:
    col = session.get(Collection, collection_id)
    if col is None:
        raise NotFound("no collection with id {id}", id=collection_id)
    return col


def _back(collection_id: int) -> Response:
    return RedirectResponse(f"/admin/collections#collection-{collection_id}", status_code=303)


@router.post("/admin/collections/{collection_id}/access")
def set_private(
    session: SessionDep,
    _admin: AdminUser,
    collection_id: IdPath,
    private: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Make a collection private (admins and grantees only) or visible to everyone."""
    access.set_private(session, _collection(session, collection_id), private in ("1", "on", "true"))
    session.commit()
    return _back(collection_id)


@router.post("/admin/collections/{collection_id}/grants")
def grant(
    session: SessionDep,
    _admin: AdminUser,
    collection_id: IdPath,
    level: Annotated[str, Form(max_length=10)] = "read",
    user: Name = "",
    group: Name = "",
) -> Response:
    access.grant_by_names(
        session, _collection(session, collection_id), level=level, user=user, group=group
    )
    session.commit()
    return _back(collection_id)


@router.post("/admin/collections/{collection_id}/grants/revoke")
def revoke(
    session: SessionDep,
    _admin: AdminUser,
    collection_id: IdPath,
    user: Name = "",
    group: Name = "",
) -> Response:
    access.revoke_by_names(session, _collection(session, collection_id), user=user, group=group)
    session.commit()
    return _back(collection_id)


def _groups_page(
    request: Request, session: SessionDep, *, error: AppError | None = None, status: int = 200
) -> Response:
    groups = [(g, access.members(session, g)) for g in access.groups(session)]
    ctx = {
        "groups": groups,
        "usernames": [u.username for u in users.list_users(session)],
        "error": error,
    }
    return render(request, "admin/groups.html", ctx, status_code=status)


@router.get("/admin/groups")
def groups_page(request: Request, session: SessionDep, _admin: AdminUser) -> Response:
    return _groups_page(request, session)


@router.post("/admin/groups")
def create_group(request: Request, session: SessionDep, _admin: AdminUser, name: Name) -> Response:
    try:
        access.create_group(session, name)
    except AppError as exc:
        session.rollback()
        return _groups_page(request, session, error=exc, status=exc.status)
    session.commit()
    return RedirectResponse("/admin/groups", status_code=303)


@router.post("/admin/groups/{group_id}/members")
def add_member(
    request: Request, session: SessionDep, _admin: AdminUser, group_id: IdPath, user: Name
) -> Response:
    try:
        group = _group(session, group_id)
        access.add_member(session, group, access.user_by_name(session, user))
    except AppError as exc:
        session.rollback()
        return _groups_page(request, session, error=exc, status=exc.status)
    session.commit()
    return RedirectResponse("/admin/groups", status_code=303)


@router.post("/admin/groups/{group_id}/members/remove")
def remove_member(session: SessionDep, _admin: AdminUser, group_id: IdPath, user: Name) -> Response:
    access.remove_member(session, _group(session, group_id), access.user_by_name(session, user))
    session.commit()
    return RedirectResponse("/admin/groups", status_code=303)


@router.post("/admin/groups/{group_id}/delete")
def delete_group(session: SessionDep, _admin: AdminUser, group_id: IdPath) -> Response:
    access.delete_group(session, _group(session, group_id))
    session.commit()
    return RedirectResponse("/admin/groups", status_code=303)


def _group(session: SessionDep, group_id: int) -> access.Group:
    group = session.get(access.Group, group_id)
    if group is None:
        raise NotFound("no group with id {id}", id=group_id)
    return group
