"""The tick: fire due timers, exactly once, in bounded batches.

Due times live only in the ``timers`` table. A tick claims a batch of due rows (marking
them ``firing`` with a lease, so a concurrent tick skips them; PostgreSQL uses
``FOR UPDATE SKIP LOCKED``, SQLite's ``BEGIN IMMEDIATE`` makes the claim a single writer)
and commits the claim. It then fires the batch in one transaction
(:mod:`engine.timers.batch`, which says why that keeps every guarantee): under the case's
row lock it re-checks that each row is still the one it claimed and the case still in the
timer's state, writes the reminder or escalation with its outbox rows or fires the
trigger as ``system`` through the one write path, and schedules the next ladder step.
When a batch fails, nothing of it is written and its timers are fired one by one, each a
batch of one in a transaction of its own, so only the timer at fault fails. A tick that
dies leaves its claimed rows to be reclaimed once their lease runs out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import computed_field
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine import tracing
from engine.machine.compiled import CompiledWorkflow
from engine.store.tables import Timer
from engine.timers.batch import Batch, Fired, fire_batch
from engine.timers.schedule import state_active
from engine.timers.sql import statements

__all__ = ["Fired", "TickError", "TickResult", "claim_due", "next_due_at", "state_active", "tick"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TickError:
    """A timer that failed to fire; it stays claimed and is retried after its lease."""

    timer_id: int
    # The error's class only: its text may quote a value of the case.
    error: str


@dataclass(slots=True)
class TickResult:
    """What one tick did; its JSON form is what ``referral tick --json`` prints."""

    now: datetime
    claimed: int = 0
    # Timers that fired, in claim order (never the cancelled ones: see ``skipped``).
    fired: list[Fired] = field(default_factory=list)
    # Claimed rows found cancelled, reclaimed by another tick, or whose case left the state.
    skipped: list[int] = field(default_factory=list)
    errors: list[TickError] = field(default_factory=list)

    @property
    def notification_ids(self) -> list[int]:
        return [n for f in self.fired for n in f.notification_ids]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def max_overdue_seconds(self) -> float:
        """How late the latest-firing timer of this tick was: the accuracy to watch."""
        return max(((self.now - f.due_at).total_seconds() for f in self.fired), default=0.0)


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
    definitions: dict[int, CompiledWorkflow] = {}
    for _ in range(max_batches):
        with tracing.span("tick.batch"):
            claimed = _claim_and_fire(session_factory, result, now=now, limit=batch_size,
                                      lease_until=lease_until, definitions=definitions)
        if not claimed:
            break
    return result


def _claim_and_fire(
    session_factory: sessionmaker[Session],
    result: TickResult,
    *,
    now: datetime,
    limit: int,
    lease_until: datetime,
    definitions: dict[int, CompiledWorkflow],
) -> int:
    """One batch: claim up to ``limit`` due rows, then fire them; how many were claimed."""
    with session_factory() as session, session.begin():
        ids = claim_due(session, now=now, lease_until=lease_until, limit=limit)
    tracing.set_attribute("referral.claimed", len(ids))
    result.claimed += len(ids)
    if not ids:
        return 0
    try:
        with session_factory() as session, session.begin():
            batch = fire_batch(
                session, ids, now=now, lease_until=lease_until, definitions=definitions
            )
    except Exception:
        # Nothing of the batch was written: fire its timers one by one, so that only the
        # timer at fault fails.
        logger.warning("a batch of %d timers failed; firing them one by one", len(ids),
                       exc_info=True)
        for timer_id in ids:
            _fire_alone(session_factory, result, timer_id, now=now,
                        lease_until=lease_until, definitions=definitions)
        return len(ids)
    _add(result, batch)
    return len(ids)


def _add(result: TickResult, batch: Batch) -> None:
    result.skipped.extend(batch.skipped)
    for fired in batch.fired:
        if fired.kind == "cancelled":
            result.skipped.append(fired.timer_id)
        else:
            result.fired.append(fired)


def _fire_alone(
    session_factory: sessionmaker[Session],
    result: TickResult,
    timer_id: int,
    *,
    now: datetime,
    lease_until: datetime,
    definitions: dict[int, CompiledWorkflow],
) -> None:
    """Fire one claimed timer in a transaction of its own: a batch of one."""
    try:
        with session_factory() as session, session.begin():
            batch = fire_batch(session, [timer_id], now=now, lease_until=lease_until,
                               definitions=definitions)
    except Exception as exc:
        # Left ``firing``: its lease runs out and a later tick tries again. The error's
        # class only: its text may quote a value of the case.
        logger.exception("timer %s failed to fire", timer_id)
        result.errors.append(TickError(timer_id, type(exc).__name__))
        return
    _add(result, batch)


def claim_due(
    session: Session, *, now: datetime, lease_until: datetime, limit: int
) -> list[int]:
    """Mark up to ``limit`` due rows ``firing`` until ``lease_until`` (expired leases too),
    in one statement; their ids, soonest due first."""
    conn = session.connection()
    rows = conn.execute(
        statements(conn).claim, {"now": now, "lease_until": lease_until, "limit": limit}
    )
    return [r.id for r in sorted(rows, key=lambda r: (r.due_at, r.id))]


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
