"""The Alembic migration creates exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from app.db import make_engine, upgrade
from app.models import Base
from app.search.lexical import include_object
from app.settings import Settings
from tests.factories import seed_old_rows


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
