"""One writer per table the write paths append to: events, timers, escalations,
notifications.

Each takes the planned rows (plain dicts keyed by column name, made by the concept's
planner) and writes them in the caller's transaction. A few rows (up to
:data:`FAST_ROWS`) go through the fast path one by one, each a statement compiled once
and run on the transaction's cursor at a fraction of ``Connection.execute``'s cost; more
go through Core's ``executemany``, which on PostgreSQL sends them as one multi-row
statement. Both forms are checked to write the same rows (``tests/store``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, any_, bindparam, insert, update
from sqlalchemy.dialects.postgresql import ARRAY

from engine.store.fastpath import Cursor, Prepared, PreparedInsert
from engine.store.tables import Base

Row = Mapping[str, Any]
# The event path writes one to three rows per table; the tick's batch writes hundreds.
FAST_ROWS = 4

_events = Base.metadata.tables["case_events"]
_timers = Base.metadata.tables["timers"]
_escalations = Base.metadata.tables["escalations"]
_notifications = Base.metadata.tables["notifications"]

EVENT_COLUMNS = (
    "case_id", "seq", "at", "kind", "agency_id", "role", "trigger", "from_state",
    "to_state", "data", "prev_hash", "hash",
)
TIMER_COLUMNS = (
    "case_id", "name", "state", "step", "due_at", "status", "created_at", "trace_parent",
)
ESCALATION_COLUMNS = (
    "case_id", "timer_id", "timer_name", "step", "roles", "agency_ids", "created_at",
)
NOTIFICATION_COLUMNS = (
    "message_id", "case_id", "agency_id", "channel", "kind", "payload", "status",
    "attempts", "next_attempt_at", "created_at", "trace_parent",
)


class _Appender:
    """INSERTs into one table: one row on the fast path, several as Core's executemany;
    the new ids handed back in the rows' order when the table's rows are referred to."""

    def __init__(self, table: Any, names: Sequence[str], *, ids: bool) -> None:
        self.names = tuple(names)
        statement = insert(table).values({n: bindparam("v_" + n) for n in self.names})
        self.one = PreparedInsert(statement, table.c.id) if ids else None
        self.plain = Prepared(statement)
        self.many = insert(table).returning(table.c.id) if ids else insert(table)

    def _bound(self, row: Row) -> dict[str, Any]:
        return {"v_" + n: row[n] for n in self.names}

    def add(self, cur: Cursor, rows: Sequence[Row]) -> list[int]:
        if not rows:
            return []
        if len(rows) <= FAST_ROWS:
            if self.one is None:
                for row in rows:
                    self.plain.execute(cur, self._bound(row))
                return []
            return [self.one.insert(cur, self._bound(row)) for row in rows]
        result = cur.conn.execute(self.many, [{n: r[n] for n in self.names} for r in rows])
        # Multi-row INSERTs hand out ids in the rows' order (one writer per SQLite
        # database; one sequence draw per row, in VALUES order, on PostgreSQL), so the
        # ids sorted are the rows' ids in order. ``sort_by_parameter_order`` would make
        # SQLite insert row by row.
        return sorted(result.scalars()) if self.one is not None else []


_EVENTS = _Appender(_events, EVENT_COLUMNS, ids=False)
_TIMERS = _Appender(_timers, TIMER_COLUMNS, ids=True)
_ESCALATIONS = _Appender(_escalations, ESCALATION_COLUMNS, ids=True)
_NOTIFICATIONS = _Appender(_notifications, NOTIFICATION_COLUMNS, ids=True)


def add_events(cur: Cursor, rows: Sequence[Row]) -> None:
    """Audit events, as :func:`engine.cases.audit.plan_event` made them (hash included)."""
    _EVENTS.add(cur, rows)


def add_timers(cur: Cursor, rows: Sequence[Row]) -> list[int]:
    """Timer rows (a timer's start or its next ladder step); their new ids in order."""
    return _TIMERS.add(cur, rows)


def add_escalations(cur: Cursor, rows: Sequence[Row]) -> list[int]:
    """Escalation rows (a reminder or a ladder step sent); their new ids in order."""
    return _ESCALATIONS.add(cur, rows)


def add_notifications(cur: Cursor, rows: Sequence[Row]) -> list[int]:
    """Outbox rows, as :mod:`engine.notify.outbox` planned them; their new ids in order."""
    return _NOTIFICATIONS.add(cur, rows)


def _by_ids(pg: bool) -> Any:
    """``id`` is one of the ``ids`` parameter: ``= ANY(array)`` on PostgreSQL (one
    statement text whatever the count), an expanding ``IN`` elsewhere."""
    if pg:
        return _timers.c.id == any_(bindparam("ids", type_=ARRAY(Integer)))
    return _timers.c.id.in_(bindparam("ids", expanding=True))


_SET_ONE = Prepared(
    update(_timers)
    .where(_timers.c.id == bindparam("b_id"))
    .values(status=bindparam("b_status"), fired_at=bindparam("b_fired"), claimed_until=None)
)
_SET_MANY = {
    pg: update(_timers)
    .where(_by_ids(pg))
    .values(status=bindparam("b_status"), fired_at=bindparam("b_fired"), claimed_until=None)
    for pg in (False, True)
}


def set_timers(
    cur: Cursor, ids: Sequence[int], status: str, *, fired_at: datetime | None = None
) -> None:
    """Move timer rows to ``status`` (cancelled, fired, stopped), releasing any claim."""
    if len(ids) <= FAST_ROWS:
        for timer_id in ids:
            _SET_ONE.execute(cur, {"b_id": timer_id, "b_status": status, "b_fired": fired_at})
    else:
        statement = _SET_MANY[cur.dialect.name == "postgresql"]
        cur.conn.execute(statement, {"ids": list(ids), "b_status": status, "b_fired": fired_at})
