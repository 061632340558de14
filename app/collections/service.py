"""Collections: create, find, and record changes to their chunks."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.collections.models import Collection
from app.embedding.registry import EmbedderSpec
from app.errors import Conflict, NotFound


class CollectionNotFound(NotFound, LookupError):
    """No collection of that name or id."""


class CollectionError(Conflict, ValueError):
    """A change to a collection cannot be made; the message is for a person."""


def get_by_name(session: Session, name: str) -> Collection:
    stmt = select(Collection).where(Collection.name == name).execution_options(**_FRESH)
    col = session.scalars(stmt).first()
    if col is None:
        raise CollectionNotFound("no collection named {name!r}", name=name)
    return col


def get(session: Session, collection_id: int) -> Collection:
    col = session.get(Collection, collection_id)
    if col is None:
        raise CollectionNotFound("no collection with id {id}", id=collection_id)
    return col


# The rows as they are now, also for collections this session loaded before: a search
# syncs its indexes to the versions read here (IndexManager.get's ``current``).
_FRESH = {"populate_existing": True}


# Built once: every search lists the collections.
_ALL = select(Collection).order_by(Collection.name).execution_options(**_FRESH)


def list_all(session: Session) -> list[Collection]:
    return list(session.scalars(_ALL))


def get_or_create(
    session: Session, *, name: str, spec: EmbedderSpec, description: str = ""
) -> Collection:
    """The named collection; a new one records ``spec`` as its embedding model."""
    stmt = select(Collection).where(Collection.name == name).execution_options(**_FRESH)
    col = session.scalars(stmt).first()
    if col is not None:
        return col
    col = Collection(
        name=name,
        description=description,
        embedder=spec.name,
        model=spec.model,
        dim=spec.dim,
        query_instruction=spec.query_instruction,
        version=0,
    )
    session.add(col)
    session.flush()
    return col


def bump_version(session: Session, collection_id: int) -> None:
    """Mark that the collection's chunks changed (serving processes re-sync their index)."""
    session.execute(
        update(Collection)
        .where(Collection.id == collection_id)
        .values(version=Collection.version + 1)
        .execution_options(synchronize_session=False)
    )


def rename(
    session: Session,
    collection: Collection,
    *,
    name: str,
    description: str,
    query_instruction: str | None = None,
) -> None:
    """Change the name and description (the embedding model of a collection never changes here)."""
    name = name.strip()
    if not name:
        raise CollectionError("a collection needs a name")
    other = session.scalars(select(Collection).where(Collection.name == name)).first()
    if other is not None and other.id != collection.id:
        raise CollectionError(f"a collection named {name!r} already exists")
    collection.name = name
    collection.description = description.strip()
    if query_instruction is not None and collection.query_instruction is not None:
        # Only models that take a task description have one to change.
        collection.query_instruction = query_instruction.strip() or collection.query_instruction


def create(session: Session, *, name: str, description: str, spec: EmbedderSpec) -> Collection:
    name = name.strip()
    if not name:
        raise CollectionError("a collection needs a name")
    if session.scalars(select(Collection).where(Collection.name == name)).first() is not None:
        raise CollectionError(f"a collection named {name!r} already exists")
    return get_or_create(session, name=name, spec=spec, description=description.strip())
