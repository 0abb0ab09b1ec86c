"""The tick: fire due timers, exactly once, in bounded batches.

Due times live only in the ``timers`` table. A tick claims a batch of due rows (marking
them ``firing`` with a lease, so a concurrent tick skips them; PostgreSQL uses
``FOR UPDATE SKIP LOCKED``, SQLite's ``BEGIN IMMEDIATE`` makes the claim a single writer),
then fires each in a transaction of its own: it re-checks under the case's row lock that
the row is still the one it claimed and the case is still in the timer's state, then writes
the reminder or escalation (with its outbox rows), or fires the timer's trigger as
``system`` through the one write path, and schedules the next ladder step. A tick that
dies leaves its claimed rows to be reclaimed once their lease runs out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine import escalations, outbox, service
from engine.audit import append_event
from engine.calendar import calendar_for
from engine.casestore import claim as claim_case
from engine.definitions.model import SYSTEM_ROLE, Definition, TimerDef
from engine.deploy import compiled_for_case
from engine.errors import ReferralError
from engine.models import Case, Timer

logger = logging.getLogger(__name__)


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
class TickResult:
    now: datetime
    claimed: int = 0
    fired: list[Fired] = field(default_factory=list)
    # Claimed rows found cancelled, reclaimed by another tick, or whose case left the state.
    skipped: list[int] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def notification_ids(self) -> list[int]:
        return [n for f in self.fired for n in f.notification_ids]

    @property
    def max_overdue_seconds(self) -> float:
        """How late the latest-firing timer of this tick was: the accuracy to watch."""
        return max(((self.now - f.due_at).total_seconds() for f in self.fired), default=0.0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "claimed": self.claimed,
            "max_overdue_seconds": self.max_overdue_seconds,
            "fired": [f.as_dict() for f in self.fired if f.kind != "cancelled"],
            "skipped": self.skipped,
            "errors": [{"timer_id": t, "error": e} for t, e in self.errors],
        }


def tick(
    session_factory: sessionmaker[Session],
    *,
    now: datetime,
    batch_size: int,
    lease_seconds: int = 120,
    max_batches: int = 10,
) -> TickResult:
    """Fire every timer due at ``now``, ``batch_size`` rows per claim, at most ``max_batches``.

    Ladder steps that fall due at once (after downtime, or a simulated jump) fire in the
    same tick, in order, because each step is scheduled before the next claim.
    """
    result = TickResult(now=now)
    lease_until = now + timedelta(seconds=lease_seconds)
    for _ in range(max_batches):
        with session_factory() as session, session.begin():
            ids = claim_due(session, now=now, lease_until=lease_until, limit=batch_size)
        result.claimed += len(ids)
        for timer_id in ids:
            try:
                with session_factory() as session, session.begin():
                    fired = fire_one(session, timer_id, now=now, lease_until=lease_until)
            except Exception as exc:
                # Left ``firing``: its lease runs out and a later tick tries again.
                logger.exception("timer %s failed to fire", timer_id)
                result.errors.append((timer_id, f"{type(exc).__name__}: {exc}"))
                continue
            if fired is None or fired.kind == "cancelled":
                result.skipped.append(timer_id)
            else:
                result.fired.append(fired)
        if not ids:
            break
    return result


def claim_due(
    session: Session, *, now: datetime, lease_until: datetime, limit: int
) -> list[int]:
    """Mark up to ``limit`` due rows ``firing`` until ``lease_until`` (expired leases too)."""
    query = (
        select(Timer.id)
        .where(
            or_(
                and_(Timer.status == "pending", Timer.due_at <= now),
                and_(Timer.status == "firing", Timer.claimed_until < now),
            )
        )
        .order_by(Timer.due_at, Timer.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = list(session.scalars(query))
    if ids:
        session.execute(
            update(Timer)
            .where(Timer.id.in_(ids))
            .values(status="firing", claimed_until=lease_until)
            .execution_options(synchronize_session=False)
        )
    return ids


def state_active(configuration: list[Any] | tuple[str, ...], path: str) -> bool:
    """Is ``path`` (a leaf or any ancestor) active in the case's configuration?"""
    return any(leaf == path or str(leaf).startswith(path + ".") for leaf in configuration)


def fire_one(
    session: Session, timer_id: int, *, now: datetime, lease_until: datetime
) -> Fired | None:
    """Fire one claimed timer in the caller's transaction; None if it is no longer ours."""
    found = session.get(Timer, timer_id)
    if found is None:
        return None
    # Lock order everywhere: the case first, then its timers.
    case = session.get(Case, found.case_id, with_for_update=True, populate_existing=True)
    timer = session.get(Timer, timer_id, with_for_update=True, populate_existing=True)
    if case is None or timer is None:
        return None
    if timer.status != "firing" or timer.claimed_until != lease_until:
        return None  # cancelled, stopped by an acknowledgement, or reclaimed by another tick
    defn = compiled_for_case(session, case).definition
    tdef = next((t for t in defn.timers if t.name == timer.name), None)
    if tdef is None or not state_active(case.state, timer.state):
        timer.status, timer.claimed_until = "cancelled", None
        return Fired(timer.id, case.id, timer.name, timer.step, "cancelled", timer.due_at)
    # Audit events move the case's chain head: claim the case like every other writer.
    claim_case(session, case)
    if timer.step == 0 and tdef.fire:
        fired = _fire_trigger(session, case, timer, tdef, tdef.fire, now=now)
    elif timer.step == 0 and not tdef.remind:
        append_event(
            session, case, kind="timer_fired", at=now, role=SYSTEM_ROLE, agency_id=None,
            from_state=tuple(case.state), to_state=tuple(case.state),
            data={"timer": timer.name, "step": 0, "due_at": timer.due_at.isoformat()},
        )
        fired = Fired(timer.id, case.id, timer.name, 0, "ladder", timer.due_at)
    else:
        fired = _notify(session, case, timer, tdef, defn, now=now)
    next_due = _schedule_next(session, case, timer, tdef, defn, now=now)
    timer.status, timer.fired_at, timer.claimed_until = "fired", now, None
    session.flush()
    if next_due is not None:
        fired = _with_next(fired, next_due)
    return fired


