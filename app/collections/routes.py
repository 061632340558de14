"""JSON API for collections (knowledge bases and the model each one was built with)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from app.auth.deps import ReaderUser
from app.collections import service
from app.deps import RuntimeDep, SessionDep

router = APIRouter(prefix="/api/v1/collections", tags=["collections"])


class CollectionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    embedder: str
    model: str
    dim: int


@router.get("", response_model=list[CollectionOut])
def list_collections(rt: RuntimeDep, session: SessionDep, _user: ReaderUser) -> list[CollectionOut]:
    """Every collection with its embedding model and vector dimension."""
    rt.collection(session)  # the default one exists from the first request on
    session.commit()
    return [CollectionOut.model_validate(c) for c in service.list_all(session)]
