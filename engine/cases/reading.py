"""Building the reader's views of a case and its history, filtered by the reader's roles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from engine.cases.access import Holders, filter_event_data, filter_fields
from engine.cases.views import (
    AllowedView,
    AssignmentView,
    CaseView,
    EventView,
    MilestoneView,
    TimerView,
)
from engine.definitions.model import Definition
from engine.machine.compiled import CompiledWorkflow
from engine.store.tables import CaseEvent


class CaseLike(Protocol):
    """What a view reads of a case: an ORM ``Case`` or a ``casestore.CaseRow``."""

    @property
    def id(self) -> int: ...
    @property
    def workflow(self) -> str: ...
    @property
    def workflow_version(self) -> int: ...
    @property
    def revision(self) -> int: ...
    @property
    def state(self) -> list[Any]: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def milestones(self) -> dict[str, Any]: ...
    @property
    def opened_at(self) -> datetime: ...
    @property
    def closed_at(self) -> datetime | None: ...


class TimerLike(Protocol):
    """What a view reads of a live timer: a ``TimerView`` itself, or the scheduler's."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def step(self) -> int: ...
    @property
    def due_at(self) -> datetime: ...
    @property
    def status(self) -> str: ...


def event_view(event: CaseEvent, defn: Definition, readers: frozenset[str]) -> EventView:
    data, withheld = filter_event_data(defn, event.data, readers)
    return EventView(
        id=event.id,
        case_id=event.case_id,
        seq=event.seq,
        at=event.at,
        kind=event.kind,
        agency_id=event.agency_id,
        role=event.role,
        trigger=event.trigger,
        from_state=tuple(event.from_state),
        to_state=tuple(event.to_state),
        data=data,
        withheld=withheld,
        hash=event.hash,
    )


def build_case_view(
    case: CaseLike,
    compiled: CompiledWorkflow,
    readers: frozenset[str],
    *,
    full: bool,
    holders: Holders,
    timers: Sequence[TimerLike],
) -> CaseView:
    """The case as ``readers`` see it; ``full`` lists triggers allowed for any role.

    ``holders`` and ``timers`` (live, soonest first) are what the caller already read.
    """
    defn = compiled.definition
    config = tuple(case.state)
    shown, withheld = filter_fields(defn, case.data, readers)
    allowed: tuple[AllowedView, ...] = ()
    if case.closed_at is None:
        roles = None if full else readers
        allowed = tuple(
            AllowedView(a.trigger, a.dest, tuple(sorted(a.roles)))
            for a in compiled.allowed(config, case.data, frozenset(case.milestones), roles)
        )
    return CaseView(
        id=case.id,
        workflow=case.workflow,
        workflow_version=case.workflow_version,
        version=case.revision,
        state=config,
        closed=case.closed_at is not None,
        opened_at=case.opened_at,
        closed_at=case.closed_at,
        data=shown,
        withheld=withheld,
        milestones=_milestones(case.milestones),
        assignments={
            role: AssignmentView(agency, holders.names.get(agency))
            for role, agency in holders.assignments.items()
        },
        roles=tuple(sorted(readers)),
        allowed=allowed,
        timers=tuple(_timer_view(t) for t in timers),
    )


def _milestones(reached: Mapping[str, Any]) -> dict[str, MilestoneView]:
    # The case row keeps them as JSON, the time as ISO text.
    return {
        name: MilestoneView(datetime.fromisoformat(info["at"]), info["agency_id"], info["role"])
        for name, info in reached.items()
    }


def _timer_view(timer: TimerLike) -> TimerView:
    if isinstance(timer, TimerView):
        return timer
    return TimerView(timer.id, timer.name, timer.state, timer.step, timer.due_at, timer.status)
