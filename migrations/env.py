"""Alembic environment: runs on the connection the app hands over, or on KB settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from app.models import Base
from app.search.lexical import include_object

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # The full-text index (migration 0005) is not in the models.
        include_object=include_object,
        # SQLite cannot ALTER most things in place; batch mode recreates tables.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from app.db import make_engine
    from app.settings import get_settings

    engine = make_engine(get_settings().sqlalchemy_url)
    with engine.begin() as conn:
        _run(conn)
