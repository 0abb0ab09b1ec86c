"""Timer rows written by a case's transitions: started on entry, cancelled on exit.

Timers are durable rows; whether one is due is decided from them alone. Cancelling is a
status change, so a worker that already claimed a row (``firing``) finds it cancelled
when it re-checks under the case's lock.

A transition reads the case's live rows once (after claiming the case, so under its
lock); :func:`plan` works out what to cancel and start on that list, pure, and
:func:`apply` writes it and hands back the live list as it stands afterwards, so the
reader's view needs no second read. Every timer row, a start or a ladder step, is made
by :func:`start_row` or :func:`next_step_row`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select

from engine import tracing
from engine.cases.views import TimerView
from engine.definitions.model import Definition, TimerDef
from engine.store import writers
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


@dataclass(slots=True)
class TimerPlan:
    """What a transition does to a case's timers: rows to cancel, rows to start."""

    cancel: list[TimerView] = field(default_factory=list)
    start: list[dict[str, Any]] = field(default_factory=list)
    started: list[str] = field(default_factory=list)


@dataclass(slots=True)
class TimerChanges:
    """Names of the timers a transition started and cancelled, for its audit event, the
    ids it cancelled, and the case's live timers afterwards, soonest first."""

    started: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    cancelled_ids: list[int] = field(default_factory=list)
    live: list[TimerView] = field(default_factory=list)


def start_row(case_id: int, defn: Definition, timer: TimerDef, now: datetime) -> dict[str, Any]:
    """The pending row of the timer itself (step 0), due ``timer.after`` from ``now``, with
    the trace of the work that started it."""
    due = calendar_for(defn).add(now, timer.after)
    return _row(case_id, timer.name, timer.state, 0, due, now, tracing.traceparent())


def next_step_row(
    case_id: int, defn: Definition, tdef: TimerDef, step: int, due_at: datetime, now: datetime,
    trace_parent: str | None = None,
) -> dict[str, Any] | None:
    """The row of the ladder step after ``step`` (due ``due_at``), counted from that due
    time in the workflow's calendar and keeping the run's trace; None after the last. A
    repeating reminder's steps are its repeats, each ``every`` after the one before,
    ``at_most`` in all."""
    if tdef.every is not None:
        if tdef.at_most is not None and step + 1 >= tdef.at_most:
            return None
        due = calendar_for(defn).add(due_at, tdef.every)
        return _row(case_id, tdef.name, tdef.state, step + 1, due, now, trace_parent)
    if step >= len(tdef.escalate):
        return None
    due = calendar_for(defn).add(due_at, tdef.escalate[step].after)
    return _row(case_id, tdef.name, tdef.state, step + 1, due, now, trace_parent)


def _row(
    case_id: int, name: str, state: str, step: int, due: datetime, now: datetime,
    trace_parent: str | None,
) -> dict[str, Any]:
    return {"case_id": case_id, "name": name, "state": state, "step": step, "due_at": due,
            "status": "pending", "created_at": now, "trace_parent": trace_parent}


def live_timers(cur: Cursor, case_id: int) -> list[TimerView]:
    """Pending and claimed timer rows of a case, soonest first."""
    rows = _LIVE.rows(cur, {"b_case": case_id, "b_pending": LIVE[0], "b_firing": LIVE[1]})
    return [TimerView(*row) for row in rows]


def _matching(
    live: Iterable[TimerView], *, states: Collection[str] | None, names: Collection[str] | None
) -> list[TimerView]:
    return [
        row for row in live
        if (states is None or row.state in states) and (names is None or row.name in names)
    ]


def plan(
    case_id: int,
    defn: Definition,
    live: list[TimerView],
    *,
    trigger: str | None,
    exited: Iterable[str],
    entered: Iterable[str],
    active_after: Collection[str],
    final: bool,
    now: datetime,
) -> TimerPlan:
    """Cancel the timers of exited states (every one, when the case closes), start those of
    entered states, and restart (cancel and start again) the timers whose ``restart_on``
    lists ``trigger`` while their state stays active."""
    exited_set, entered_set = set(exited), set(entered)
    result = TimerPlan()
    cancel = _matching(live, states=None if final else exited_set, names=None)
    for timer in defn.timers:
        # A state only passed through (a track's final state before its join) is in
        # ``entered`` but not active afterwards: its timers never start.
        restarted = (trigger is not None and trigger in timer.restart_on and not final)
        if timer.state not in active_after or not (timer.state in entered_set or restarted):
            continue
        if timer.state not in entered_set:
            cancel += [t for t in _matching(live, states=None, names={timer.name})
                       if t not in cancel]
        result.start.append(start_row(case_id, defn, timer, now))
        result.started.append(timer.name)
    result.cancel = cancel
    return result


def apply(cur: Cursor, planned: TimerPlan, live: list[TimerView]) -> TimerChanges:
    """Write a :func:`plan`; the caller holds the case for writing."""
    gone = {row.id for row in planned.cancel}
    writers.set_timers(cur, sorted(gone), "cancelled")
    ids = writers.add_timers(cur, planned.start)
    rows = [row for row in live if row.id not in gone]
    rows += [
        TimerView(row_id, r["name"], r["state"], 0, r["due_at"], "pending")
        for row_id, r in zip(ids, planned.start, strict=True)
    ]
    return TimerChanges(
        started=planned.started,
        cancelled=sorted({row.name for row in planned.cancel}),
        cancelled_ids=sorted(gone),
        live=sorted(rows, key=lambda row: (row.due_at, row.id)),
    )


def state_active(configuration: Sequence[Any], path: str) -> bool:
    """Is ``path`` (a leaf or any ancestor) active in the case's configuration?"""
    return any(leaf == path or str(leaf).startswith(path + ".") for leaf in configuration)
