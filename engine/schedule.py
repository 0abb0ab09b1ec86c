"""Timer rows written by a case's transitions: started on entry, cancelled on exit.

Timers are durable rows; whether one is due is decided from them alone. Cancelling is a
status change, so a worker that already claimed a row (``firing``) finds it cancelled
when it re-checks under the case's lock.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.calendar import calendar_for
from engine.definitions.model import Definition, TimerDef
from engine.models import Case, Timer

LIVE = ("pending", "firing")


@dataclass(slots=True)
class TimerChanges:
    """Names of the timers a transition started and cancelled, for its audit event."""

    started: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)


def due_at(defn: Definition, timer: TimerDef, now: datetime) -> datetime:
    return calendar_for(defn).add(now, timer.after)


def start_timer(
    session: Session, case: Case, defn: Definition, timer: TimerDef, now: datetime
) -> Timer:
    """A pending row for the timer itself (step 0), due ``timer.after`` from ``now``."""
    row = Timer(
        case_id=case.id,
        name=timer.name,
        state=timer.state,
        step=0,
        due_at=due_at(defn, timer, now),
        status="pending",
        created_at=now,
    )
    session.add(row)
    return row


def live_timers(session: Session, case_id: int) -> list[Timer]:
    """Pending and claimed timer rows of a case, soonest first."""
    return list(
        session.scalars(
            select(Timer)
            .where(Timer.case_id == case_id, Timer.status.in_(LIVE))
            .order_by(Timer.due_at, Timer.id)
        )
    )


def cancel_timers(
    session: Session,
    case_id: int,
    *,
    states: Collection[str] | None = None,
    names: Collection[str] | None = None,
) -> list[str]:
    """Cancel live rows (every ladder step too) of the given states and/or timer names.

    With neither filter every live timer of the case is cancelled. Returns the names
    cancelled, sorted and without repeats.
    """
    cancelled: set[str] = set()
    for row in live_timers(session, case_id):
        if states is not None and row.state not in states:
            continue
        if names is not None and row.name not in names:
            continue
        row.status = "cancelled"
        row.claimed_until = None
        cancelled.add(row.name)
    return sorted(cancelled)


def on_transition(
    session: Session,
    case: Case,
    defn: Definition,
    *,
    trigger: str | None,
    exited: Iterable[str],
    entered: Iterable[str],
    active_after: Collection[str],
    final: bool,
    now: datetime,
) -> TimerChanges:
    """Cancel the timers of exited states, start those of entered states, and restart
    (cancel and start again) the timers whose ``restart_on`` lists ``trigger`` while
    their state stays active."""
    exited_set, entered_set = set(exited), set(entered)
    changes = TimerChanges()
    cancelled = set(cancel_timers(session, case.id, states=exited_set)) if exited_set else set()
    if final:
        cancelled.update(cancel_timers(session, case.id))
    started: list[str] = []
    for timer in defn.timers:
        # A state only passed through (a track's final state before its join) is in
        # ``entered`` but not active afterwards: its timers never start.
        if timer.state in entered_set and timer.state in active_after:
            start_timer(session, case, defn, timer, now)
            started.append(timer.name)
        elif (
            trigger is not None
            and trigger in timer.restart_on
            and timer.state in active_after
            and not final
        ):
            cancelled.update(cancel_timers(session, case.id, names={timer.name}))
            start_timer(session, case, defn, timer, now)
            started.append(timer.name)
    changes.started = started
    changes.cancelled = sorted(cancelled)
    return changes
