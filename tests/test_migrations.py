"""The Alembic migration creates exactly the schema the models describe, on both backends."""

from __future__ import annotations

from collections.abc import Sequence

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from app.db import make_engine, upgrade
from app.models import Base
from app.search.lexical import include_object
from app.settings import Settings


def test_migration_matches_models_and_is_idempotent(settings: Settings) -> None:
    engine = make_engine(settings.sqlalchemy_url)
    upgrade(engine)
    upgrade(engine)  # running it again on start is a no-op
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_object": include_object})
        diff = compare_metadata(ctx, Base.metadata)
        assert diff == []
        tables = set(inspect(conn).get_table_names())
    assert {"collections", "documents", "chunks", "jobs", "alembic_version"} <= tables
    engine.dispose()


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


def test_upgrade_keeps_existing_documents_and_chunks(settings: Settings) -> None:
    engine = make_engine(settings.sqlalchemy_url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        seed_old_rows(conn)
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM chunks")).scalar() == 1
        assert conn.execute(text("SELECT uploaded_by_id FROM documents")).scalar() is None
    engine.dispose()
