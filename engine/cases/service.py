"""The one write path for cases: open, fire, assign; and the reads: view, history.

Every function takes a session and ``now``, flushes but never commits: the edge (CLI
command, API handler, worker task) commits once, so a state change, its audit events and
its timer rows land together or not at all. Anything rejected raises before the first
write, and the edge rolls back.

Each write is the same few steps on a :class:`~engine.store.caserow.CaseRow`: read and
check (nothing written), claim the case, plan the rows (audit events, timer rows,
milestones) with each concept's planner, write them with the one writer per table, and
write the case row back. The tick fires ``fire:`` timers through :func:`apply_trigger`,
the same code as :func:`fire`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.cases import data as casedata
from engine.cases.access import Holders, check_actor, holders, reader_roles
from engine.cases.audit import plan_event
from engine.cases.milestones import newly_reached, plan_reached
from engine.cases.outcomes import constants
from engine.cases.reading import build_case_view, event_view
from engine.cases.views import CaseView, EventView, TimerView
from engine.definitions.model import COORDINATOR_ROLE, SYSTEM_ROLE, Definition
from engine.errors import Forbidden, InvalidInput
from engine.machine.compiled import CompiledWorkflow
from engine.machine.deploy import compiled_by_hash, compiled_by_id, version_id
from engine.notify import notices
from engine.store import caserow, writers
from engine.store.caserow import CaseRow
from engine.store.fastpath import Cursor, cursor_for
from engine.store.tables import Agency, CaseEvent
from engine.timers import schedule
from engine.timers.escalations import acknowledge
from engine.timers.schedule import TimerChanges

__all__ = ["acknowledge", "apply_trigger", "assign", "fire", "history", "open_case", "view"]


def _check_assignments(
    session: Session, defn: Definition, assignments: Mapping[str, int]
) -> dict[str, int]:
    checked: dict[str, int] = {}
    for role, agency_id in assignments.items():
        if role == SYSTEM_ROLE or role not in defn.roles:
            raise InvalidInput(
                f"workflow {defn.workflow} has no role {role!r} (roles: {', '.join(defn.roles)})",
                role=role,
            )
        if session.get(Agency, agency_id) is None:
            raise InvalidInput(f"no agency with id {agency_id} (for role {role!r})", role=role)
        checked[role] = agency_id
    return checked


def _opener_role(defn: Definition, held: Mapping[str, int], agency_id: int | None) -> str:
    if agency_id is None:
        return SYSTEM_ROLE
    mine = [role for role in defn.roles if held.get(role) == agency_id]
    if not mine:
        raise Forbidden("an agency may only open a case on which it takes a role")
    return mine[0]


def _new_case(
    row_id: int, compiled: CompiledWorkflow, config: tuple[str, ...], data: dict[str, Any],
    now: datetime,
) -> CaseRow:
    defn = compiled.definition
    return CaseRow(
        id=0, workflow_version_id=row_id, workflow=defn.workflow,
        workflow_version=defn.version, state=list(config), data=data, milestones={},
        revision=1, opened_at=now, closed_at=now if compiled.is_final(config) else None,
        last_event_hash="", last_event_seq=0, content_hash=defn.content_hash,
    )


def open_case(
    session: Session,
    *,
    workflow: str,
    version: int | None = None,
    assignments: Mapping[str, int],
    data: Mapping[str, Any] | None = None,
    now: datetime,
    agency_id: int | None = None,
) -> CaseView:
    """Open a case on a deployed version (the latest when ``version`` is None)."""
    row_id = version_id(session, workflow, version)
    compiled = compiled_by_id(session, row_id)
    defn = compiled.definition
    held = _check_assignments(session, defn, assignments)
    role = _opener_role(defn, held, agency_id)
    given = {k: v for k, v in casedata.validate(defn, data).items() if v is not None}
    config = compiled.initial_configuration()
    entered = compiled.active_states(config)
    initial = {**casedata.defaults(defn), **given, **constants(defn, None, entered)}
    case = _new_case(row_id, compiled, config, initial, now)
    cur = cursor_for(session)
    caserow.insert(cur, case)
    for assigned_role, assigned_agency in held.items():
        caserow.assign(cur, case.id, assigned_role, assigned_agency, new=True)
    planned = schedule.plan(
        case.id, defn, [], trigger=None, exited=(), entered=entered, active_after=entered,
        final=compiled.is_final(config), now=now,
    )
    timers = schedule.apply(cur, planned, [])
    reached = newly_reached(defn, {}, None, entered)
    told = notices.rows(cur, case, defn, notices.plan(
        defn, transition=None, entered=entered, closed=compiled.is_final(config),
    ), trigger=None, now=now)
    opened = plan_event(
        case, kind="opened", at=now, role=role, agency_id=agency_id, from_state=(),
        data={
            "changes": initial,
            "assignments": dict(sorted(held.items())),
            "timers_started": timers.started,
            "timers_cancelled": [],
            "milestones": reached,
            **({"notices": told.record} if told.record else {}),
        },
    )
    events = [opened, *plan_reached(case, reached, after=opened, role=role,
                                    agency_id=agency_id, trigger=None, now=now)]
    events += _warnings(case, told, now=now)
    writers.add_notifications(cur, told.rows)
    writers.add_events(cur, events)
    caserow.write(cur, [case])
    return _view(cur, case, compiled, agency_id, timers=timers.live)


def _view(
    cur: Cursor,
    case: CaseRow,
    compiled: CompiledWorkflow,
    agency_id: int | None,
    *,
    found: Holders | None = None,
    readers: frozenset[str] | None = None,
    timers: list[TimerView] | None = None,
    role: str | None = None,
) -> CaseView:
    """The reader's view of ``case``; what the caller already read is passed in."""
    if found is None:
        found = holders(cur, case.id)
    if readers is None:
        readers = reader_roles(found, case.id, agency_id, role)
    live = schedule.live_timers(cur, case.id) if timers is None else timers
    full = agency_id is None and role is None
    return build_case_view(case, compiled, readers, full=full, holders=found, timers=live)


