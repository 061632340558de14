"""JSON API for collections (knowledge bases and the model each one was built with)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from app.collections import service
from app.collections.models import Collection
from app.deps import RuntimeDep, SessionDep

router = APIRouter(prefix="/api/v1/collections", tags=["collections"])


class CollectionOut(BaseModel):
    id: int
    name: str
    description: str
    embedder: str
    model: str
    dim: int

    @classmethod
    def of(cls, c: Collection) -> CollectionOut:
        return cls(
            id=c.id,
            name=c.name,
            description=c.description,
            embedder=c.embedder,
            model=c.model,
            dim=c.dim,
        )


@router.get("", response_model=list[CollectionOut])
def list_collections(rt: RuntimeDep, session: SessionDep) -> list[CollectionOut]:
    """Every collection with its embedding model and vector dimension."""
    rt.collection(session)  # the default one exists from the first request on
    session.commit()
    return [CollectionOut.of(c) for c in service.list_all(session)]
