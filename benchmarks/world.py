"""The benchmark's world: throw-away databases, the benchmark workflow, raw connections.

Every run works in databases of its own: a SQLite file in a temporary folder, or a fresh
PostgreSQL database on 127.0.0.1 (created here, dropped on the way out). Nothing else on
the server is touched.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.store.db import make_engine, session_factory, upgrade

PG_ADMIN_DSN = "host=127.0.0.1 port=5432 dbname=postgres user=postgres connect_timeout=3"
PG_HOST = "postgresql://postgres@127.0.0.1:5432"
# Every benchmark clock starts here: a Monday, so business-day timers are plain to read.
EPOCH = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)

# Two states bouncing on one trigger, a timer in each: every event cancels one timer and
# starts another, so its cost is the same on the millionth event as on the first. The
# ladder gives the tick a reminder, its notifications and a next step to write.
BENCH_WORKFLOW = """\
workflow: bench_pingpong
version: 1
title: Benchmark workflow, two states bouncing with a reminder ladder in each
timezone: Europe/London
calendar: {country: GB, subdivision: ENG}
roles:
  worker: {}
  coordinator: {}
fields:
  note: {type: text}
  count: {type: int, default: 0}
  private_notes: {type: text, visible_to: [coordinator]}
states:
  ping: {initial: true, owner: worker}
  pong: {owner: worker}
  done: {final: true}
transitions:
  - {trigger: hit, from: ping, to: pong, by: [worker]}
  - {trigger: hit, from: pong, to: ping, by: [worker]}
  - {trigger: close, from: "*", to: done, by: [coordinator]}
timers:
  - name: ping_due
    in: ping
    after: 5 business days
    remind: [worker]
    escalate:
      - {after: 2 business days, notify: [coordinator]}
      - {after: 3 business days, notify: [coordinator]}
  - name: pong_due
    in: pong
    after: 5 business days
    remind: [worker]
    escalate:
      - {after: 2 business days, notify: [coordinator]}
"""
WORKFLOW = "bench_pingpong"
ROLES = ("worker", "coordinator")

# Parallel tracks for the decide figure: one trigger bouncing inside one track.
PARALLEL_WORKFLOW = """\
workflow: bench_tracks
version: 1
title: Benchmark workflow with parallel tracks
timezone: UTC
roles:
  worker: {}
states:
  start: {initial: true}
  work:
    parallel:
      left:
        initial: a
        states:
          a: {}
          b: {}
          done: {final: true}
      right:
        initial: c
        states:
          c: {}
          done: {final: true}
    join: finished
  finished: {final: true}
transitions:
  - {trigger: begin, from: start, to: work, by: [worker]}
  - {trigger: flip, from: work.left.a, to: work.left.b, by: [worker]}
  - {trigger: flip, from: work.left.b, to: work.left.a, by: [worker]}
  - {trigger: end_left, from: work.left.b, to: work.left.done, by: [worker]}
  - {trigger: end_right, from: work.right.c, to: work.right.done, by: [worker]}
"""


@dataclass(frozen=True, slots=True)
class Database:
    """One throw-away database: its URL for the engine and how to reach it raw."""

    kind: str  # "sqlite" or "postgresql"
    url: str
    path: Path | None = None  # SQLite file
    dsn: str | None = None  # PostgreSQL libpq DSN

    def engine(self, **kwargs: Any) -> Engine:
        return make_engine(self.url, **kwargs)

    def factory(self) -> tuple[Engine, sessionmaker[Session]]:
        engine = self.engine()
        return engine, session_factory(engine)

    def raw(self) -> Any:
        """A DB-API connection with the engine's own session settings, no ORM."""
        if self.kind == "sqlite":
            assert self.path is not None
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn
        import psycopg

        assert self.dsn is not None
        return psycopg.connect(self.dsn)


def postgres_available() -> str | None:
    """None when a PostgreSQL server answers on 127.0.0.1:5432, else why not."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
    return None


@contextlib.contextmanager
def temporary_database(kind: str, folder: Path) -> Iterator[Database]:
    """A migrated, empty database of the given kind, removed afterwards."""
    if kind == "sqlite":
        path = folder / f"bench-{uuid.uuid4().hex[:8]}.db"
        db = Database("sqlite", f"sqlite:///{path}", path=path)
        _migrate(db)
        try:
            yield db
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    import psycopg

    name = f"referral_bench_{uuid.uuid4().hex[:12]}"
    admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    db = Database(
        "postgresql",
        f"{PG_HOST}/{name}",
        dsn=f"host=127.0.0.1 port=5432 dbname={name} user=postgres",
    )
    try:
        _migrate(db)
        yield db
    finally:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


def _migrate(db: Database) -> None:
    engine = db.engine()
    try:
        upgrade(engine)
    finally:
        engine.dispose()


class VirtualClock:
    """The benchmark's ``now``: a minute on per round, never near the population's due
    window, so a timer falls due only when a figure brings it due on purpose."""

    def __init__(self, start: datetime = EPOCH) -> None:
        self.now = start

    def advance(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now
