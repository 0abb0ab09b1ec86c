"""An agency's work queue, read from the transactional tables (never a lagging index).

Three kinds of work, merged oldest first:

- ``state``: an open case sits in a state whose ``owner`` role the agency holds on it,
  since the case entered that state;
- ``overdue_timer``: a deadline of a state the case is still in has passed, and the agency
  owns the state or is reminded by the timer;
- ``escalation``: a reminder or escalation step sent to the agency that nobody has
  acknowledged while the case is still in the timer's state.

The administrator (``agency_id`` None) sees the work of every role on every open case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, computed_field, with_config
from sqlalchemy import Select, Subquery, func, select
from sqlalchemy.orm import Session

from engine.definitions.model import Definition
from engine.machine.deploy import compiled_for_case
from engine.store.tables import Case, CaseAssignment, CaseEvent, Escalation, Timer
from engine.timers.schedule import state_active

ItemKind = Literal["state", "overdue_timer", "escalation"]
# The roles the caller holds on a case; None: the administrator, who holds them all.
HeldRoles = Callable[[int], set[str] | None]
MAX_LIMIT = 500
_KIND_ORDER = {"escalation": 0, "overdue_timer": 1, "state": 2}
# Step 0 is the timer itself; rows in these statuses still stand for its deadline.
_DEADLINE_STATUSES = ("pending", "firing", "fired")


# Fields left None are still always written: the schema marks them required, not optional.
@with_config(ConfigDict(json_schema_serialization_defaults_required=True))
@dataclass(frozen=True, slots=True)
class QueueItem:
    """One piece of the caller's work."""

    kind: ItemKind
    case_id: int
    workflow: str
    workflow_version: int
    state: str
    role: Annotated[str, Field(description="The role that makes this the caller's work.")]
    since: Annotated[
        datetime,
        Field(description="When the case entered the state, the deadline passed, or the "
              "escalation was sent."),
    ]
    timer: Annotated[
        str | None, Field(description="The timer (overdue timers and escalations).")
    ] = None
    step: Annotated[
        int | None, Field(description="0: the timer itself; k >= 1: its k-th ladder step.")
    ] = None
    escalation_id: Annotated[
        int | None, Field(description="The escalation to acknowledge (escalations only).")
    ] = None

    def sort_key(self) -> tuple[Any, ...]:
        return (self.since, self.case_id, _KIND_ORDER[self.kind], self.state,
                self.escalation_id or 0)


@dataclass(frozen=True, slots=True)
class QueuePage:
    """A page of the caller's work queue, oldest first."""

    items: tuple[QueueItem, ...]
    total: Annotated[int, Field(description="Items in the whole queue.")]
    limit: int
    offset: int

    # Published with the page, yet derived: it cannot disagree with the fields above.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def next_offset(self) -> int | None:
        """The `offset` of the next page; null on the last page."""
        following = self.offset + len(self.items)
        return following if following < self.total else None


def _pick_role(candidates: Sequence[str], held: set[str] | None) -> str | None:
    """The first candidate role the caller holds (any, for the administrator)."""
    for role in candidates:
        if held is None or role in held:
            return role
    return None


def _entered_at(session: Session, case_ids: Select[Any]) -> dict[tuple[int, str], datetime]:
    """When each case last entered each leaf state, from its audit history."""
    entered: dict[tuple[int, str], datetime] = {}
    rows = session.execute(
        select(CaseEvent.case_id, CaseEvent.at, CaseEvent.from_state, CaseEvent.to_state)
        # Only these kinds move a case between states; the rest keep from == to.
        .where(CaseEvent.case_id.in_(case_ids), CaseEvent.kind.in_(("opened", "transition")))
        .order_by(CaseEvent.case_id, CaseEvent.seq)
    )
    for case_id, at, before, after in rows:
        for leaf in set(after or ()) - set(before or ()):
            entered[(case_id, leaf)] = at
    return entered


def _newest_runs(case_ids: Select[Any]) -> Subquery:
    """The current run of each timer: its newest step-0 row, per (case, timer name).

    Restarting a timer, or entering its state again, starts a new step-0 row and leaves
    the old run's rows as they were (often "fired"); ladder steps of a run come after it.
    """
    return (
        select(Timer.case_id, Timer.name, func.max(Timer.id).label("run_id"))
        .where(Timer.case_id.in_(case_ids), Timer.step == 0)
        .group_by(Timer.case_id, Timer.name)
        .subquery()
    )


