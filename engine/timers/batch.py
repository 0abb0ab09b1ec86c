"""Firing claimed timers: a batch in one transaction, a fixed number of statements.

Firing a timer one transaction at a time costs a commit and ~15 round trips per timer,
which caps even the bare driver near 1,000 timers/s on two cores. Here a claimed batch is
fired in the caller's transaction: lock the batch's cases (in id order, so two ticks
cannot deadlock) and then its timers, read their assignments and agencies in one query
each, plan every row with the concepts' planners (audit events chained per case in
memory, escalations, outbox rows, next ladder steps), then write each table's rows with
its one writer. One timer is a batch of one: the same code, the fallback for a batch that
failed.

Why the guarantees hold:

- *Exactly once*: the rows were claimed (``firing`` with a lease) by a committed claim
  before this runs, and every check is made here under the locks (case first, then
  timers): the timer is still ours (status and lease unchanged), the case is still in the
  timer's state. A crash before the batch commits leaves every timer of the batch claimed
  but unfired; its lease runs out and another tick fires it. Nothing was sent, because the
  outbox rows were not committed either.
- *One bad timer does not sink the rest*: any error rolls the whole batch back and the
  caller fires its timers one by one, each in a transaction of its own, so only the bad
  one fails (and stays leased, to be retried).
- *One write path*: a timer that fires a trigger (``fire:``) goes through
  :func:`engine.cases.service.apply_trigger`. Its case's timers in the batch fire one at a
  time, in due order, each seeing what the one before changed (a transition cancels or
  restarts timers and moves the case out of states); every other case's timers are
  planned together and written in one statement per table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.cases.audit import plan_event
from engine.cases.service import apply_trigger
from engine.definitions.model import SYSTEM_ROLE, TimerDef
from engine.errors import ReferralError
from engine.machine.compiled import CompiledWorkflow
from engine.machine.deploy import compiled_by_id
from engine.notify import outbox
from engine.store import caserow, writers
from engine.store.caserow import CaseRow
from engine.store.fastpath import Cursor, cursor_for
from engine.timers import escalations, schedule
from engine.timers.schedule import state_active
from engine.timers.sql import TIMER_COLUMNS, statements


@dataclass(frozen=True, slots=True)
class Fired:
    """One timer row that fired (or was found stale and set aside)."""

    timer_id: int
    case_id: int
    timer: str
    step: int
    # reminder, escalation, fire, ladder (escalate-only timer's start), cancelled
    kind: str
    due_at: datetime
    escalation_id: int | None = None
    trigger: str | None = None
    # Why the timer's trigger was refused, recorded as a warning in the audit history.
    rejected: str | None = None
    next_due_at: datetime | None = None
    notification_ids: tuple[int, ...] = ()
    agency_ids: tuple[int, ...] = ()


@dataclass(slots=True)
class Batch:
    """What :func:`fire_batch` did: fired (and cancelled) timers in claim order, and the
    ids no longer ours."""

    fired: list[Fired] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Timer:
    id: int
    case_id: int
    name: str
    state: str
    step: int
    due_at: datetime
    status: str
    claimed_until: datetime | None
    trace_parent: str | None


@dataclass(slots=True)
class _Work:
    """One timer to fire, and what firing it plans."""

    timer: _Timer
    case: CaseRow
    # None: the definition no longer declares the timer, which is cancelled, not fired.
    tdef: TimerDef | None
    compiled: CompiledWorkflow
    kind: str = "ladder"
    roles: tuple[str, ...] = ()
    resolution: outbox.Resolution | None = None
    warning: dict[str, Any] | None = None
    escalation_id: int | None = None
    notifications: list[int] = field(default_factory=list)  # indexes, then ids
    fired: Fired | None = None


@dataclass(slots=True)
class _Locked:
    """The batch's rows as locked: timers by id, their cases by id."""

    timers: dict[int, _Timer]
    cases: dict[int, CaseRow]


def _lock(cur: Cursor, ids: Sequence[int]) -> _Locked:
    locked = _Locked({}, {})
    width = len(TIMER_COLUMNS)
    for row in cur.conn.execute(statements(cur.conn).lock, {"ids": list(ids)}):
        timer = _Timer(*row[:width])
        locked.timers[timer.id] = timer
        if timer.case_id not in locked.cases:
            locked.cases[timer.case_id] = CaseRow.of(row[width:])
    return locked


