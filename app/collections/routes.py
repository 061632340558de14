"""JSON API for collections (knowledge bases and the model each one was built with)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from app.auth.deps import AdminUser, ReaderUser
from app.collections import access, model_switch, service
from app.collections.access import readable
from app.collections.deps import AccessDep
from app.collections.models import Group
from app.deps import RuntimeDep, SessionDep
from app.embedding.base import EmbedderError
from app.embedding.registry import UnknownEmbedder

router = APIRouter(prefix="/api/v1/collections", tags=["collections"])


class CollectionOut(BaseModel):
    """A collection and the model its vectors come from (``next_*``: a switch in progress)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    embedder: str
    model: str
    dim: int
    query_instruction: str | None = None
    next_embedder: str | None = None
    next_model: str | None = None
    next_dim: int | None = None
    private: bool = Field(
        default=False, description="visible only to administrators and those granted access"
    )


@router.get("", response_model=list[CollectionOut])
def list_collections(
    rt: RuntimeDep, session: SessionDep, _user: ReaderUser, access: AccessDep
) -> list[CollectionOut]:
    """Every collection you may read, with its embedding model and vector dimension."""
    rt.collection(session)  # the default one exists from the first request on
    session.commit()
    return [CollectionOut.model_validate(c) for c in readable(session, access)]


class CollectionIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    embedder: str | None = Field(default=None, description="default: the server's embedder")
    private: bool = False


@router.post("", response_model=CollectionOut, status_code=201)
def create_collection(
    rt: RuntimeDep, session: SessionDep, _admin: AdminUser, body: CollectionIn
) -> CollectionOut:
    """A new collection (admins); ``private``: only admins and grantees see it."""
    try:
        spec = rt.embedders.spec(body.embedder or rt.settings.embedder)
    except UnknownEmbedder as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    col = service.create(session, name=body.name, description=body.description, spec=spec)
    access.set_private(session, col, body.private)
    session.commit()
    return CollectionOut.model_validate(col)


class AccessIn(BaseModel):
    private: bool


@router.put("/{name}/access", response_model=CollectionOut)
def set_access(session: SessionDep, _admin: AdminUser, name: str, body: AccessIn) -> CollectionOut:
    """Make the collection private or visible to everyone (admins)."""
    col = service.get_by_name(session, name)
    access.set_private(session, col, body.private)
    session.commit()
    return CollectionOut.model_validate(col)


class GrantIn(BaseModel):
    user: str = Field(default="", max_length=100, description="a username, or")
    group: str = Field(default="", max_length=100, description="a group name")
    access: Literal["read", "write"] = "read"


class GrantOut(BaseModel):
    grantee: str
    kind: str = Field(description="user or group")
    access: str


@router.get("/{name}/grants", response_model=list[GrantOut])
def list_grants(session: SessionDep, _admin: AdminUser, name: str) -> list[GrantOut]:
    """Who may read (or also write) the collection while it is private (admins)."""
    col = service.get_by_name(session, name)
    return [
        GrantOut(grantee=g.grantee, kind=g.kind, access=g.access)
        for g in access.grants(session, col)
    ]


@router.post("/{name}/grants", response_model=list[GrantOut])
def add_grant(session: SessionDep, _admin: AdminUser, name: str, body: GrantIn) -> list[GrantOut]:
    """Grant a user or a group read or write access (replacing an earlier grant)."""
    col = service.get_by_name(session, name)
    access.grant_by_names(session, col, level=body.access, user=body.user, group=body.group)
    session.commit()
    return list_grants(session, _admin, name)


@router.delete("/{name}/grants", response_model=list[GrantOut])
def remove_grant(
    session: SessionDep,
    _admin: AdminUser,
    name: str,
    user: Annotated[str, Query(max_length=100)] = "",
    group: Annotated[str, Query(max_length=100)] = "",
) -> list[GrantOut]:
    """Revoke the grant of ``user`` or ``group``."""
    col = service.get_by_name(session, name)
    access.revoke_by_names(session, col, user=user, group=group)
    session.commit()
    return list_grants(session, _admin, name)


groups_router = APIRouter(prefix="/api/v1/groups", tags=["collections"])


class GroupOut(BaseModel):
    name: str
    members: list[str]


class GroupIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)


class MemberIn(BaseModel):
    user: str = Field(min_length=1, max_length=100)


def _group_out(session: SessionDep, group: Group) -> GroupOut:
    return GroupOut(name=group.name, members=[u.username for u in access.members(session, group)])


@groups_router.get("", response_model=list[GroupOut])
def list_groups(session: SessionDep, _admin: AdminUser) -> list[GroupOut]:
    """Every group and its members (admins)."""
    return [_group_out(session, g) for g in access.groups(session)]


@groups_router.post("", response_model=GroupOut, status_code=201)
def create_group(session: SessionDep, _admin: AdminUser, body: GroupIn) -> GroupOut:
    group = access.create_group(session, body.name)
    session.commit()
    return _group_out(session, group)


@groups_router.delete("/{name}", status_code=204)
def delete_group(session: SessionDep, _admin: AdminUser, name: str) -> None:
    access.delete_group(session, access.group_by_name(session, name))
    session.commit()


@groups_router.post("/{name}/members", response_model=GroupOut)
def add_member(session: SessionDep, _admin: AdminUser, name: str, body: MemberIn) -> GroupOut:
    group = access.group_by_name(session, name)
    access.add_member(session, group, access.user_by_name(session, body.user))
    session.commit()
    return _group_out(session, group)


@groups_router.delete("/{name}/members/{user}", response_model=GroupOut)
def remove_member(session: SessionDep, _admin: AdminUser, name: str, user: str) -> GroupOut:
    group = access.group_by_name(session, name)
    access.remove_member(session, group, access.user_by_name(session, user))
    session.commit()
    return _group_out(session, group)


class ModelChange(BaseModel):
    embedder: str


@router.post("/{name}/embedder", response_model=CollectionOut, status_code=202)
def change_model(
    rt: RuntimeDep, session: SessionDep, _admin: AdminUser, name: str, body: ModelChange
) -> CollectionOut:
    """Move the collection to another embedder: every chunk is re-embedded in the
    background while search answers from the current vectors; then it switches at once."""
    try:
        col = service.get_by_name(session, name)
        model_switch.start_reembed(session, col, spec=rt.embedders.spec(body.embedder))
    except service.CollectionNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except (service.CollectionError, UnknownEmbedder) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except EmbedderError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    session.commit()
    return CollectionOut.model_validate(col)
