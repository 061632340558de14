"""The request's collection access, computed once per request from the signed-in user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.auth.deps import CurrentUser
from app.collections.access import Access, access_for
from app.deps import SessionDep


def current_access(user: CurrentUser, session: SessionDep) -> Access:
    return access_for(session, user)


AccessDep = Annotated[Access, Depends(current_access)]
