"""Shared fixtures: real databases (SQLite and PostgreSQL), real Redis, free ports.

PostgreSQL and Redis tests skip on a laptop without the server, and fail in CI
(``CI=true``), so a missing service can never turn a CI run green.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from engine.store.db import make_engine, upgrade
from engine.store.tables import Base
from engine.subjects import tables as _subject_tables  # noqa: F401  (truncated with the rest)

PG_ADMIN_DSN = os.environ.get(
    "REFERRAL_TEST_PG_DSN", "host=127.0.0.1 port=5432 dbname=test user=postgres"
)
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REPO = Path(__file__).resolve().parent.parent


def need_service(name: str, reason: str) -> None:
    """Skip locally, fail in CI: a service CI needs must never be silently missing."""
    if IN_CI:
        pytest.fail(f"{name} is required in CI but is not reachable: {reason}")
    pytest.skip(f"{name} not reachable: {reason}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def pg_server_dsn() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3)
    except Exception as exc:
        need_service("PostgreSQL", str(exc))
    name = f"referral_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


_pg_migrated: dict[str, Engine] = {}


def _migrated_pg(dsn: str) -> Engine:
    """The session database's engine, migrated once per test session."""
    engine = _pg_migrated.get(dsn)
    if engine is None:
        engine = make_engine(dsn)
        upgrade(engine)
        _pg_migrated[dsn] = engine
    return engine


def _truncate_all(engine: Engine) -> None:
    names = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database URL: once for SQLite, once for PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'referral.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    dsn = request.getfixturevalue("pg_server_dsn")
    _truncate_all(_migrated_pg(dsn))
    yield dsn


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite database only (for tests that need no second backend)."""
    url = f"sqlite:///{tmp_path / 'referral.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def pg_url(pg_server_dsn: str) -> str:
    """The migrated, emptied PostgreSQL database of this session."""
    _truncate_all(_migrated_pg(pg_server_dsn))
    return pg_server_dsn


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database number of this test's own, flushed before and after."""
    if not _port_open(REDIS_HOST, REDIS_PORT):
        need_service("Redis", f"nothing answers on {REDIS_HOST}:{REDIS_PORT}")
    import redis

    # Databases 1..15 at random keep parallel sessions on one server apart.
    db = 1 + (uuid.uuid4().int % 15)
    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()
