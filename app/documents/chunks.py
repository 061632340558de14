"""Editing a document's chunks by hand: fix a bad parse without uploading it again.

An admin, or the editor who uploaded the document (with write access to its
collection), may change a chunk's text, which is embedded again at once with the
collection's model (with its heading path, as ingest embeds it), and its search terms,
language, token count and content hash recomputed; or disable a chunk, which leaves it
out of every search until it is enabled again. Each change is kept in ``chunk_edits``.

Every change bumps the collection's version in the same transaction: the database
triggers log the chunk in ``chunk_changes`` (a new vector, or ``disabled`` toggled), so
serving processes bring their FAISS index up to date on their next sync
(app/vectors/index.py leaves disabled chunks out).

A re-ingest of the document replaces its chunks: edits are lost then (the history
rows stay with the document, their ``chunk_id`` set to NULL).

Sentence vectors (``Embedder.sentence_vectors``) of an edited chunk are computed here
too, as ingest does, from the passage as people read it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.auth.models import Role, User
from app.collections.access import Access
from app.collections.models import Collection
from app.collections.service import bump_version
from app.documents import service
from app.documents.models import (
    Chunk,
    ChunkEdit,
    ChunkEditAction,
    ChunkSentences,
    Document,
    DocumentStatus,
)
from app.embedding.base import EmbedderError
from app.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from app.runtime import Runtime
from app.text.embed import embed_text_for
from app.text.language import detect_language
from app.text.plain import plain_passage
from app.text.sentences import split_sentences
from app.text.terms import index_text
from app.text.tokens import count_tokens
from app.vectors.index import vector_to_bytes

# An edited chunk's text, in characters: a passage, not a document.
MAX_TEXT_CHARS = 20_000
# History rows shown per chunk, newest first.
HISTORY_LIMIT = 100


class ChunkNotFound(NotFound, LookupError):
    """No chunk with that id (in that document)."""


class ChunkInvalid(Invalid, ValueError):
    """The new text cannot be stored (empty, too long)."""


class NotYourDocument(Forbidden, PermissionError):
    """An editor may change only the chunks of documents they uploaded."""


class DocumentBusy(Conflict):
    """The document is being ingested: its chunks are about to be replaced."""


class EmbeddingUnavailable(Unavailable):
    """The embedding model could not embed the new text (nothing was changed)."""


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    action: str
    user: str | None
    old_text: str | None
    new_text: str | None
    created_at: datetime


def can_edit(user: User, doc: Document) -> bool:
    """Admins, and the editor who uploaded the document (as for deleting it)."""
    return user.can(Role.ADMIN) or (user.can(Role.EDITOR) and doc.uploaded_by_id == user.id)


def _check_editor(user: User, doc: Document) -> None:
    if not can_edit(user, doc):
        raise NotYourDocument("editors can change only the chunks of their own documents")


def get_for(
    session: Session,
    chunk_id: int,
    access: Access,
    user: User,
    *,
    document_id: int | None = None,
    write: bool = True,
) -> tuple[Document, Chunk]:
    """The chunk and its document, if ``user`` may change it (``write``) or read it.

    A chunk of a collection the user may not read is not found (404), as is one of another
    document than ``document_id``; a reader's, or another editor's, is refused (403)."""
    if document_id is not None:
        doc = service.get_for(session, document_id, access)
        chunk = session.scalars(
            select(Chunk).where(Chunk.id == chunk_id, Chunk.document_id == doc.id)
        ).first()
        if chunk is None:
            raise ChunkNotFound("no chunk with id {id} in this document", id=chunk_id)
    else:
        found = session.get(Chunk, chunk_id)
        if found is None or not access.can_read(found.collection_id):
            raise ChunkNotFound("no chunk with id {id}", id=chunk_id)
        chunk = found
        doc = service.get_for(session, chunk.document_id, access)
    if write:
        service.get_for(session, doc.id, access, write=True)
        _check_editor(user, doc)
    return doc, chunk


def clean_text(text: str) -> str:
    """The text as stored: line ends as ``\\n``, no NUL, no trailing blanks; refused when
    empty or longer than MAX_TEXT_CHARS."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")
    if not text.strip():
        raise ChunkInvalid("a chunk's text cannot be empty")
    if len(text) > MAX_TEXT_CHARS:
        raise ChunkInvalid(
            "a chunk's text may be at most {max} characters (this is {n})",
            max=MAX_TEXT_CHARS,
            n=len(text),
        )
    return text


