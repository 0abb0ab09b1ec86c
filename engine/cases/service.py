"""The one write path for cases: open, fire, assign; and the reads: view, history.

Every function takes a session and ``now``, flushes but never commits: the edge (CLI
command, API handler, worker task) commits once, so a state change, its audit events and
its timer rows land together or not at all. Anything rejected raises before the first
write, and the edge rolls back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.cases import data as casedata
from engine.cases import milestones
from engine.cases.access import (
    check_actor,
    check_actor_from,
    holders,
    reader_roles,
    reader_roles_from,
)
from engine.cases.audit import append_event, insert_event
from engine.cases.reading import CaseLike, build_case_view, event_view
from engine.cases.views import CaseView, EventView
from engine.definitions.model import COORDINATOR_ROLE, SYSTEM_ROLE, Definition
from engine.errors import Forbidden, InvalidInput
from engine.machine.compiled import CompiledWorkflow
from engine.machine.deploy import compiled_by_hash, compiled_by_id, compiled_for_case, version_id
from engine.store.caserow import (
    check_version,
    claim,
    claim_row,
    load_case,
    load_row,
    sync_identity,
    write_row,
)
from engine.store.fastpath import Cursor
from engine.store.tables import Agency, Case, CaseAssignment, CaseEvent
from engine.timers import schedule
from engine.timers.escalations import acknowledge
from engine.timers.schedule import LiveTimer

__all__ = ["acknowledge", "assign", "fire", "history", "open_case", "view"]


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
    initial = {**casedata.defaults(defn), **given}
    config = compiled.initial_configuration()
    case = Case(
        workflow_version_id=row_id,
        workflow=defn.workflow,
        workflow_version=defn.version,
        state=list(config),
        data=initial,
        milestones={},
        revision=1,
        opened_at=now,
        closed_at=now if compiled.is_final(config) else None,
        last_event_hash="",
        last_event_seq=0,
    )
    session.add(case)
    session.flush()
    for assigned_role, assigned_agency in held.items():
        session.add(CaseAssignment(case_id=case.id, role=assigned_role, agency_id=assigned_agency))
    entered = compiled.active_states(config)
    timers = schedule.on_transition(
        Cursor(session.connection()),
        case.id,
        defn,
        trigger=None,
        exited=(),
        entered=entered,
        active_after=entered,
        final=compiled.is_final(config),
        now=now,
        live=[],
    )
    reached = milestones.newly_reached(defn, {}, None, entered)
    append_event(
        session,
        case,
        kind="opened",
        at=now,
        role=role,
        agency_id=agency_id,
        to_state=config,
        data={
            "changes": initial,
            "assignments": dict(sorted(held.items())),
            "timers_started": timers.started,
            "timers_cancelled": [],
            "milestones": reached,
        },
    )
    milestones.record(session, case, reached, role=role, agency_id=agency_id, trigger=None, now=now)
    return _view_of(session, case, compiled, agency_id, full=agency_id is None, timers=timers.live)


def _view_of(
    session: Session,
    case: CaseLike,
    compiled: CompiledWorkflow,
    agency_id: int | None,
    *,
    full: bool,
    readers: frozenset[str] | None = None,
    timers: list[LiveTimer] | None = None,
) -> CaseView:
    """The reader's view, read after the session's pending writes went out; ``readers``
    when the caller settled them before writing, else the agency's roles now."""
    session.flush()
    cur = Cursor(session.connection())
    found = holders(cur, case.id)
    if readers is None:
        readers = reader_roles_from(found, case.id, agency_id)
    live = schedule.live_timers(cur, case.id) if timers is None else timers
    return build_case_view(case, compiled, readers, full=full, holders=found, timers=live)


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
    """Fire ``trigger`` on a case as ``role``; ``agency_id`` None is the system/admin.

    The hot path: Core statements built once (``casestore``, ``access``, ``schedule``,
    ``audit``), each read done once and reused for the returned view.
    """
    # The caller's own pending ORM changes go first, as an autoflush would send them.
    session.flush()
    cur = Cursor(session.connection())
    case = load_row(cur, case_id)
    found = holders(cur, case.id)
    check_actor_from(found, case.id, agency_id, role)
    check_version(case, expected_version)
    compiled = compiled_by_hash(session, case.workflow_version_id, case.content_hash)
    defn = compiled.definition
    given = casedata.validate(defn, data)
    merged = {k: v for k, v in {**case.data, **given}.items() if v is not None}
    changes = {k: v for k, v in given.items() if case.data.get(k) != v}
    decision = compiled.decide(
        tuple(case.state), trigger, role, merged, frozenset(case.milestones), case_id=case.id
    )
    # Everything above only read; from here on the case is ours or we lose the race.
    claim_row(cur, case)
    before, after = tuple(decision.source), tuple(decision.target)
    final = compiled.is_final(after)
    entered = set(decision.entered)
    timers = schedule.on_transition(
        cur,
        case.id,
        defn,
        trigger=trigger,
        exited=decision.exited,
        entered=entered,
        active_after=compiled.active_states(after),
        final=final,
        now=now,
    )
    reached = milestones.newly_reached(defn, case.milestones, trigger, entered)
    case.state = list(after)
    case.data = merged
    if final:
        case.closed_at = now
    event_data: dict[str, Any] = {
        "changes": changes,
        "timers_started": timers.started,
        "timers_cancelled": timers.cancelled,
        "milestones": reached,
    }
    if decision.joined is not None:
        event_data["joined"] = decision.joined
    insert_event(
        cur,
        case,
        kind="transition",
        at=now,
        role=role,
        agency_id=agency_id,
        trigger=trigger,
        from_state=before,
        to_state=after,
        data=event_data,
    )
    if reached:
        case.milestones = milestones.stamped(
            case.milestones, reached, role=role, agency_id=agency_id, now=now
        )
        for name in reached:
            insert_event(
                cur,
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
    write_row(cur, case)
    sync_identity(session, case)
    readers = reader_roles_from(found, case.id, agency_id)
    return build_case_view(
        case, compiled, readers, full=agency_id is None, holders=found, timers=timers.live
    )


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
    case = load_case(session, case_id)
    if by_agency_id is not None:
        check_actor(session, case.id, by_agency_id, COORDINATOR_ROLE)
    compiled = compiled_for_case(session, case)
    defn = compiled.definition
    _check_assignments(session, defn, {role: agency_id})
    readers = reader_roles(session, case.id, by_agency_id)
    if case.closed_at is not None:
        raise InvalidInput(f"case {case.id} is closed", case_id=case.id)
    current = session.get(CaseAssignment, (case.id, role))
    if current is not None and current.agency_id == agency_id:
        return _view_of(
            session, case, compiled, by_agency_id, full=by_agency_id is None, readers=readers
        )
    claim(session, case)
    previous = current.agency_id if current is not None else None
    if current is None:
        session.add(CaseAssignment(case_id=case.id, role=role, agency_id=agency_id))
    else:
        current.agency_id = agency_id
    append_event(
        session,
        case,
        kind="assigned",
        at=now,
        role=COORDINATOR_ROLE if by_agency_id is not None else SYSTEM_ROLE,
        agency_id=by_agency_id,
        from_state=case.state,
        to_state=case.state,
        data={"role": role, "agency_id": agency_id, "previous_agency_id": previous},
    )
    return _view_of(
        session, case, compiled, by_agency_id, full=by_agency_id is None, readers=readers
    )


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
    cur = Cursor(session.connection())
    case = load_row(cur, case_id)
    found = holders(cur, case.id)
    readers = reader_roles_from(found, case.id, agency_id, role)
    compiled = compiled_by_hash(session, case.workflow_version_id, case.content_hash)
    return build_case_view(
        case,
        compiled,
        readers,
        full=agency_id is None and role is None,
        holders=found,
        timers=schedule.live_timers(cur, case.id),
    )


def history(
    session: Session, case_id: int, *, agency_id: int | None, role: str | None = None
) -> list[EventView]:
    """The case's audit events in order, restricted field values left out."""
    session.flush()
    cur = Cursor(session.connection())
    case = load_row(cur, case_id)
    readers = reader_roles_from(holders(cur, case.id), case.id, agency_id, role)
    defn = compiled_by_hash(session, case.workflow_version_id, case.content_hash).definition
    events = session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)
    )
    return [event_view(event, defn, readers) for event in events]
