"""Straight DB-API access for the floors and the bulk loader: no ORM, no SQLAlchemy.

SQL is written once with ``%s`` for a parameter and ``%j`` for a JSON parameter; this
module turns it into each driver's form (``?`` for sqlite3; ``%s`` and ``%s::jsonb`` for
psycopg) and stores values the way the engine's column types do (naive UTC timestamps,
text in SQLite; JSON text in both).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from benchmarks.world import Database


@lru_cache(maxsize=256)
def _convert(sql: str, kind: str) -> str:
    if kind == "sqlite":
        return sql.replace("%j", "?").replace("%s", "?")
    return sql.replace("%j", "%s::jsonb")


class Raw:
    """One DB-API connection and the dialect details the floors need."""

    def __init__(self, db: Database) -> None:
        self.kind = db.kind
        self.pg = db.kind == "postgresql"
        self.conn: Any = db.raw()
        self.cur: Any = self.conn.cursor()
        # Counts statements, so a floor can be shown to issue as many as the engine.
        self.statements = 0

    def close(self) -> None:
        self.cur.close()
        self.conn.close()

    def ts(self, value: datetime) -> Any:
        """A timestamp as the engine stores it: naive UTC (text in SQLite)."""
        naive = value.astimezone(UTC).replace(tzinfo=None)
        return naive if self.pg else naive.strftime("%Y-%m-%d %H:%M:%S.%f")

    @staticmethod
    def js(value: Any) -> str:
        return json.dumps(value)

    def begin(self) -> None:
        if not self.pg:
            self.cur.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        if self.pg:
            self.conn.commit()
        else:
            self.cur.execute("COMMIT")

    def rollback(self) -> None:
        if self.pg:
            self.conn.rollback()
        elif self.conn.in_transaction:
            self.cur.execute("ROLLBACK")

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        self.statements += 1
        self.cur.execute(_convert(sql, self.kind), params)
        return self.cur

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.execute(sql, params).fetchone()

    def all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return list(self.execute(sql, params).fetchall())

    def insert(self, sql: str, params: tuple[Any, ...]) -> int:
        """Run an INSERT and return the new row's id."""
        if self.pg:
            return int(self.one(sql + " RETURNING id", params)[0])
        return int(self.execute(sql, params).lastrowid)

    def bulk_insert(self, table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
        """Rows into ``table`` the fastest way each driver has: COPY, or executemany."""
        if self.pg:
            with self.cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join("?" * len(columns.split(",")))
        self.cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)

    def json_value(self, value: Any) -> Any:
        """A JSON column as read back: psycopg decodes jsonb, sqlite3 hands back text."""
        return value if self.pg else json.loads(value)

    def timestamp_value(self, value: Any) -> datetime:
        """A timestamp column as read back, made aware UTC as the engine's type does."""
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)