@dataclass(frozen=True, slots=True)
class Applied:
    """What :func:`apply_trigger` did: the timers it changed, for the view and the tick."""

    timers: TimerChanges


def apply_trigger(
    cur: Cursor,
    case: CaseRow,
    compiled: CompiledWorkflow,
    trigger: str,
    *,
    role: str,
    agency_id: int | None,
    given: Mapping[str, Any],
    now: datetime,
) -> Applied:
    """Decide, claim and write one trigger on a loaded, access-checked case.

    TransitionRejected (from ``decide``) comes before anything is written.
    """
    defn = compiled.definition
    merged = {k: v for k, v in {**case.data, **given}.items() if v is not None}
    changes = {k: v for k, v in given.items() if case.data.get(k) != v}
    decision = compiled.decide(
        tuple(case.state), trigger, role, merged, frozenset(case.milestones), case_id=case.id
    )
    # Everything above only read; from here on the case is ours or we lose the race.
    caserow.claim(cur, case)
    after = tuple(decision.target)
    final = compiled.is_final(after)
    entered = set(decision.entered)
    live = schedule.live_timers(cur, case.id)
    planned = schedule.plan(
        case.id, defn, live, trigger=trigger, exited=decision.exited, entered=entered,
        active_after=compiled.active_states(after), final=final, now=now,
    )
    timers = schedule.apply(cur, planned, live)
    reached = newly_reached(defn, case.milestones, trigger, entered)
    fixed = constants(defn, decision.transition, entered)
    changes.update({k: v for k, v in fixed.items() if case.data.get(k) != v})
    merged.update(fixed)
    event_data: dict[str, Any] = {
        "changes": changes,
        "timers_started": timers.started,
        "timers_cancelled": timers.cancelled,
        "milestones": reached,
    }
    if decision.joined is not None:
        event_data["joined"] = decision.joined
    source = tuple(decision.source)
    case.state, case.data = list(after), merged
    told = notices.rows(cur, case, defn, notices.plan(
        defn, transition=decision.transition, entered=entered, closed=final,
    ), trigger=trigger, now=now)
    if told.record:
        event_data["notices"] = told.record
    moved = plan_event(
        case, kind="transition", at=now, role=role, agency_id=agency_id, trigger=trigger,
        from_state=source, to_state=after, data=event_data,
    )
    if final:
        case.closed_at = now
    events = [moved, *plan_reached(case, reached, after=moved, role=role,
                                   agency_id=agency_id, trigger=trigger, now=now)]
    events += _warnings(case, told, now=now)
    writers.add_notifications(cur, told.rows)
    writers.add_events(cur, events)
    caserow.write(cur, [case])
    return Applied(timers)


def _warnings(
    case: CaseRow, told: notices.Written, *, now: datetime
) -> list[dict[str, Any]]:
    """A warning event per notice addressed to a role nobody holds (never dropped
    silently: it went to the coordinator, or to nobody, and the history says so)."""
    return [plan_event(case, kind="warning", at=now, role=SYSTEM_ROLE, agency_id=None,
                       data=warning) for warning in told.warnings]


