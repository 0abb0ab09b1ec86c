"""What readers get back: frozen views of a case and of its history.

Views are built already filtered for the reader; ``withheld`` names the fields left out
(never their values), so a reader knows something is there without seeing it.

Each view's fields are its published JSON shape: the API returns these dataclasses as its
response models and the CLI prints them through ``engine.views_json.to_jsonable``, so the
descriptions here are the OpenAPI schema's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field


@dataclass(frozen=True, slots=True)
class AllowedView:
    """A trigger the reader could fire now, where it leads, and by which roles."""

    trigger: str
    dest: str
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TimerView:
    """A running timer of the case (step 0 the timer itself, k >= 1 an escalation step)."""

    id: int
    name: str
    state: str
    step: int
    due_at: datetime
    status: str


@dataclass(frozen=True, slots=True)
class AssignmentView:
    """The agency holding a role on the case."""

    agency_id: int
    agency: Annotated[str | None, Field(description="The agency's name.")]


@dataclass(frozen=True, slots=True)
class MilestoneView:
    """When a milestone was reached, and by whom."""

    at: datetime
    agency_id: Annotated[int | None, Field(description="null: reached by the system or the admin.")]
    role: str


@dataclass(frozen=True, slots=True)
class CaseView:
    """A case as the reader's roles on it may see it."""

    id: int
    workflow: str
    workflow_version: int
    version: Annotated[
        int, Field(description="Optimistic-concurrency counter (`expected_version`).")
    ]
    state: Annotated[tuple[str, ...], Field(description="The active leaf states.")]
    closed: bool
    opened_at: datetime
    closed_at: datetime | None
    data: Annotated[Mapping[str, Any], Field(description="The field values visible to the caller.")]
    withheld: Annotated[
        tuple[str, ...], Field(description="Fields present but not visible to the caller.")
    ]
    milestones: Annotated[Mapping[str, MilestoneView], Field(description="Reached, by name.")]
    assignments: Annotated[
        Mapping[str, AssignmentView], Field(description="Who holds each role, by role.")
    ]
    roles: Annotated[
        tuple[str, ...],
        Field(description="The roles this view was filtered for (`system` for the admin)."),
    ]
    allowed: Annotated[tuple[AllowedView, ...], Field(description="What may be fired now.")]
    timers: Annotated[tuple[TimerView, ...], Field(description="Live timers, soonest first.")]


@dataclass(frozen=True, slots=True)
class EventView:
    """One event of the case's audit history, restricted field values left out."""

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
    withheld: Annotated[
        tuple[str, ...], Field(description="Fields present but not visible to the caller.")
    ]
    hash: Annotated[
        str, Field(description="SHA-256 of the event and the previous event's hash (hex).")
    ]