def work_queue(
    session: Session,
    *,
    agency_id: int | None,
    now: datetime,
    limit: int = 50,
    offset: int = 0,
) -> QueuePage:
    """The caller's work, oldest first; ``limit`` (1..500) items from ``offset``."""
    limit = max(1, min(limit, MAX_LIMIT))
    offset = max(0, offset)

    roles: dict[int, set[str]] | None = None
    case_ids: Select[Any] = select(Case.id).where(Case.closed_at.is_(None))
    if agency_id is not None:
        roles = {}
        for case_id, role in session.execute(
            select(CaseAssignment.case_id, CaseAssignment.role)
            .join(Case, Case.id == CaseAssignment.case_id)
            .where(CaseAssignment.agency_id == agency_id, Case.closed_at.is_(None))
        ):
            roles.setdefault(case_id, set()).add(role)
        case_ids = select(CaseAssignment.case_id).where(CaseAssignment.agency_id == agency_id)

    cases = {
        case.id: case
        for case in session.scalars(
            select(Case).where(Case.id.in_(case_ids), Case.closed_at.is_(None))
        )
    }
    definitions: dict[int, Definition] = {}
    for case in cases.values():
        if case.workflow_version_id not in definitions:
            definitions[case.workflow_version_id] = compiled_for_case(session, case).definition

    def held(case_id: int) -> set[str] | None:
        return None if roles is None else roles.get(case_id, set())

    items: list[QueueItem] = []
    items += _owned_states(session, cases, definitions, held, case_ids)
    items += _overdue_timers(session, cases, definitions, held, case_ids, now)
    items += _open_escalations(session, cases, held, case_ids, agency_id)
    items.sort(key=QueueItem.sort_key)
    return QueuePage(
        items=tuple(items[offset : offset + limit]), total=len(items), limit=limit,
        offset=offset,
    )


def _owned_states(
    session: Session,
    cases: dict[int, Case],
    definitions: dict[int, Definition],
    held: HeldRoles,
    case_ids: Select[Any],
) -> list[QueueItem]:
    entered = _entered_at(session, case_ids)
    items: list[QueueItem] = []
    for case in cases.values():
        defn = definitions[case.workflow_version_id]
        for leaf in case.state:
            spec = defn.states.get(leaf)
            if spec is None or spec.owner is None:
                continue
            role = _pick_role([spec.owner], held(case.id))
            if role is None:
                continue
            items.append(QueueItem(
                kind="state", case_id=case.id, workflow=case.workflow,
                workflow_version=case.workflow_version, state=leaf, role=role,
                since=entered.get((case.id, leaf), case.opened_at),
            ))
    return items


def _overdue_timers(
    session: Session,
    cases: dict[int, Case],
    definitions: dict[int, Definition],
    held: HeldRoles,
    case_ids: Select[Any],
    now: datetime,
) -> list[QueueItem]:
    newest = _newest_runs(case_ids)
    items: list[QueueItem] = []
    for timer in session.scalars(
        select(Timer)
        .where(
            Timer.id.in_(select(newest.c.run_id)),
            Timer.status.in_(_DEADLINE_STATUSES),
            Timer.due_at <= now,
        )
        .order_by(Timer.id)
    ):
        case = cases.get(timer.case_id)
        if case is None or not state_active(case.state, timer.state):
            continue
        defn = definitions[case.workflow_version_id]
        spec = next((t for t in defn.timers if t.name == timer.name), None)
        if spec is None or (spec.fire is not None and timer.status == "fired"):
            # A fired ``fire:`` timer has done its work; it is not a deadline anyone misses.
            continue
        state = defn.states.get(timer.state)
        concerned = [state.owner] if state and state.owner else []
        concerned += [r for r in spec.remind if r not in concerned]
        role = _pick_role(concerned, held(case.id))
        if role is None:
            continue
        items.append(QueueItem(
            kind="overdue_timer", case_id=case.id, workflow=case.workflow,
            workflow_version=case.workflow_version, state=timer.state, role=role,
            since=timer.due_at, timer=timer.name, step=0,
        ))
    return items


def _open_escalations(
    session: Session,
    cases: dict[int, Case],
    held: HeldRoles,
    case_ids: Select[Any],
    agency_id: int | None,
) -> list[QueueItem]:
    items: list[QueueItem] = []
    newest = _newest_runs(case_ids)
    rows = session.execute(
        select(Escalation, Timer.state)
        .join(Timer, Timer.id == Escalation.timer_id)
        .join(newest, (newest.c.case_id == Timer.case_id) & (newest.c.name == Timer.name))
        .where(
            Escalation.case_id.in_(case_ids),
            Escalation.acknowledged_at.is_(None),
            # Sent in an earlier run of the timer (before a restart or a re-entry):
            # that deadline no longer stands, so nobody needs to answer it.
            Timer.id >= newest.c.run_id,
        )
        .order_by(Escalation.id)
    )
    for esc, state in rows:
        case = cases.get(esc.case_id)
        if case is None or not state_active(case.state, state):
            continue
        if agency_id is not None and agency_id not in (esc.agency_ids or []):
            continue
        notified = [str(r) for r in (esc.roles or [])]
        # Sent to the agency as the coordinator's fallback when no role of its own matches.
        role = _pick_role(notified, held(case.id)) or (notified[0] if notified else "")
        items.append(QueueItem(
            kind="escalation", case_id=case.id, workflow=case.workflow,
            workflow_version=case.workflow_version, state=state, role=role,
            since=esc.created_at, timer=esc.timer_name, step=esc.step, escalation_id=esc.id,
        ))
    return items
