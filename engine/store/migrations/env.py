"""Alembic environment: the engine comes from ``config.attributes`` (see engine.store.db)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from engine.store.tables import Base
from engine.subjects import tables as _subject_tables  # noqa: F401  (in target_metadata)

config = context.config
engine: Engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