def _content_hash(text: str) -> str:
    # As ingest's (ingest.pipeline.content_hash) of the embedded text.
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_ready(doc: Document) -> None:
    if doc.status != DocumentStatus.READY:
        raise DocumentBusy(
            "the document is not ready (it is being ingested, or failed); edit its chunks "
            "when it is ready"
        )


def edit_chunk(rt: Runtime, session: Session, chunk: Chunk, text: str, user: User | None) -> bool:
    """Replace the chunk's text and everything computed from it; False when the text is
    unchanged (nothing is stored). Raises EmbeddingUnavailable (503) when the collection's
    model cannot embed it; nothing is changed then. The caller commits."""
    new = clean_text(text)
    doc = session.get_one(Document, chunk.document_id)
    _check_ready(doc)
    if new == chunk.text:
        return False
    col = session.get_one(Collection, chunk.collection_id)
    embed_text = embed_text_for(chunk.heading_path or [], new)
    try:
        embedder = rt.embedders.get(col.embedder)
        vectors = embedder.embed_documents([embed_text])
        if vectors.shape != (1, col.dim):
            raise EmbedderError(f"the model returned shape {vectors.shape}, not (1, {col.dim})")
        sentence_blob = b""
        if embedder.sentence_vectors:
            plain = plain_passage(new, doc.doc_type)
            parts = [plain[a:b] for a, b in split_sentences(plain)]
            if parts:
                got = embedder.embed_documents(parts)
                if got.shape != (len(parts), col.dim):
                    raise EmbedderError(f"the model returned shape {got.shape} for sentences")
                sentence_blob = vector_to_bytes(np.asarray(got, np.float32))
    except EmbedderError as exc:
        raise EmbeddingUnavailable(
            "the embedding model could not embed the new text, so nothing was changed; try "
            "again later ({reason})",
            reason=str(exc)[:300],
        ) from exc
    old = chunk.text
    chunk.text = new
    chunk.vector = vector_to_bytes(vectors[0])
    chunk.content_hash = _content_hash(embed_text)
    chunk.search_terms = index_text(chunk.heading_path or [], new)
    chunk.language = detect_language(new, strict=True) or doc.language
    chunk.token_count = count_tokens(new)
    if chunk.question is not None:
        # An FAQ or exam question's question is the text's first line (as parsed): keep
        # it when it is still there, else it no longer says what the chunk asks.
        first = new.split("\n", 1)[0]
        if chunk.question not in new:
            chunk.question = first[:2000] or None
    # A model switch under way embeds it again (its pending chunks lack next_vector).
    chunk.next_vector = None
    session.execute(delete(ChunkSentences).where(ChunkSentences.chunk_id == chunk.id))
    if sentence_blob:
        session.add(ChunkSentences(chunk_id=chunk.id, model=col.model, vectors=sentence_blob))
    session.add(
        ChunkEdit(
            chunk_id=chunk.id,
            document_id=chunk.document_id,
            user_id=user.id if user is not None else None,
            action=ChunkEditAction.EDIT,
            old_text=old,
            new_text=new,
        )
    )
    session.flush()
    bump_version(session, chunk.collection_id)
    return True


def set_disabled(session: Session, chunk: Chunk, disabled: bool, user: User | None) -> bool:
    """Disable (leave out of search) or enable the chunk; False when it already was.
    The caller commits."""
    if chunk.disabled == disabled:
        return False
    chunk.disabled = disabled
    session.add(
        ChunkEdit(
            chunk_id=chunk.id,
            document_id=chunk.document_id,
            user_id=user.id if user is not None else None,
            action=ChunkEditAction.DISABLE if disabled else ChunkEditAction.ENABLE,
        )
    )
    session.flush()
    bump_version(session, chunk.collection_id)
    return True


def history(session: Session, chunk_id: int, *, limit: int = HISTORY_LIMIT) -> list[HistoryEntry]:
    """The chunk's changes, newest first."""
    rows = session.execute(
        select(ChunkEdit, User.username)
        .outerjoin(User, User.id == ChunkEdit.user_id)
        .where(ChunkEdit.chunk_id == chunk_id)
        .order_by(ChunkEdit.id.desc())
        .limit(limit)
    ).all()
    return [
        HistoryEntry(e.id, e.action, name, e.old_text, e.new_text, e.created_at) for e, name in rows
    ]