def _notify(
    session: Session, case: Case, timer: Timer, tdef: TimerDef, defn: Definition, *, now: datetime
) -> Fired:
    if timer.step == 0:
        kind, roles = "reminder", tdef.remind
    else:
        kind, roles = "escalation", tdef.escalate[timer.step - 1].notify
    resolution = outbox.resolve(
        session, case, roles, now=now, reason=f"{kind} of timer {timer.name} step {timer.step}"
    )
    esc = escalations.record(session, case, timer, resolution, now=now)
    written = outbox.write_case_notifications(
        session,
        case,
        defn,
        resolution,
        kind=kind,
        info={
            "timer": timer.name,
            "step": timer.step,
            "escalation_id": esc.id,
            "timer_state": timer.state,
            "due_at": timer.due_at.isoformat(),
        },
        now=now,
    )
    append_event(
        session, case, kind=kind, at=now, role=SYSTEM_ROLE, agency_id=None,
        from_state=tuple(case.state), to_state=tuple(case.state),
        data={
            "timer": timer.name,
            "step": timer.step,
            "escalation_id": esc.id,
            "due_at": timer.due_at.isoformat(),
            "roles": list(roles),
            "agency_ids": resolution.agency_ids,
            "messages": [n.message_id for n in written.notifications],
        },
    )
    return Fired(
        timer.id, case.id, timer.name, timer.step, kind, timer.due_at,
        escalation_id=esc.id,
        notification_ids=tuple(written.ids),
        agency_ids=tuple(resolution.agency_ids),
    )


def _fire_trigger(
    session: Session, case: Case, timer: Timer, tdef: TimerDef, trigger: str, *, now: datetime
) -> Fired:
    append_event(
        session, case, kind="timer_fired", at=now, role=SYSTEM_ROLE, agency_id=None,
        trigger=trigger, from_state=tuple(case.state), to_state=tuple(case.state),
        data={"timer": timer.name, "step": 0, "due_at": timer.due_at.isoformat(),
              "fire": trigger},
    )
    # Mark it fired before the transition: leaving the state cancels the state's live
    # timers, and this one must be recorded as fired, not as cancelled by its own trigger.
    timer.status, timer.fired_at, timer.claimed_until = "fired", now, None
    session.flush()
    rejected: str | None = None
    savepoint = session.begin_nested()
    try:
        service.fire(session, case.id, trigger, role=SYSTEM_ROLE, agency_id=None, now=now)
        savepoint.commit()
    except ReferralError as exc:
        # The trigger no longer applies (e.g. a guard): the history says so; nothing crashes.
        savepoint.rollback()
        rejected = exc.message
        session.refresh(case)  # the rollback expired it; the chain head is as before the try
        append_event(
            session, case, kind="warning", at=now, role=SYSTEM_ROLE, agency_id=None,
            trigger=trigger, from_state=tuple(case.state), to_state=tuple(case.state),
            data={"warning": "timer_trigger_rejected", "timer": timer.name, "trigger": trigger,
                  "code": exc.code, "message": exc.message,
                  "details": {k: v for k, v in exc.details.items() if _jsonable(v)}},
        )
    # The service changed this very ``case`` object (one identity map), so no reload.
    session.flush()
    return Fired(timer.id, case.id, timer.name, 0, "fire", timer.due_at, trigger=trigger,
                 rejected=rejected)


def _schedule_next(
    session: Session, case: Case, timer: Timer, tdef: TimerDef, defn: Definition, *, now: datetime
) -> datetime | None:
    """Write the next ladder step, counted from this step's due time in the calendar."""
    if timer.step >= len(tdef.escalate) or not state_active(case.state, timer.state):
        return None
    step = tdef.escalate[timer.step]
    due = calendar_for(defn).add(timer.due_at, step.after)
    session.add(
        Timer(
            case_id=case.id,
            name=timer.name,
            state=timer.state,
            step=timer.step + 1,
            due_at=due,
            status="pending",
            created_at=now,
        )
    )
    return due


def _with_next(fired: Fired, next_due: datetime) -> Fired:
    return replace(fired, next_due_at=next_due)


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | list | type(None))


def next_due_at(session: Session) -> datetime | None:
    """When the next timer falls due (or a claimed one's lease runs out), for simulation."""
    pending = session.scalar(select(func.min(Timer.due_at)).where(Timer.status == "pending"))
    leased = session.scalar(
        select(func.min(Timer.claimed_until)).where(Timer.status == "firing")
    )
    # func.min bypasses the column type on some backends: normalise to aware UTC.
    values = [_aware(v) for v in (pending, leased) if v is not None]
    return min(values) if values else None


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
