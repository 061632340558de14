"""The request's collection access, computed once per request from the signed-in user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.auth.deps import (
    SAFE_METHODS,
    CsrfFailed,
    CurrentUser,
    PermissionDenied,
    authenticated_user,
)
from app.auth.models import Role, User
from app.collections.access import Access, access_for
from app.collections.models import Collection
from app.collections.service import list_all
from app.deps import ReadSessionDep, RuntimeDep, SessionDep


def current_access(user: CurrentUser, session: SessionDep) -> Access:
    return access_for(session, user)


AccessDep = Annotated[Access, Depends(current_access)]


@dataclass(frozen=True)
class Reader:
    """A reader, the collections they may read, and every collection (read for that)."""

    user: User
    access: Access
    collections: list[Collection]


def reader_access(request: Request, rt: RuntimeDep, session: ReadSessionDep) -> Reader:
    """``ReaderUser`` and ``AccessDep`` of a GET route in one trip through the threadpool
    instead of two (the search API: each trip is a thread hand-over under load), with the
    same checks in the same order: who is asking (401), the reader role (403), then the
    collections they may read, worked out from every collection's row, which a search
    reads anyway (one statement for both). In the request's read-only session
    (``ReadSessionDep``), which the route must take too."""
    if request.method not in SAFE_METHODS:
        # A write needs current_user's Origin and CSRF checks, which read the form.
        raise CsrfFailed("this form was sent without its security checks")
    user = authenticated_user(request, rt, session)
    if not user.can(Role.READER):
        raise PermissionDenied(f"this needs the {Role.READER.value} role")
    every = list_all(session)
    return Reader(user, access_for(session, user, collections=every), every)


ReaderAccess = Annotated[Reader, Depends(reader_access)]
