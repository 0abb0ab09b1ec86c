"""Escalations: the reminder (step 0) and each ladder step, and their acknowledgement.

An acknowledgement records which agency acknowledged and stops the ladder: the later steps
of that timer on that case still waiting are marked ``stopped``, under the case's row lock
so a tick firing the next step at the same moment sees the change or wins before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import Field
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.cases.audit import append_event
from engine.errors import AckRejected, NotFound
from engine.notify.outbox import Resolution
from engine.store.caserow import claim as claim_case
from engine.store.tables import Agency, Case, CaseAssignment, Escalation, Timer


@dataclass(frozen=True, slots=True)
class AckResult:
    """An acknowledged reminder or escalation step, and the ladder steps it stopped."""

    escalation_id: int
    case_id: int
    timer: str
    step: Annotated[int, Field(description="0: the reminder; k >= 1: the k-th ladder step.")]
    agency_id: Annotated[int, Field(description="The agency that acknowledged.")]
    acknowledged_at: datetime
    stopped_steps: Annotated[
        tuple[int, ...],
        Field(description="Ladder steps that will no longer fire because of this."),
    ]


def record(
    session: Session, case: Case, timer: Timer, resolution: Resolution, *, now: datetime
) -> Escalation:
    """The escalation row for a fired reminder or ladder step (flushed, so it has an id)."""
    row = Escalation(
        case_id=case.id,
        timer_id=timer.id,
        timer_name=timer.name,
        step=timer.step,
        roles=resolution.roles,
        agency_ids=resolution.agency_ids,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def acknowledge(
    session: Session, escalation_id: int, *, agency_id: int, now: datetime
) -> AckResult:
    """Record ``agency_id``'s acknowledgement of an escalation and stop its ladder.

    Raises NotFound for an unknown id, AckRejected when it was already acknowledged or the
    agency was not among those notified.
    """
    found = session.get(Escalation, escalation_id)
    if found is None:
        raise NotFound(f"no escalation {escalation_id}", escalation_id=escalation_id)
    # Lock order everywhere: case, then its timers and escalations.
    case = session.get(Case, found.case_id, with_for_update=True, populate_existing=True)
    esc = session.get(Escalation, escalation_id, with_for_update=True, populate_existing=True)
    if case is None or esc is None:
        raise NotFound(f"no escalation {escalation_id}", escalation_id=escalation_id)
    holds_role = session.scalar(
        select(CaseAssignment.role)
        .where(CaseAssignment.case_id == case.id, CaseAssignment.agency_id == agency_id)
        .limit(1)
    )
    if holds_role is None:
        # Like every case read: an agency with no role on the case learns nothing of it.
        raise NotFound(f"no escalation {escalation_id}", escalation_id=escalation_id)
    if esc.acknowledged_at is not None:
        by = session.get(Agency, esc.acknowledged_by) if esc.acknowledged_by else None
        raise AckRejected(
            f"escalation {escalation_id} was already acknowledged"
            f" by {by.name if by else 'an agency'} at {esc.acknowledged_at.isoformat()}",
            escalation_id=escalation_id,
            acknowledged_by=esc.acknowledged_by,
            acknowledged_at=esc.acknowledged_at.isoformat(),
        )
    if agency_id not in (esc.agency_ids or []):
        raise AckRejected(
            f"agency {agency_id} was not notified of escalation {escalation_id}"
            f" (case {esc.case_id}, timer {esc.timer_name}, step {esc.step}); only the"
            " agencies notified may acknowledge it",
            escalation_id=escalation_id,
            agency_id=agency_id,
            notified=list(esc.agency_ids or []),
        )
    claim_case(session, case)
    esc.acknowledged_at = now
    esc.acknowledged_by = agency_id
    waiting = list(
        session.scalars(
            select(Timer.step).where(
                Timer.case_id == esc.case_id,
                Timer.name == esc.timer_name,
                Timer.step > esc.step,
                Timer.status.in_(("pending", "firing")),
            )
        )
    )
    if waiting:
        session.execute(
            update(Timer)
            .where(
                Timer.case_id == esc.case_id,
                Timer.name == esc.timer_name,
                Timer.step > esc.step,
                Timer.status.in_(("pending", "firing")),
            )
            .values(status="stopped", claimed_until=None)
            .execution_options(synchronize_session=False)
        )
    roles = sorted(
        session.scalars(
            select(CaseAssignment.role).where(
                CaseAssignment.case_id == esc.case_id, CaseAssignment.agency_id == agency_id
            )
        )
    )
    acting = [r for r in (esc.roles or []) if r in roles] or roles or ["agency"]
    append_event(
        session,
        case,
        kind="ack",
        at=now,
        role=acting[0],
        agency_id=agency_id,
        from_state=tuple(case.state),
        to_state=tuple(case.state),
        data={
            "escalation_id": esc.id,
            "timer": esc.timer_name,
            "step": esc.step,
            "stopped_steps": sorted(waiting),
        },
    )
    session.flush()
    return AckResult(
        escalation_id=esc.id,
        case_id=esc.case_id,
        timer=esc.timer_name,
        step=esc.step,
        agency_id=agency_id,
        acknowledged_at=now,
        stopped_steps=tuple(sorted(waiting)),
    )
