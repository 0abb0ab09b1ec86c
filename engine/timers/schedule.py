"""Timer rows written by a case's transitions: started on entry, cancelled on exit.

Timers are durable rows; whether one is due is decided from them alone. Cancelling is a
status change, so a worker that already claimed a row (``firing``) finds it cancelled
when it re-checks under the case's lock.

A transition reads the case's live rows once (after claiming the case, so under its
lock), works out what to cancel and start on that list, and hands the list back as it
stands afterwards: the reader's view needs no second read. Statements are Core, built
once at import.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update

from engine.definitions.model import Definition, TimerDef
from engine.store.fastpath import Cursor, Prepared
from engine.store.tables import Base
from engine.timers.calendar import calendar_for

LIVE = ("pending", "firing")

_timers = Base.metadata.tables["timers"]
_LIVE = Prepared(
    select(
        _timers.c.id,
        _timers.c.name,
        _timers.c.state,
        _timers.c.step,
        _timers.c.due_at,
        _timers.c.status,
    )
    .where(
        _timers.c.case_id == bindparam("b_case"),
        # Two plain parameters, not an expanding IN list rebuilt on every call.
        _timers.c.status.in_([bindparam("b_pending"), bindparam("b_firing")]),
    )
    .order_by(_timers.c.due_at, _timers.c.id)
)
_CANCEL = Prepared(
    update(_timers)
    .where(_timers.c.id == bindparam("b_id"))
    .values(status="cancelled", claimed_until=None)
)
_INSERT = insert(_timers).values(
    case_id=bindparam("b_case"),
    name=bindparam("b_name"),
    state=bindparam("b_state"),
    step=0,
    due_at=bindparam("b_due"),
    status="pending",
    created_at=bindparam("b_now"),
)
# The new row's id as SQLAlchemy itself gets it: the driver's lastrowid where the
# dialect uses it (SQLite), else RETURNING (PostgreSQL).
_START = Prepared(_INSERT)
_START_RETURNING = Prepared(_INSERT.returning(_timers.c.id))


@dataclass(slots=True)
class LiveTimer:
    """A pending or claimed timer row of a case (step 0 the timer, k >= 1 a ladder step)."""

    id: int
    name: str
    state: str
    step: int
    due_at: datetime
    status: str


@dataclass(slots=True)
class TimerChanges:
    """Names of the timers a transition started and cancelled, for its audit event, and
    the case's live timers afterwards, soonest first."""

    started: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    live: list[LiveTimer] = field(default_factory=list)


def due_at(defn: Definition, timer: TimerDef, now: datetime) -> datetime:
    return calendar_for(defn).add(now, timer.after)


def live_timers(cur: Cursor, case_id: int) -> list[LiveTimer]:
    """Pending and claimed timer rows of a case, soonest first."""
    rows = _LIVE.rows(cur, {"b_case": case_id, "b_pending": LIVE[0], "b_firing": LIVE[1]})
    return [LiveTimer(*row) for row in rows]


def _start(
    cur: Cursor, case_id: int, defn: Definition, timer: TimerDef, now: datetime
) -> LiveTimer:
    """A pending row for the timer itself (step 0), due ``timer.after`` from ``now``."""
    due = due_at(defn, timer, now)
    params = {
        "b_case": case_id,
        "b_name": timer.name,
        "b_state": timer.state,
        "b_due": due,
        "b_now": now,
    }
    if getattr(cur.dialect, "postfetch_lastrowid", False):
        _START.execute(cur, params)
        row_id = int(cur.cursor.lastrowid)
    else:
        row = _START_RETURNING.first(cur, params)
        assert row is not None
        row_id = row[0]
    return LiveTimer(row_id, timer.name, timer.state, 0, due, "pending")


def _cancel(
    cur: Cursor,
    live: list[LiveTimer],
    *,
    states: Collection[str] | None = None,
    names: Collection[str] | None = None,
) -> set[str]:
    """Cancel live rows (every ladder step too) of the given states and/or timer names;
    with neither filter every live timer. Takes them off ``live``; returns their names."""
    gone = [
        row
        for row in live
        if (states is None or row.state in states) and (names is None or row.name in names)
    ]
    if gone:
        _CANCEL.execute_many(cur, [{"b_id": row.id} for row in gone])
        ids = {row.id for row in gone}
        live[:] = [row for row in live if row.id not in ids]
    return {row.name for row in gone}


def on_transition(
    cur: Cursor,
    case_id: int,
    defn: Definition,
    *,
    trigger: str | None,
    exited: Iterable[str],
    entered: Iterable[str],
    active_after: Collection[str],
    final: bool,
    now: datetime,
    live: list[LiveTimer] | None = None,
) -> TimerChanges:
    """Cancel the timers of exited states, start those of entered states, and restart
    (cancel and start again) the timers whose ``restart_on`` lists ``trigger`` while
    their state stays active.

    ``live`` is the case's live rows when the caller knows them (none, for a case being
    opened); else they are read here. The caller holds the case for writing.
    """
    rows = live_timers(cur, case_id) if live is None else list(live)
    exited_set, entered_set = set(exited), set(entered)
    changes = TimerChanges()
    cancelled = _cancel(cur, rows, states=exited_set) if exited_set else set()
    if final:
        cancelled.update(_cancel(cur, rows))
    started: list[str] = []
    for timer in defn.timers:
        # A state only passed through (a track's final state before its join) is in
        # ``entered`` but not active afterwards: its timers never start.
        if timer.state in entered_set and timer.state in active_after:
            rows.append(_start(cur, case_id, defn, timer, now))
            started.append(timer.name)
        elif (
            trigger is not None
            and trigger in timer.restart_on
            and timer.state in active_after
            and not final
        ):
            cancelled.update(_cancel(cur, rows, names={timer.name}))
            rows.append(_start(cur, case_id, defn, timer, now))
            started.append(timer.name)
    changes.started = started
    changes.cancelled = sorted(cancelled)
    changes.live = sorted(rows, key=lambda row: (row.due_at, row.id))
    return changes
