"""Reading and pruning the chunk change log (``chunk_changes``, written by triggers).

A FAISS index covering version V of a collection is brought to version W by the chunk ids
the log names with ``V < version <= W``: each named id is removed from the index if
present and added again with its vector from SQL if the chunk still exists. That is
idempotent and needs no ordering, so a change committed between the reads only makes the
next sync touch the same id again.

Pruning rule: for each collection, the changes of the newest ``keep_versions`` versions
are kept, and never any a snapshot written by this process still needs (the floor).
Older rows are replaced by one "pruned" marker row at the newest version dropped; a
process whose index is older than a marker finds it in its window and falls back to a
full diff of the chunk ids. Rows of collections that no longer exist are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.collections.models import Collection
from app.documents.models import ChunkChange

PRUNED = "pruned"


@dataclass(frozen=True)
class Window:
    """The chunk ids changed in ``(after, upto]``, or ``complete=False`` when some of
    those changes were pruned (the caller must diff every id)."""

    ids: frozenset[int]
    complete: bool


def read_window(session: Session, collection_id: int, after: int, upto: int) -> Window:
    rows = session.execute(
        select(ChunkChange.chunk_id, ChunkChange.op).where(
            ChunkChange.collection_id == collection_id,
            ChunkChange.version > after,
            ChunkChange.version <= upto,
        )
    ).all()
    if any(op == PRUNED for _, op in rows):
        return Window(frozenset(), complete=False)
    return Window(frozenset(cid for cid, _ in rows), complete=True)


def prune(session: Session, *, keep_versions: int, floors: Mapping[int, int] | None = None) -> int:
    """Drop old change rows by the rule above (flushed, not committed); returns how many."""
    floors = floors or {}
    dropped = 0
    orphans = session.execute(
        delete(ChunkChange)
        .where(ChunkChange.collection_id.not_in(select(Collection.id)))
        .execution_options(synchronize_session=False)
    )
    dropped += int(getattr(orphans, "rowcount", 0) or 0)
    marks: dict[int, int | None] = {
        row[0]: row[1]
        for row in session.execute(
            select(ChunkChange.collection_id, func.max(ChunkChange.version))
            .where(ChunkChange.op == PRUNED)
            .group_by(ChunkChange.collection_id)
        )
    }
    versions = [
        (row[0], row[1]) for row in session.execute(select(Collection.id, Collection.version))
    ]
    for cid, version in versions:
        upto = version - keep_versions
        if cid in floors:
            upto = min(upto, floors[cid])
        if upto <= (marks.get(cid) or 0):
            continue
        res = session.execute(
            delete(ChunkChange)
            .where(ChunkChange.collection_id == cid, ChunkChange.version <= upto)
            .execution_options(synchronize_session=False)
        )
        dropped += int(getattr(res, "rowcount", 0) or 0)
        session.add(ChunkChange(collection_id=cid, chunk_id=0, op=PRUNED, version=upto))
    session.flush()
    return dropped
