"""The fast path on SQLite and PostgreSQL: one cursor per transaction, closed; cursor
events and SQL logging as ``Connection.execute`` gives them; new ids; driver errors."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, event, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.store.fastpath import Cursor, Prepared, PreparedInsert, cursor_for
from engine.store.tables import Base

T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
_agencies = Base.metadata.tables["agencies"]
_ADD = PreparedInsert(
    insert(_agencies).values(
        name=bindparam("b_name"), token_hash=bindparam("b_token"), created_at=bindparam("b_at")
    ),
    _agencies.c.id,
)
_NAMES = Prepared(
    select(_agencies.c.id, _agencies.c.name, _agencies.c.created_at)
    .where(_agencies.c.name.like(bindparam("b_like")))
    .order_by(_agencies.c.id)
)


def _add(cur: Cursor, name: str) -> int:
    return _ADD.insert(cur, {"b_name": name, "b_token": "t-" + name, "b_at": T0})


def test_one_cursor_per_transaction_closed_when_the_next_begins(db_engine: Engine) -> None:
    with Session(db_engine) as s:
        first = cursor_for(s)
        assert cursor_for(s) is first  # the same transaction: the same cursor
        s.commit()
        second = cursor_for(s)
        assert second is not first
        s.commit()
    # Back in the pool: the connection's cursor was closed at check-in.
    with pytest.raises(Exception):  # noqa: B017 - drivers differ in the error's class
        second.cursor.execute("SELECT 1")
    with pytest.raises(Exception):  # noqa: B017
        first.cursor.execute("SELECT 1")


def test_new_ids_and_values_round_trip_through_column_types(db_engine: Engine) -> None:
    with Session(db_engine) as s, s.begin():
        cur = cursor_for(s)
        ids = [_add(cur, f"fast {n}") for n in range(3)]
        assert ids == sorted(ids) and len(set(ids)) == 3
        rows = _NAMES.rows(cur, {"b_like": "fast %"})
    names = ["fast 0", "fast 1", "fast 2"]
    assert [(r[0], r[1]) for r in rows] == list(zip(ids, names, strict=True))
    # The UTC column type's result processor ran: aware UTC, as through the ORM.
    assert all(r[2] == T0 and r[2].tzinfo is not None for r in rows)


def test_listeners_see_each_statement_before_and_after(db_engine: Engine) -> None:
    seen: list[tuple[str, str, Any]] = []

    def before(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> Any:
        context.mark = "set before"  # as tracing hangs its span on the context
        seen.append(("before", sql, context))
        return sql, params

    def after(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        seen.append(("after", sql, getattr(context, "mark", None)))

    event.listen(db_engine, "before_cursor_execute", before, retval=True)
    event.listen(db_engine, "after_cursor_execute", after)
    try:
        with Session(db_engine) as s, s.begin():
            _add(cursor_for(s), "observed")
    finally:
        event.remove(db_engine, "before_cursor_execute", before)
        event.remove(db_engine, "after_cursor_execute", after)
    inserts = [entry for entry in seen if "INSERT INTO agencies" in entry[1]]
    assert [kind for kind, _, _ in inserts] == ["before", "after"]
    assert inserts[0][2] is not None and inserts[1][2] == "set before"


def test_sql_logging_logs_fast_path_statements(
    db_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine.Engine"), Session(
        db_engine
    ) as s, s.begin():
        _add(cursor_for(s), "logged")
    assert any("[fast path] INSERT INTO agencies" in r.getMessage() for r in caplog.records)


def test_driver_errors_are_sqlalchemy_errors_and_write_nothing(db_engine: Engine) -> None:
    with Session(db_engine) as s, s.begin():
        _add(cursor_for(s), "unique")
    with Session(db_engine) as s:
        s.begin()
        with pytest.raises(IntegrityError):
            _add(cursor_for(s), "unique")
        s.rollback()
    with Session(db_engine) as s:
        assert len(_NAMES.rows(cursor_for(s), {"b_like": "unique"})) == 1
