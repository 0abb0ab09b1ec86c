"""The tick's batch statements, built once per dialect (see :mod:`engine.timers.batch`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Integer,
    Table,
    and_,
    any_,
    bindparam,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from engine.store.tables import (
    Agency,
    Case,
    CaseAssignment,
    CaseEvent,
    Escalation,
    Notification,
    Timer,
)

_cases = cast(Table, Case.__table__)
_timers = cast(Table, Timer.__table__)
_assignments = cast(Table, CaseAssignment.__table__)
_agencies = cast(Table, Agency.__table__)
_events = cast(Table, CaseEvent.__table__)
_escalations = cast(Table, Escalation.__table__)
_notifications = cast(Table, Notification.__table__)


def _member(column: Any, pg: bool) -> Any:
    """``column`` is one of the ``ids`` parameter: ``= ANY(array)`` on PostgreSQL (one
    statement text whatever the count, so the driver's and server's caches hold it),
    an expanding ``IN`` elsewhere."""
    if pg:
        return column == any_(bindparam("ids", type_=ARRAY(Integer)))
    return column.in_(bindparam("ids", expanding=True))


def _claim(pg: bool) -> Any:
    due = (
        select(_timers.c.id)
        .where(
            or_(
                and_(_timers.c.status == "pending", _timers.c.due_at <= bindparam("now")),
                and_(_timers.c.status == "firing", _timers.c.claimed_until < bindparam("now")),
            )
        )
        .order_by(_timers.c.due_at, _timers.c.id)
        .limit(bindparam("limit"))
    )
    if pg:
        due = due.with_for_update(skip_locked=True)
    return (
        update(_timers)
        .where(_timers.c.id.in_(due.scalar_subquery()))
        .values(status="firing", claimed_until=bindparam("lease_until"))
        .returning(_timers.c.id, _timers.c.due_at)
    )


def _lock(pg: bool) -> Any:
    # Lock order everywhere: a case first, then its timers; cases in id order, so two
    # ticks locking overlapping batches cannot deadlock.
    query = (
        select(
            _timers.c.id,
            _timers.c.case_id,
            _timers.c.name,
            _timers.c.state,
            _timers.c.step,
            _timers.c.due_at,
            _timers.c.status,
            _timers.c.claimed_until,
            _cases.c.workflow_version_id,
            _cases.c.workflow,
            _cases.c.workflow_version,
            _cases.c.state.label("case_state"),
            _cases.c.data,
            _cases.c.revision,
            _cases.c.last_event_hash,
            _cases.c.last_event_seq,
        )
        .join_from(_timers, _cases, _cases.c.id == _timers.c.case_id)
        .where(_member(_timers.c.id, pg))
        .order_by(_cases.c.id, _timers.c.id)
    )
    return query.with_for_update() if pg else query


@dataclass(frozen=True, slots=True)
class Statements:
    claim: Any
    lock: Any
    assignments: Any
    agencies: Any
    mark_fired: Any
    mark_cancelled: Any


def _build(pg: bool) -> Statements:
    return Statements(
        claim=_claim(pg),
        lock=_lock(pg),
        assignments=select(_assignments.c.case_id, _assignments.c.role, _assignments.c.agency_id)
        .where(_member(_assignments.c.case_id, pg))
        .order_by(_assignments.c.case_id, _assignments.c.role),
        agencies=select(
            _agencies.c.id,
            _agencies.c.webhook_url,
            _agencies.c.webhook_secret,
            _agencies.c.webhook_disabled_at,
            _agencies.c.email,
        ).where(_member(_agencies.c.id, pg)),
        mark_fired=update(_timers)
        .where(_member(_timers.c.id, pg))
        .values(status="fired", fired_at=bindparam("now"), claimed_until=None),
        mark_cancelled=update(_timers)
        .where(_member(_timers.c.id, pg))
        .values(status="cancelled", claimed_until=None),
    )


_BY_DIALECT = {False: _build(False), True: _build(True)}


def statements(conn: Connection) -> Statements:
    return _BY_DIALECT[conn.dialect.name == "postgresql"]


# Multi-row INSERTs hand out ids in the rows' order (one writer per SQLite database; one
# sequence draw per row, in VALUES order, on PostgreSQL), so the returned ids sorted are the
# ids of the rows in order. ``sort_by_parameter_order`` would make SQLite insert row by row.
ADD_ESCALATIONS = insert(_escalations).returning(_escalations.c.id)
ADD_NOTIFICATIONS = insert(_notifications).returning(_notifications.c.id)
ADD_EVENTS = insert(_events)
MOVE_HEADS = (
    update(_cases)
    .where(_cases.c.id == bindparam("b_id"), _cases.c.revision == bindparam("b_seen"))
    .values(
        revision=bindparam("b_revision"),
        last_event_hash=bindparam("b_hash"),
        last_event_seq=bindparam("b_seq"),
    )
)
ADD_TIMERS = insert(_timers)
