"""Milestones: named achievements, reached once, recorded on the case and in its history."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.cases.audit import append_event
from engine.definitions.model import Definition
from engine.store.tables import Case


def newly_reached(
    defn: Definition, reached: Mapping[str, Any], trigger: str | None, entered: Collection[str]
) -> list[str]:
    """Milestones this step reaches for the first time, in declaration order: by its
    trigger (``on``) or by a state it enters (``on_enter``)."""
    names = []
    for milestone in defn.milestones.values():
        if milestone.name in reached:
            continue
        by_trigger = trigger is not None and trigger in milestone.on
        by_entry = milestone.on_enter is not None and milestone.on_enter in entered
        if by_trigger or by_entry:
            names.append(milestone.name)
    return names


def record(
    session: Session,
    case: Case,
    names: list[str],
    *,
    role: str,
    agency_id: int | None,
    trigger: str | None,
    now: datetime,
) -> None:
    """Store each milestone on the case with when and who, and append its audit event.

    The caller holds the case for writing and appends the causing event first.
    """
    if not names:
        return
    case.milestones = stamped(case.milestones, names, role=role, agency_id=agency_id, now=now)
    for name in names:
        append_event(
            session,
            case,
            kind="milestone",
            at=now,
            role=role,
            agency_id=agency_id,
            trigger=trigger,
            from_state=case.state,
            to_state=case.state,
            data={"milestone": name},
        )


def stamped(
    reached: Mapping[str, Any],
    names: list[str],
    *,
    role: str,
    agency_id: int | None,
    now: datetime,
) -> dict[str, Any]:
    """The case's milestones with ``names`` added, each with when and who."""
    milestones = dict(reached)
    for name in names:
        milestones[name] = {"at": now.isoformat(), "agency_id": agency_id, "role": role}
    return milestones
