"""The tick: fire due timers, exactly once, in bounded batches.

Due times live only in the ``timers`` table. A tick claims a batch of due rows (marking
them ``firing`` with a lease, so a concurrent tick skips them; PostgreSQL uses
``FOR UPDATE SKIP LOCKED``, SQLite's ``BEGIN IMMEDIATE`` makes the claim a single writer)
and commits the claim. It then fires the batch's reminders and ladder steps together in one
transaction (:mod:`engine.timers.batch`, which says why that keeps every guarantee), and the
timers that fire a trigger one by one, each in a transaction of its own (:func:`fire_one`):
it re-checks under the case's row lock that the row is still the one it claimed and the
case is still in the timer's state, then fires the trigger as ``system`` through the one
write path (or writes the reminder or escalation with its outbox rows), and schedules the
next ladder step. When a batch fails, nothing of it is written and its timers are fired
one by one the same way, so only the timer at fault fails. A tick that dies leaves its
claimed rows to be reclaimed once their lease runs out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.cases import service
from engine.cases.audit import append_event
from engine.definitions.model import SYSTEM_ROLE, Definition, TimerDef
from engine.errors import ReferralError
from engine.machine.deploy import compiled_for_case
from engine.notify import outbox
from engine.store.caserow import claim as claim_case
from engine.store.tables import Case, Timer
from engine.timers import batch as tickbatch
from engine.timers import escalations
from engine.timers.batch import Batch, Fired, fire_batch, state_active
from engine.timers.calendar import calendar_for

__all__ = ["Fired", "TickResult", "claim_due", "fire_one", "next_due_at", "state_active", "tick"]

logger = logging.getLogger(__name__)


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
    definitions: dict[int, Definition] = {}
    for _ in range(max_batches):
        with session_factory() as session, session.begin():
            ids = claim_due(session, now=now, lease_until=lease_until, limit=batch_size)
        result.claimed += len(ids)
        if not ids:
            break
        try:
            with session_factory() as session, session.begin():
                batch = fire_batch(
                    session, ids, now=now, lease_until=lease_until, definitions=definitions
                )
        except Exception:
            # Nothing of the batch was written: fire its timers one by one, so that only
            # the timer at fault fails.
            logger.warning("a batch of %d timers failed; firing them one by one", len(ids),
                           exc_info=True)
            batch = Batch(slow=list(ids))
        result.skipped.extend(batch.skipped)
        for fired in batch.fired:
            (result.skipped.append(fired.timer_id) if fired.kind == "cancelled"
             else result.fired.append(fired))
        for timer_id in batch.slow:
            _fire_alone(session_factory, result, timer_id, now=now, lease_until=lease_until)
    return result


def _fire_alone(
    session_factory: sessionmaker[Session],
    result: TickResult,
    timer_id: int,
    *,
    now: datetime,
    lease_until: datetime,
) -> None:
    """Fire one claimed timer in a transaction of its own (triggers, and after a failure)."""
    try:
        with session_factory() as session, session.begin():
            fired = fire_one(session, timer_id, now=now, lease_until=lease_until)
    except Exception as exc:
        # Left ``firing``: its lease runs out and a later tick tries again.
        logger.exception("timer %s failed to fire", timer_id)
        result.errors.append((timer_id, f"{type(exc).__name__}: {exc}"))
        return
    if fired is None or fired.kind == "cancelled":
        result.skipped.append(timer_id)
    else:
        result.fired.append(fired)


def claim_due(
    session: Session, *, now: datetime, lease_until: datetime, limit: int
) -> list[int]:
    """Mark up to ``limit`` due rows ``firing`` until ``lease_until`` (expired leases too)."""
    return tickbatch.claim(session.connection(), now=now, lease_until=lease_until, limit=limit)


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
    assigned = outbox.case_roles(session, case.id)
    resolution = outbox.resolve(
        session, case, roles, now=now, reason=f"{kind} of timer {timer.name} step {timer.step}",
        assigned=assigned,
    )
    esc = escalations.record(session, case, timer, resolution, now=now)
    written = outbox.write_case_notifications(
        session,
        case,
        defn,
        resolution,
        assigned=assigned,
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
