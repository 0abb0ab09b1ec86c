"""The tick's fast path: a claimed batch of reminders and ladder steps in one transaction.

Firing a timer one transaction at a time costs a commit and ~15 round trips per timer,
which caps even the bare driver near 1,000 timers/s on two cores. Here a whole claimed
batch is fired in the caller's transaction with a fixed number of statements, built once:
lock the batch's cases (in id order, so two ticks cannot deadlock) and then its timers,
read their assignments, agencies and compiled definitions in one query each, compute every
row in Python (audit events hash-chained per case in memory), then write the escalations,
notifications, audit events, case heads, timer statuses and next ladder steps in one bulk
statement per table.

Why the guarantees of the per-timer transaction still hold:

- *Exactly once*: the rows were claimed (``firing`` with a lease) by a committed claim
  before this runs, and every check of the slow path is made here under the same locks
  (case first, then timers): the timer is still ours (status and lease unchanged), the
  case is still in the timer's state. A crash before the batch commits leaves every timer
  of the batch claimed but unfired; its lease runs out and another tick fires it. Nothing
  was sent, because the outbox rows were not committed either.
- *One bad timer does not sink the rest*: any error here rolls the whole batch back
  (nothing of it is written) and the caller fires the batch's timers one by one, each in
  a transaction of its own, so only the bad one fails (and stays leased, to be retried).
- *One write path*: timers that fire a trigger (``fire:``) go through
  :func:`engine.cases.service.fire`; they and every other timer of their case in the batch are
  handed back to the caller (``Batch.slow``) and fired one by one after this commits.
- *Audit*: events are built as :func:`engine.cases.audit.append_event` builds them (a JSON round
  trip of the data, ``seq`` and ``prev_hash`` from the case's chain head, the same hash),
  and the case's revision is bumped once per fired timer, as each ``casestore.claim``
  would; the update checks the revision read under the lock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
)
from sqlalchemy.orm import Session

from engine.cases.audit import event_hash
from engine.definitions.model import SYSTEM_ROLE, Definition, TimerDef
from engine.machine.deploy import compiled_by_id
from engine.notify import outbox
from engine.timers.calendar import calendar_for
from engine.timers.sql import (
    ADD_ESCALATIONS,
    ADD_EVENTS,
    ADD_NOTIFICATIONS,
    ADD_TIMERS,
    MOVE_HEADS,
    Statements,
    statements,
)


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "timer_id": self.timer_id,
            "case_id": self.case_id,
            "timer": self.timer,
            "step": self.step,
            "kind": self.kind,
            "due_at": self.due_at.isoformat(),
            "escalation_id": self.escalation_id,
            "trigger": self.trigger,
            "rejected": self.rejected,
            "next_due_at": self.next_due_at.isoformat() if self.next_due_at else None,
            "notifications": list(self.notification_ids),
            "agencies": list(self.agency_ids),
        }


@dataclass(slots=True)
class Batch:
    """What :func:`fire_batch` did: fired (and cancelled) timers in claim order, the ids
    no longer ours, and the ids left to the caller to fire one by one."""

    fired: list[Fired] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    slow: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Case:
    id: int
    workflow_version_id: int
    workflow: str
    workflow_version: int
    state: list[Any]
    data: dict[str, Any]
    seen: int
    last_event_hash: str
    last_event_seq: int
    fired: int = 0


@dataclass(slots=True)
class _Work:
    """One timer to fire, and what firing it will write."""

    row: Any
    case: _Case
    tdef: TimerDef
    defn: Definition
    kind: str = "ladder"
    roles: tuple[str, ...] = ()
    resolution: outbox.Resolution | None = None
    warning: dict[str, Any] | None = None
    escalation_id: int | None = None
    notifications: list[int] = field(default_factory=list)  # indexes into the batch's rows
    next_due: datetime | None = None


def state_active(configuration: Sequence[Any], path: str) -> bool:
    """Is ``path`` (a leaf or any ancestor) active in the case's configuration?"""
    return any(leaf == path or str(leaf).startswith(path + ".") for leaf in configuration)


def claim(conn: Connection, *, now: datetime, lease_until: datetime, limit: int) -> list[int]:
    """Mark up to ``limit`` due rows ``firing`` until ``lease_until`` (expired leases too),
    in one statement; their ids, soonest due first."""
    rows = conn.execute(
        statements(conn).claim, {"now": now, "lease_until": lease_until, "limit": limit}
    )
    return [r.id for r in sorted(rows, key=lambda r: (r.due_at, r.id))]