@dataclass(frozen=True, slots=True)
class _Acting:
    """A case loaded for an actor allowed on it: its row, holders and compiled workflow."""

    cur: Cursor
    case: CaseRow
    found: Holders
    compiled: CompiledWorkflow


def _acting(session: Session, case_id: int, *, agency_id: int | None, role: str) -> _Acting:
    """The case, once ``agency_id`` may act on it as ``role`` (NotFound for a stranger,
    Forbidden for a role it does not hold), read before anything is parsed or written."""
    # The caller's own pending ORM changes go first, as an autoflush would send them.
    session.flush()
    cur = cursor_for(session)
    case = caserow.load(cur, case_id)
    found = holders(cur, case.id)
    check_actor(found, case.id, agency_id, role)
    compiled = compiled_by_hash(session, case.workflow_version_id, case.content_hash)
    return _Acting(cur, case, found, compiled)


def fire(
    session: Session,
    case_id: int,
    trigger: str,
    *,
    role: str,
    agency_id: int | None,
    data: Mapping[str, Any] | None = None,
    expected_version: int | None = None,
    now: datetime,
) -> CaseView:
    """Fire ``trigger`` on a case as ``role``; ``agency_id`` None is the system/admin."""
    got = _acting(session, case_id, agency_id=agency_id, role=role)
    caserow.check_version(got.case, expected_version)
    given = casedata.validate(got.compiled.definition, data)
    applied = apply_trigger(
        got.cur, got.case, got.compiled, trigger, role=role, agency_id=agency_id, given=given,
        now=now,
    )
    return _view(got.cur, got.case, got.compiled, agency_id, found=got.found,
                 timers=applied.timers.live)


def assign(
    session: Session,
    case_id: int,
    role: str,
    agency_id: int,
    *,
    now: datetime,
    by_agency_id: int | None = None,
) -> CaseView:
    """Give ``role`` on the case to an agency; only the coordinator (or admin) may."""
    got = _acting(session, case_id, agency_id=by_agency_id, role=COORDINATOR_ROLE)
    cur, case, found, compiled = got.cur, got.case, got.found, got.compiled
    _check_assignments(session, compiled.definition, {role: agency_id})
    readers = reader_roles(found, case.id, by_agency_id)
    if case.closed_at is not None:
        raise InvalidInput(f"case {case.id} is closed", case_id=case.id)
    previous = found.assignments.get(role)
    if previous == agency_id:
        return _view(cur, case, compiled, by_agency_id, found=found, readers=readers)
    caserow.claim(cur, case)
    caserow.assign(cur, case.id, role, agency_id, new=previous is None)
    event = plan_event(
        case, kind="assigned", at=now,
        role=COORDINATOR_ROLE if by_agency_id is not None else SYSTEM_ROLE,
        agency_id=by_agency_id,
        data={"role": role, "agency_id": agency_id, "previous_agency_id": previous},
    )
    writers.add_events(cur, [event])
    caserow.write(cur, [case])
    return _view(cur, case, compiled, by_agency_id, readers=readers)


def definition_for_actor(
    session: Session, case_id: int, *, agency_id: int | None, role: str
) -> Definition:
    """The case's definition, for an actor allowed to act on it in ``role`` (NotFound or
    Forbidden otherwise, before any value of the case is read or parsed)."""
    return _acting(session, case_id, agency_id=agency_id, role=role).compiled.definition


def definition_of(session: Session, case_id: int) -> Definition:
    """The case's definition, for a caller already known to hold a role on the case."""
    cur = cursor_for(session)
    case = caserow.load(cur, case_id)
    return compiled_by_hash(session, case.workflow_version_id, case.content_hash).definition


def view(
    session: Session,
    case_id: int,
    *,
    agency_id: int | None,
    now: datetime,
    role: str | None = None,
) -> CaseView:
    """The case as the reader may see it (NotFound for an agency holding no role on it).

    ``role`` narrows the view to one role the agency holds (or, for the administrator,
    previews the case as that role would see it).
    """
    session.flush()
    cur = cursor_for(session)
    case = caserow.load(cur, case_id)
    compiled = compiled_by_hash(session, case.workflow_version_id, case.content_hash)
    return _view(cur, case, compiled, agency_id, role=role)


def history(
    session: Session, case_id: int, *, agency_id: int | None, role: str | None = None
) -> list[EventView]:
    """The case's audit events in order, restricted field values left out."""
    session.flush()
    cur = cursor_for(session)
    case = caserow.load(cur, case_id)
    readers = reader_roles(holders(cur, case.id), case.id, agency_id, role)
    defn = compiled_by_hash(session, case.workflow_version_id, case.content_hash).definition
    events = session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)
    )
    return [event_view(event, defn, readers) for event in events]
