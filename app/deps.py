"""FastAPI dependencies: the runtime and a per-request session (the request owns it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(rt: RuntimeDep) -> Iterator[Session]:
    """A session for one request; handlers that write call ``commit()`` themselves, so the
    commit happens before the response is sent (and an uncommitted one rolls back)."""
    with rt.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