def fire_batch(
    session: Session,
    ids: Sequence[int],
    *,
    now: datetime,
    lease_until: datetime,
    definitions: dict[int, CompiledWorkflow],
) -> Batch:
    """Fire the claimed timers ``ids`` in the caller's transaction (see the module doc).

    ``definitions`` caches compiled workflows by version row for one tick.
    """
    session.flush()
    cur = cursor_for(session)
    locked = _lock(cur, ids)
    batch = Batch()
    work: list[_Work] = []
    for timer_id in ids:
        timer = locked.timers.get(timer_id)
        if timer is None or timer.status != "firing" or timer.claimed_until != lease_until:
            batch.skipped.append(timer_id)  # cancelled, acknowledged, or reclaimed
            continue
        case = locked.cases[timer.case_id]
        vid = case.workflow_version_id
        if vid not in definitions:
            definitions[vid] = compiled_by_id(session, vid)
        compiled = definitions[vid]
        work.append(_Work(timer, case, _timer_def(compiled, timer.name), compiled))
    one_by_one = {w.case.id for w in work if _fires_trigger(w)}
    together = [w for w in work if w.case.id not in one_by_one]
    _fire_group(cur, [w for w in together if _live(w, set())], now=now)
    cancelled: set[int] = set()
    for w in work:
        if w.case.id in one_by_one and _live(w, cancelled):
            cancelled.update(_fire_group(cur, [w], now=now))
    stale = [w for w in work if w.fired is None]
    writers.set_timers(cur, [w.timer.id for w in stale], "cancelled")
    for w in work:
        batch.fired.append(w.fired or _cancelled(w))
    return batch


def _timer_def(compiled: CompiledWorkflow, name: str) -> TimerDef | None:
    return next((t for t in compiled.definition.timers if t.name == name), None)


def _fires_trigger(w: _Work) -> bool:
    return w.tdef is not None and w.tdef.fire is not None and w.timer.step == 0


def _live(w: _Work, cancelled: set[int]) -> bool:
    """Still to fire: declared, not cancelled by an earlier step of this batch, and its
    case still in the timer's state."""
    return (w.tdef is not None and w.timer.id not in cancelled
            and state_active(w.case.state, w.timer.state))


def _cancelled(w: _Work) -> Fired:
    t = w.timer
    return Fired(t.id, t.case_id, t.name, t.step, "cancelled", t.due_at)


def _fire_group(cur: Cursor, work: list[_Work], *, now: datetime) -> list[int]:
    """Fire ``work`` (one case's trigger timer alone, or any number of notifying and
    ladder timers); the ids of timers its transitions cancelled."""
    if not work:
        return []
    if len(work) == 1 and _fires_trigger(work[0]):
        return _fire_trigger(cur, work[0], now=now)
    _notify(cur, work, now=now)
    return []


def _next_step(cur: Cursor, work: Sequence[_Work], *, now: datetime) -> None:
    """Write each timer's next ladder step, counted from this step's due time, while the
    case is still in the timer's state; set what each fired."""
    rows: list[dict[str, Any]] = []
    for w in work:
        assert w.tdef is not None and w.fired is not None
        t = w.timer
        if not state_active(w.case.state, t.state):
            continue
        row = schedule.next_step_row(
            w.case.id, w.compiled.definition, w.tdef, t.step, t.due_at, now, t.trace_parent
        )
        if row is not None:
            rows.append(row)
            w.fired = replace(w.fired, next_due_at=row["due_at"])
    writers.add_timers(cur, rows)


def _fire_trigger(cur: Cursor, w: _Work, *, now: datetime) -> list[int]:
    """Fire a ``fire:`` timer's trigger as the system through the one write path; a
    trigger that no longer applies (a guard) is recorded as a warning, not an error."""
    assert w.tdef is not None and w.tdef.fire is not None
    t, case, trigger = w.timer, w.case, w.tdef.fire
    caserow.bump(case)
    writers.add_events(cur, [plan_event(
        case, kind="timer_fired", at=now, role=SYSTEM_ROLE, agency_id=None, trigger=trigger,
        data={"timer": t.name, "step": 0, "due_at": t.due_at.isoformat(), "fire": trigger},
    )])
    # Fired before the transition: leaving the state cancels the state's live timers, and
    # this one must be recorded as fired, not as cancelled by its own trigger.
    writers.set_timers(cur, [t.id], "fired", fired_at=now)
    rejected: str | None = None
    cancelled: list[int] = []
    try:
        applied = apply_trigger(cur, case, w.compiled, trigger, role=SYSTEM_ROLE,
                                agency_id=None, given={}, now=now)
        cancelled = applied.timers.cancelled_ids
    except ReferralError as exc:  # raised before apply_trigger wrote anything
        rejected = exc.message
        writers.add_events(cur, [plan_event(
            case, kind="warning", at=now, role=SYSTEM_ROLE, agency_id=None, trigger=trigger,
            data={"warning": "timer_trigger_rejected", "timer": t.name, "trigger": trigger,
                  "code": exc.code, "message": exc.message,
                  "details": {k: v for k, v in exc.details.items() if _jsonable(v)}},
        )])
        caserow.write(cur, [case])
    w.kind = "fire"
    w.fired = Fired(t.id, case.id, t.name, 0, "fire", t.due_at, trigger=trigger,
                    rejected=rejected)
    _next_step(cur, [w], now=now)
    return cancelled


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | list | type(None))


