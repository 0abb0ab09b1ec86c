"""Migration 0002 upgrades a database with cases in place, and downgrades cleanly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from alembic import command
from casekit import T0, make_world
from conftest import PG_ADMIN_DSN, need_service
from sqlalchemy import inspect

from engine.store.db import (
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    upgrade,
)
from engine.subjects import service
from engine.subjects.details import subject_details

NEW_TABLES = {"subjects", "subject_names", "subject_keys", "case_subjects",
              "subject_decisions"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own (not the session's migrated one)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3)
    except Exception as exc:
        need_service("PostgreSQL", str(exc))
    name = f"referral_migrate_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s", (name,))
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


def test_an_existing_database_gains_subjects_and_keeps_its_cases(blank_url: str) -> None:
    engine = make_engine(blank_url)
    try:
        upgrade(engine, "0001")
        assert not NEW_TABLES & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    world = make_world(blank_url)  # deploys and adds agencies on the 0001 schema
    try:
        case_id = world.open().id
        upgrade(world.engine)
        assert current_revision(world.engine) == head_revision(world.engine)
        assert world.view(case_id).state == ("referred",)
        with world.session() as s:
            shown = service.attach_subject(
                s, case_id, subject_details([{"given": "Ana", "family": "López"}],
                                    date_of_birth=date(2001, 2, 3)),
                agency_id=world.agencies["coordinator"], now=T0)
        assert shown.details.born is not None and shown.details.born.text() == "2001-02-03"
    finally:
        world.dispose()
    engine = make_engine(blank_url)
    try:
        command.downgrade(alembic_config(engine), "0001")
        assert not NEW_TABLES & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