def fire_batch(
    session: Session,
    ids: Sequence[int],
    *,
    now: datetime,
    lease_until: datetime,
    definitions: dict[int, Definition],
) -> Batch:
    """Fire the claimed timers ``ids`` in the caller's transaction (see the module doc).

    ``definitions`` caches compiled definitions by workflow version row for one tick.
    """
    conn = session.connection()
    sql = statements(conn)
    cases: dict[int, _Case] = {}
    rows = {}
    for r in conn.execute(sql.lock, {"ids": list(ids)}):
        rows[r.id] = r
        if r.case_id not in cases:
            cases[r.case_id] = _Case(
                r.case_id, r.workflow_version_id, r.workflow, r.workflow_version,
                r.case_state, r.data, r.revision, r.last_event_hash, r.last_event_seq,
            )
    batch = Batch()
    live = []
    for timer_id in ids:
        row = rows.get(timer_id)
        if row is None or row.status != "firing" or row.claimed_until != lease_until:
            batch.skipped.append(timer_id)  # cancelled, acknowledged, or reclaimed
        else:
            live.append(row)
    slow_cases = set()
    for row in live:
        case = cases[row.case_id]
        if case.workflow_version_id not in definitions:
            vid = case.workflow_version_id
            definitions[vid] = compiled_by_id(session, vid).definition
        tdef = _timer_def(definitions[case.workflow_version_id], row.name)
        if row.step == 0 and tdef is not None and tdef.fire:
            slow_cases.add(case.id)
    work: list[_Work] = []
    cancelled: list[int] = []
    for row in live:
        case = cases[row.case_id]
        if case.id in slow_cases:
            batch.slow.append(row.id)
            continue
        defn = definitions[case.workflow_version_id]
        tdef = _timer_def(defn, row.name)
        if tdef is None or not state_active(case.state, row.state):
            cancelled.append(row.id)
            batch.fired.append(Fired(row.id, case.id, row.name, row.step, "cancelled", row.due_at))
            continue
        work.append(_Work(row, case, tdef, defn))
    if work:
        _fire(conn, sql, work, now=now)
        batch.fired.extend(_result(w) for w in work)
    if cancelled:
        conn.execute(sql.mark_cancelled, {"ids": cancelled})
    return batch


def _timer_def(defn: Definition, name: str) -> TimerDef | None:
    return next((t for t in defn.timers if t.name == name), None)


def _fire(conn: Connection, sql: Statements, work: list[_Work], *, now: datetime) -> None:
    case_ids = sorted({w.case.id for w in work})
    assigned: dict[int, dict[str, int]] = {c: {} for c in case_ids}
    for case_id, role, agency_id in conn.execute(sql.assignments, {"ids": case_ids}):
        assigned[case_id][role] = agency_id
    escalations: list[dict[str, Any]] = []
    for w in work:
        step = w.row.step
        if step == 0 and not w.tdef.remind:
            continue  # an escalate-only timer's start: no notification, the ladder begins
        w.kind, w.roles = (
            ("reminder", w.tdef.remind) if step == 0
            else ("escalation", w.tdef.escalate[step - 1].notify)
        )
        w.resolution, w.warning = outbox.plan(
            assigned[w.case.id], w.roles, case_id=w.case.id,
            reason=f"{w.kind} of timer {w.row.name} step {step}",
        )
        escalations.append({
            "case_id": w.case.id, "timer_id": w.row.id, "timer_name": w.row.name,
            "step": step, "roles": w.resolution.roles, "agency_ids": w.resolution.agency_ids,
            "created_at": now,
        })
    agencies: dict[int, Any] = {}
    if escalations:
        wanted = sorted({a for w in work if w.resolution for a in w.resolution.by_agency})
        if wanted:
            agencies = {r.id: r for r in conn.execute(sql.agencies, {"ids": wanted})}
        ids = iter(sorted(conn.execute(ADD_ESCALATIONS, escalations).scalars()))
        for w in work:
            if w.resolution is not None:
                w.escalation_id = next(ids)
    notifications: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    new_timers: list[dict[str, Any]] = []
    for w in work:
        _write(w, assigned[w.case.id], agencies, notifications, events, now=now)
        if w.row.step < len(w.tdef.escalate):
            w.next_due = calendar_for(w.defn).add(
                w.row.due_at, w.tdef.escalate[w.row.step].after
            )
            new_timers.append({
                "case_id": w.case.id, "name": w.row.name, "state": w.row.state,
                "step": w.row.step + 1, "due_at": w.next_due, "status": "pending",
                "created_at": now,
            })
    if notifications:
        notification_ids = sorted(conn.execute(ADD_NOTIFICATIONS, notifications).scalars())
        for w in work:
            w.notifications = [notification_ids[i] for i in w.notifications]
    conn.execute(ADD_EVENTS, events)
    heads = [
        {"b_id": c.id, "b_seen": c.seen, "b_revision": c.seen + c.fired,
         "b_hash": c.last_event_hash, "b_seq": c.last_event_seq}
        for c in {w.case.id: w.case for w in work}.values()
    ]
    moved = conn.execute(MOVE_HEADS, heads)
    if conn.dialect.supports_sane_multi_rowcount and moved.rowcount != len(heads):
        raise RuntimeError("a case changed under the tick's lock")  # the batch rolls back
    conn.execute(sql.mark_fired, {"ids": [w.row.id for w in work], "now": now})
    if new_timers:
        conn.execute(ADD_TIMERS, new_timers)


