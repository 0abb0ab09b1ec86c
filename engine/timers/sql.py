"""The tick's reads, built once per dialect: claim due rows, lock a batch with its
cases, and the assignments and agencies it notifies (see :mod:`engine.timers.batch`)."""

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
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from engine.store import caserow
from engine.store.tables import Agency, Case, CaseAssignment, Timer, WorkflowVersion

_cases = cast(Table, Case.__table__)
_timers = cast(Table, Timer.__table__)
_assignments = cast(Table, CaseAssignment.__table__)
_agencies = cast(Table, Agency.__table__)
_versions = cast(Table, WorkflowVersion.__table__)


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


TIMER_COLUMNS = (
    "id", "case_id", "name", "state", "step", "due_at", "status", "claimed_until",
    "trace_parent",
)


def _lock(pg: bool) -> Any:
    # Lock order everywhere: a case first, then its timers; cases in id order, so two
    # ticks locking overlapping batches cannot deadlock. Each row: the timer's columns
    # (TIMER_COLUMNS), then its case's (``caserow.columns()``).
    query = (
        select(*(_timers.c[name] for name in TIMER_COLUMNS), *caserow.columns())
        .join_from(_timers, _cases, _cases.c.id == _timers.c.case_id)
        .join(_versions, _versions.c.id == _cases.c.workflow_version_id)
        .where(_member(_timers.c.id, pg))
        .order_by(_cases.c.id, _timers.c.id)
    )
    return query.with_for_update(of=[_cases, _timers]) if pg else query


@dataclass(frozen=True, slots=True)
class Statements:
    claim: Any
    lock: Any
    assignments: Any
    agencies: Any


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
    )


_BY_DIALECT = {False: _build(False), True: _build(True)}


def statements(conn: Connection) -> Statements:
    return _BY_DIALECT[conn.dialect.name == "postgresql"]
