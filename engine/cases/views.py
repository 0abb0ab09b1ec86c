"""What readers get back: frozen, JSON-ready views of a case and of its history.

Views are built already filtered for the reader; ``withheld`` names the fields left out
(never their values), so a reader knows something is there without seeing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True, slots=True)
class AllowedView:
    """A trigger the reader could fire now, where it leads, and by which roles."""

    trigger: str
    dest: str
    roles: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"trigger": self.trigger, "dest": self.dest, "roles": list(self.roles)}


@dataclass(frozen=True, slots=True)
class TimerView:
    """A running timer of the case (step 0 the timer itself, k >= 1 an escalation step)."""

    id: int
    name: str
    state: str
    step: int
    due_at: datetime
    status: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "step": self.step,
            "due_at": self.due_at.isoformat(),
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class CaseView:
    id: int
    workflow: str
    workflow_version: int
    # The optimistic-concurrency counter: pass it back as ``expected_version``.
    version: int
    state: tuple[str, ...]
    closed: bool
    opened_at: datetime
    closed_at: datetime | None
    data: Mapping[str, Any]
    withheld: tuple[str, ...]
    # {name: {"at": iso, "agency_id": int | None, "role": str}}
    milestones: Mapping[str, Mapping[str, Any]]
    # {role: agency_id}
    assignments: Mapping[str, int]
    # The roles this view was filtered for (``("system",)`` for the administrator).
    roles: tuple[str, ...]
    allowed: tuple[AllowedView, ...] = ()
    timers: tuple[TimerView, ...] = ()
    agency_names: Mapping[int, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workflow": self.workflow,
            "workflow_version": self.workflow_version,
            "version": self.version,
            "state": list(self.state),
            "closed": self.closed,
            "opened_at": self.opened_at.isoformat(),
            "closed_at": _iso(self.closed_at),
            "data": dict(self.data),
            "withheld": list(self.withheld),
            "milestones": {name: dict(info) for name, info in self.milestones.items()},
            "assignments": {
                role: {"agency_id": agency, "agency": self.agency_names.get(agency)}
                for role, agency in self.assignments.items()
            },
            "roles": list(self.roles),
            "allowed": [a.as_dict() for a in self.allowed],
            "timers": [t.as_dict() for t in self.timers],
        }


@dataclass(frozen=True, slots=True)
class EventView:
    id: int
    case_id: int
    seq: int
    at: datetime
    kind: str
    agency_id: int | None
    role: str
    trigger: str | None
    from_state: tuple[str, ...]
    to_state: tuple[str, ...]
    data: Mapping[str, Any]
    withheld: tuple[str, ...] = ()
    hash: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "case_id": self.case_id,
            "seq": self.seq,
            "at": self.at.isoformat(),
            "kind": self.kind,
            "agency_id": self.agency_id,
            "role": self.role,
            "trigger": self.trigger,
            "from_state": list(self.from_state),
            "to_state": list(self.to_state),
            "data": dict(self.data),
            "withheld": list(self.withheld),
            "hash": self.hash,
        }