def _write(
    w: _Work,
    assigned: Mapping[str, int],
    agencies: Mapping[int, Any],
    notifications: list[dict[str, Any]],
    events: list[dict[str, Any]],
    *,
    now: datetime,
) -> None:
    """The audit events and outbox rows of one timer, in the order the slow path adds them."""
    case, row = w.case, w.row
    case.fired += 1
    due = row.due_at.isoformat()
    if w.resolution is None:
        _event(case, events, kind="timer_fired", at=now,
               data={"timer": row.name, "step": 0, "due_at": due})
        return
    if w.warning is not None:
        _event(case, events, kind="warning", at=now, data=w.warning)
    info = {"timer": row.name, "step": row.step, "escalation_id": w.escalation_id,
            "timer_state": row.state, "due_at": due}
    messages = []
    for agency_id, channel, payload in outbox.case_payloads(
        case, w.defn, w.resolution, assigned, agencies, kind=w.kind, info=info
    ):
        message_id = outbox.new_message_id()
        messages.append(message_id)
        w.notifications.append(len(notifications))
        notifications.append({
            "message_id": message_id, "case_id": case.id, "agency_id": agency_id,
            "channel": channel, "kind": w.kind, "payload": {**payload, "message_id": message_id},
            "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
        })
    _event(case, events, kind=w.kind, at=now, data={
        "timer": row.name, "step": row.step, "escalation_id": w.escalation_id, "due_at": due,
        "roles": list(w.roles), "agency_ids": w.resolution.agency_ids, "messages": messages,
    })


def _event(
    case: _Case, events: list[dict[str, Any]], *, kind: str, at: datetime, data: Mapping[str, Any]
) -> None:
    """An audit event row built as ``append_event`` builds it, moving the chain head."""
    payload: dict[str, Any] = json.loads(json.dumps(dict(data)))
    seq, prev, state = case.last_event_seq + 1, case.last_event_hash, list(case.state)
    digest = event_hash(
        case_id=case.id, seq=seq, at=at, kind=kind, agency_id=None, role=SYSTEM_ROLE,
        trigger=None, from_state=state, to_state=state, data=payload, prev_hash=prev,
    )
    events.append({
        "case_id": case.id, "seq": seq, "at": at, "kind": kind, "agency_id": None,
        "role": SYSTEM_ROLE, "trigger": None, "from_state": state, "to_state": state,
        "data": payload, "prev_hash": prev, "hash": digest,
    })
    case.last_event_seq, case.last_event_hash = seq, digest


def _result(w: _Work) -> Fired:
    row, case = w.row, w.case
    if w.resolution is None:
        return Fired(row.id, case.id, row.name, 0, "ladder", row.due_at, next_due_at=w.next_due)
    return Fired(
        row.id, case.id, row.name, row.step, w.kind, row.due_at,
        escalation_id=w.escalation_id,
        next_due_at=w.next_due,
        notification_ids=tuple(w.notifications),
        agency_ids=tuple(w.resolution.agency_ids),
    )
