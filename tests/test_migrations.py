"""The Alembic migration creates exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.db import make_engine, upgrade
from app.models import Base
from app.settings import Settings


def test_migration_matches_models_and_is_idempotent(settings: Settings) -> None:
    engine = make_engine(settings.sqlalchemy_url)
    upgrade(engine)
    upgrade(engine)  # running it again on start is a no-op
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        tables = set(inspect(conn).get_table_names())
    assert {"collections", "documents", "chunks", "jobs", "alembic_version"} <= tables
    engine.dispose()
