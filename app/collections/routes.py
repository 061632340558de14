"""JSON API for collections (knowledge bases and the model each one was built with)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict

from app.auth.deps import AdminUser, ReaderUser
from app.collections import model_switch, service
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


@router.get("", response_model=list[CollectionOut])
def list_collections(rt: RuntimeDep, session: SessionDep, _user: ReaderUser) -> list[CollectionOut]:
    """Every collection with its embedding model and vector dimension."""
    rt.collection(session)  # the default one exists from the first request on
    session.commit()
    return [CollectionOut.model_validate(c) for c in service.list_all(session)]


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
