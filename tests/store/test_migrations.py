"""Migrations upgrade a database in place and come back down cleanly."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect

from engine.store.db import alembic_config, current_revision, head_revision, make_engine, upgrade


def _columns(engine: object, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}  # type: ignore[arg-type]


def test_trace_context_columns_come_and_go(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'migrate.db'}")
    try:
        upgrade(engine, "0002")
        assert "trace_parent" not in _columns(engine, "timers")
        upgrade(engine)
        assert current_revision(engine) == head_revision(engine)
        assert "trace_parent" in _columns(engine, "timers")
        assert "trace_parent" in _columns(engine, "notifications")
        command.downgrade(alembic_config(engine), "0002")
        assert "trace_parent" not in _columns(engine, "notifications")
    finally:
        engine.dispose()
