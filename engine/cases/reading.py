"""Building the reader's views of a case and its history, filtered by the reader's roles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

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
from engine.store.caserow import CaseRow
from engine.store.tables import CaseEvent

# Events about the case's subject (recorded, linked to an earlier case, ...). A reader
# the definition keeps the subject from sees them as ``restricted`` with no data: even
# the kind would tell a referrer that an earlier contact with the person exists.
SUBJECT_EVENT_PREFIX = "subject_"
RESTRICTED_KIND = "restricted"


def event_view(event: CaseEvent, defn: Definition, readers: frozenset[str]) -> EventView:
    kind = event.kind
    data: dict[str, Any]
    withheld: tuple[str, ...]
    if kind.startswith(SUBJECT_EVENT_PREFIX) and not defn.subjects.sees(readers):
        kind, data, withheld = RESTRICTED_KIND, {}, ("subject",)
    else:
        data, withheld = filter_event_data(defn, event.data, readers)
    return EventView(
        id=event.id,
        case_id=event.case_id,
        seq=event.seq,
        at=event.at,
        kind=kind,
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
    case: CaseRow,
    compiled: CompiledWorkflow,
    readers: frozenset[str],
    *,
    full: bool,
    holders: Holders,
    timers: Sequence[TimerView],
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
        timers=tuple(timers),
    )


def _milestones(reached: Mapping[str, Any]) -> dict[str, MilestoneView]:
    # The case row keeps them as JSON, the time as ISO text.
    return {
        name: MilestoneView(datetime.fromisoformat(info["at"]), info["agency_id"], info["role"])
        for name, info in reached.items()
    }
