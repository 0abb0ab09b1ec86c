"""Database engines, sessions and migrations (Alembic, applied by ``referral db upgrade``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InvalidatePoolError
from sqlalchemy.orm import Session, sessionmaker

from engine import clock
from engine.errors import DatabaseNotMigrated
from engine.store.fastpath import close_on_checkin

MIGRATIONS = Path(__file__).parent / "migrations"
# A pooled connection idle for longer than this is pinged before use (see _ping_idle).
IDLE_PING_SECONDS = 10.0


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own transaction handling would delay BEGIN; take it over so a
            # write transaction starts with BEGIN IMMEDIATE and serialises writers.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if ":memory:" not in url and url not in ("sqlite://", "sqlite+pysqlite://"):
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Straight on the driver: a statement through SQLAlchemy costs several times
            # the BEGIN itself, on every transaction. Its errors (a lock not granted in
            # time) still come out as SQLAlchemy's, as through exec_driver_sql.
            try:
                conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise DBAPIError.instance(
                    "BEGIN IMMEDIATE", (), exc, sqlite3.Error, dialect=engine.dialect
                ) from exc

        close_on_checkin(engine)
        return engine
    engine = create_engine(url, **kwargs)
    close_on_checkin(engine)
    if not kwargs.get("pool_pre_ping"):
        _ping_idle(engine)
    return engine


def _ping_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat idle for a while.

    ``pool_pre_ping`` would add a round trip to every transaction. Connections in steady
    use are known to be alive; the ones that sat idle (when a server restart or an idle
    timeout goes unnoticed) are pinged, and a dead one is replaced, with the rest of the
    pool, before anyone uses it. A disconnect in between fails that one transaction,
    and SQLAlchemy then replaces the pool.
    """

    @event.listens_for(engine.pool, "checkin")
    def _idle_from(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = clock.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or clock.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise InvalidatePoolError(f"idle connection failed its ping: {exc}") from exc


def sqlite_file(url: str) -> Path | None:
    """The absolute file of a SQLite URL (None for another database or an in-memory one)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).resolve()


def database_label(url: str) -> str:
    """The database as messages name it: SQLite's absolute file, else the URL with any
    password masked. A relative SQLite path depends on the current directory, so every
    message names the file it actually looked at."""
    file = sqlite_file(url)
    if file is not None:
        return str(file)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable database URL)"


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    command.upgrade(alembic_config(engine), revision)


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_migrated(engine: Engine) -> None:
    """Refuse to run against a database that is not at the latest migration."""
    current, head = current_revision(engine), head_revision(engine)
    if current != head:
        raise DatabaseNotMigrated(
            f"the database {database_label(engine.url.render_as_string(hide_password=False))}"
            f" is at migration {current or 'none'}, the engine needs {head}; "
            "run `referral db upgrade` first",
            current=current,
            head=head,
        )