def _resolve(cur: Cursor, work: Sequence[_Work], now: datetime) -> dict[int, dict[str, int]]:
    """Who each notifying timer tells, and its escalation row written (ids set on the
    work); the case's assignments, role -> agency id, by case id."""
    case_ids = sorted({w.case.id for w in work})
    assigned: dict[int, dict[str, int]] = {c: {} for c in case_ids}
    for case_id, role, agency_id in cur.conn.execute(
        statements(cur.conn).assignments, {"ids": case_ids}
    ):
        assigned[case_id][role] = agency_id
    rows = []
    for w in work:
        assert w.tdef is not None
        t = w.timer
        if t.step == 0 and not w.tdef.remind:
            continue  # an escalate-only timer's start: no notification, the ladder begins
        w.kind, w.roles = (
            ("reminder", w.tdef.remind) if t.step == 0 or w.tdef.every is not None
            else ("escalation", w.tdef.escalate[t.step - 1].notify)
        )
        w.resolution, w.warning = outbox.plan(
            assigned[w.case.id], w.roles, case_id=w.case.id,
            reason=f"{w.kind} of timer {t.name} step {t.step}",
        )
        rows.append(escalations.plan_row(w.case.id, t.id, t.name, t.step, w.resolution, now))
    ids = iter(writers.add_escalations(cur, rows))
    for w in work:
        if w.resolution is not None:
            w.escalation_id = next(ids)
    return assigned


def _agencies(cur: Cursor, work: Sequence[_Work]) -> dict[int, Any]:
    wanted = sorted({a for w in work if w.resolution for a in w.resolution.by_agency})
    if not wanted:
        return {}
    found = cur.conn.execute(statements(cur.conn).agencies, {"ids": wanted})
    return {r.id: r for r in found}


def _notify(cur: Cursor, work: list[_Work], *, now: datetime) -> None:
    """Reminders, ladder steps and ladder starts, planned together, one write a table."""
    assigned = _resolve(cur, work, now)
    agencies = _agencies(cur, work)
    notifications: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for w in work:
        caserow.bump(w.case)
        events += _plan_one(w, assigned[w.case.id], agencies, notifications, now=now)
    ids = writers.add_notifications(cur, notifications)
    writers.add_events(cur, events)
    caserow.write(cur, list({w.case.id: w.case for w in work}.values()))
    writers.set_timers(cur, [w.timer.id for w in work], "fired", fired_at=now)
    for w in work:
        w.notifications = [ids[i] for i in w.notifications]
        w.fired = _result(w)
    _next_step(cur, work, now=now)


def _plan_one(
    w: _Work,
    assigned: Mapping[str, int],
    agencies: Mapping[int, Any],
    notifications: list[dict[str, Any]],
    *,
    now: datetime,
) -> list[dict[str, Any]]:
    """The audit events and outbox rows of one timer (its warning first, if any)."""
    case, t = w.case, w.timer
    due = t.due_at.isoformat()
    if w.resolution is None:
        return [plan_event(case, kind="timer_fired", at=now, role=SYSTEM_ROLE, agency_id=None,
                           data={"timer": t.name, "step": 0, "due_at": due})]
    events = []
    if w.warning is not None:
        events.append(plan_event(case, kind="warning", at=now, role=SYSTEM_ROLE,
                                 agency_id=None, data=w.warning))
    info = {"timer": t.name, "step": t.step, "escalation_id": w.escalation_id,
            "timer_state": t.state, "due_at": due, "waited": _waited(w)}
    rows = outbox.plan_rows(case, w.compiled.definition, w.resolution, assigned, agencies,
                            kind=w.kind, info=info, now=now, trace_parent=t.trace_parent)
    w.notifications = list(range(len(notifications), len(notifications) + len(rows)))
    notifications += rows
    events.append(plan_event(case, kind=w.kind, at=now, role=SYSTEM_ROLE, agency_id=None, data={
        "timer": t.name, "step": t.step, "escalation_id": w.escalation_id, "due_at": due,
        "roles": list(w.roles), "agency_ids": w.resolution.agency_ids,
        "messages": [r["message_id"] for r in rows],
    }))
    return events


def _waited(w: _Work) -> str | None:
    """How long the case has waited, in the definition's words, for a reminder's mail."""
    assert w.tdef is not None
    if w.kind != "reminder":
        return None
    if w.timer.step == 0 or w.tdef.every is None:
        return str(w.tdef.after)
    return f"{w.tdef.after} and {w.timer.step} x {w.tdef.every} more"


def _result(w: _Work) -> Fired:
    t, case = w.timer, w.case
    if w.resolution is None:
        return Fired(t.id, case.id, t.name, 0, "ladder", t.due_at)
    return Fired(
        t.id, case.id, t.name, t.step, w.kind, t.due_at,
        escalation_id=w.escalation_id,
        notification_ids=tuple(w.notifications),
        agency_ids=tuple(w.resolution.agency_ids),
    )
