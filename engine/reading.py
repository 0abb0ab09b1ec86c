"""Building the reader's views of a case and its history, filtered by the reader's roles."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import schedule
from engine.access import assignments as case_assignments
from engine.access import filter_event_data, filter_fields
from engine.definitions.model import Definition
from engine.machine import CompiledWorkflow
from engine.models import Agency, Case, CaseEvent
from engine.views import AllowedView, CaseView, EventView, TimerView


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
    session: Session,
    case: Case,
    compiled: CompiledWorkflow,
    readers: frozenset[str],
    *,
    full: bool,
) -> CaseView:
    """The case as ``readers`` see it; ``full`` lists triggers allowed for any role."""
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
    held = case_assignments(session, case.id)
    rows = session.execute(select(Agency.id, Agency.name).where(Agency.id.in_(set(held.values()))))
    names = {agency_id: name for agency_id, name in rows}
    timers = tuple(
        TimerView(t.id, t.name, t.state, t.step, t.due_at, t.status)
        for t in schedule.live_timers(session, case.id)
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
        milestones={name: dict(info) for name, info in case.milestones.items()},
        assignments=held,
        roles=tuple(sorted(readers)),
        allowed=allowed,
        timers=timers,
        agency_names=names,
    )
