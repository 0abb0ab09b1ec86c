"""Milestones: named achievements, reached once, recorded on the case and in its history."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from engine.cases.audit import plan_event
from engine.definitions.model import Definition
from engine.store.caserow import CaseRow


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


def plan_reached(
    case: CaseRow,
    names: list[str],
    *,
    after: Mapping[str, Any],
    role: str,
    agency_id: int | None,
    trigger: str | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """Stamp each milestone on the case (when and who) and plan its audit event.

    Takes the causing event's row as proof it was planned first: a milestone event
    always follows the event that reached it.
    """
    if not names:
        return []
    assert after["seq"] == case.last_event_seq, "the causing event comes first"
    milestones = dict(case.milestones)
    for name in names:
        milestones[name] = {"at": now.isoformat(), "agency_id": agency_id, "role": role}
    case.milestones = milestones
    return [
        plan_event(case, kind="milestone", at=now, role=role, agency_id=agency_id,
                   trigger=trigger, data={"milestone": name})
        for name in names
    ]
