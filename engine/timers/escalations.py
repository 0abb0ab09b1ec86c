"""Escalations: the reminder (step 0) and each ladder step, and their acknowledgement.

An acknowledgement records which agency acknowledged and stops the ladder: the later steps
of that timer on that case still waiting are marked ``stopped``, under the case's row lock
so a tick firing the next step at the same moment sees the change or wins before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from engine.cases.access import holders
from engine.cases.audit import plan_event
from engine.errors import AckRejected, NotFound
from engine.notify.outbox import Resolution
from engine.store import caserow, writers
from engine.store.caserow import CaseRow
from engine.store.fastpath import Cursor, Prepared, cursor_for
from engine.store.tables import Base


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


def plan_row(
    case_id: int, timer_id: int, name: str, step: int, resolution: Resolution, now: datetime
) -> dict[str, Any]:
    """The escalation row of a fired reminder (step 0) or ladder step."""
    return {"case_id": case_id, "timer_id": timer_id, "timer_name": name, "step": step,
            "roles": resolution.roles, "agency_ids": resolution.agency_ids, "created_at": now}


_escalations = Base.metadata.tables["escalations"]
_timers = Base.metadata.tables["timers"]
_agencies = Base.metadata.tables["agencies"]
_READ = Prepared(
    select(
        _escalations.c.id, _escalations.c.case_id, _escalations.c.timer_name,
        _escalations.c.step, _escalations.c.roles, _escalations.c.agency_ids,
        _escalations.c.acknowledged_at, _escalations.c.acknowledged_by,
    ).where(_escalations.c.id == bindparam("b_id"))
)
_CASE_OF = Prepared(
    select(_escalations.c.case_id).where(_escalations.c.id == bindparam("b_id"))
)
_ACK = Prepared(
    update(_escalations)
    .where(_escalations.c.id == bindparam("b_id"))
    .values(acknowledged_at=bindparam("b_at"), acknowledged_by=bindparam("b_by"))
)
_WAITING = Prepared(
    select(_timers.c.id, _timers.c.step)
    .where(
        _timers.c.case_id == bindparam("b_case"),
        _timers.c.name == bindparam("b_name"),
        _timers.c.step > bindparam("b_step"),
        _timers.c.status.in_([bindparam("b_pending"), bindparam("b_firing")]),
    )
    .order_by(_timers.c.step)
)
_NAME = Prepared(select(_agencies.c.name).where(_agencies.c.id == bindparam("b_id")))


@dataclass(frozen=True, slots=True)
class _Sent:
    """An escalation row as the acknowledgement reads it."""

    id: int
    case_id: int
    timer_name: str
    step: int
    roles: list[Any]
    agency_ids: list[Any]
    acknowledged_at: datetime | None
    acknowledged_by: int | None


def _locked(cur: Cursor, escalation_id: int) -> tuple[CaseRow, _Sent]:
    """The escalation and its case, the case's row lock taken first (the lock order
    everywhere: case, then its timers and escalations); NotFound when unknown."""
    found = _CASE_OF.first(cur, {"b_id": escalation_id})
    if found is None:
        raise NotFound(f"no escalation {escalation_id}", escalation_id=escalation_id)
    case = caserow.load(cur, found[0], lock=True)
    row = _READ.first(cur, {"b_id": escalation_id})
    assert row is not None  # escalations are never deleted
    return case, _Sent(*row)


def _check_ack(cur: Cursor, sent: _Sent, held: frozenset[str], agency_id: int) -> None:
    if not held:
        # Like every case read: an agency with no role on the case learns nothing of it.
        raise NotFound(f"no escalation {sent.id}", escalation_id=sent.id)
    if sent.acknowledged_at is not None:
        by = _NAME.first(cur, {"b_id": sent.acknowledged_by}) if sent.acknowledged_by else None
        raise AckRejected(
            f"escalation {sent.id} was already acknowledged"
            f" by {by[0] if by else 'an agency'} at {sent.acknowledged_at.isoformat()}",
            escalation_id=sent.id,
            acknowledged_by=sent.acknowledged_by,
            acknowledged_at=sent.acknowledged_at.isoformat(),
        )
    if agency_id not in (sent.agency_ids or []):
        raise AckRejected(
            f"agency {agency_id} was not notified of escalation {sent.id}"
            f" (case {sent.case_id}, timer {sent.timer_name}, step {sent.step}); only the"
            " agencies notified may acknowledge it",
            escalation_id=sent.id,
            agency_id=agency_id,
            notified=list(sent.agency_ids or []),
        )


def acknowledge(
    session: Session, escalation_id: int, *, agency_id: int, now: datetime
) -> AckResult:
    """Record ``agency_id``'s acknowledgement of an escalation and stop its ladder.

    Raises NotFound for an unknown id, AckRejected when it was already acknowledged or the
    agency was not among those notified.
    """
    session.flush()
    cur = cursor_for(session)
    case, sent = _locked(cur, escalation_id)
    held = holders(cur, case.id).roles_of(agency_id)
    _check_ack(cur, sent, held, agency_id)
    caserow.claim(cur, case)
    _ACK.execute(cur, {"b_id": sent.id, "b_at": now, "b_by": agency_id})
    waiting = _WAITING.rows(cur, {"b_case": sent.case_id, "b_name": sent.timer_name,
                                  "b_step": sent.step, "b_pending": "pending",
                                  "b_firing": "firing"})
    writers.set_timers(cur, [row[0] for row in waiting], "stopped")
    stopped = sorted(row[1] for row in waiting)
    acting = [r for r in (sent.roles or []) if r in held] or sorted(held)
    event = plan_event(
        case, kind="ack", at=now, role=acting[0], agency_id=agency_id,
        data={"escalation_id": sent.id, "timer": sent.timer_name, "step": sent.step,
              "stopped_steps": stopped},
    )
    writers.add_events(cur, [event])
    caserow.write(cur, [case])
    return AckResult(
        escalation_id=sent.id,
        case_id=sent.case_id,
        timer=sent.timer_name,
        step=sent.step,
        agency_id=agency_id,
        acknowledged_at=now,
        stopped_steps=tuple(stopped),
    )
