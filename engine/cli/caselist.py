"""``referral case list``: which cases there are, filtered, without any field values.

Listing shows what every role on a case may see anyway (workflow, state, open or
closed, dates); data stays with ``case show``. With ``--agency`` only the cases on which
that agency holds a role are listed, with those roles, as the API would show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from engine.store.tables import Case, CaseAssignment

MAX_LIMIT = 1000


class Status(StrEnum):
    open = "open"
    closed = "closed"
    all = "all"


@dataclass(frozen=True, slots=True)
class CaseFilter:
    workflow: str | None = None
    # A state path or the path of a composite around it ("support").
    state: str | None = None
    status: Status = Status.all
    agency_id: int | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class CaseSummary:
    id: int
    workflow: str
    workflow_version: int
    state: tuple[str, ...]
    closed: bool
    opened_at: datetime
    closed_at: datetime | None
    # The listing agency's roles on the case (empty for the administrator).
    roles: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workflow": self.workflow,
            "workflow_version": self.workflow_version,
            "state": list(self.state),
            "closed": self.closed,
            "opened_at": self.opened_at.isoformat(),
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "roles": list(self.roles),
        }


def _in_state(config: list[Any], path: str) -> bool:
    return any(s == path or str(s).startswith(path + ".") for s in config)


def _query(flt: CaseFilter) -> Select[Any]:
    query = select(Case).order_by(Case.id)
    if flt.workflow is not None:
        query = query.where(Case.workflow == flt.workflow)
    if flt.status is Status.open:
        query = query.where(Case.closed_at.is_(None))
    elif flt.status is Status.closed:
        query = query.where(Case.closed_at.is_not(None))
    if flt.agency_id is not None:
        mine = select(CaseAssignment.case_id).where(CaseAssignment.agency_id == flt.agency_id)
        query = query.where(Case.id.in_(mine))
    return query


def _roles(session: Session, agency_id: int | None, ids: list[int]) -> dict[int, list[str]]:
    if agency_id is None or not ids:
        return {}
    roles: dict[int, list[str]] = {}
    for case_id, role in session.execute(
        select(CaseAssignment.case_id, CaseAssignment.role)
        .where(CaseAssignment.agency_id == agency_id, CaseAssignment.case_id.in_(ids))
        .order_by(CaseAssignment.role)
    ):
        roles.setdefault(case_id, []).append(role)
    return roles


def list_cases(session: Session, flt: CaseFilter) -> tuple[list[CaseSummary], bool]:
    """The matching cases by id, at most ``limit``; and whether more were left out."""
    limit = max(1, min(flt.limit, MAX_LIMIT))
    found: list[Case] = []
    more = False
    # The state filter reads the stored configuration, so it runs here, not in SQL.
    for case in session.scalars(_query(flt)):
        if flt.state is not None and not _in_state(case.state, flt.state):
            continue
        if len(found) == limit:
            more = True
            break
        found.append(case)
    roles = _roles(session, flt.agency_id, [c.id for c in found])
    summaries = [
        CaseSummary(
            id=c.id,
            workflow=c.workflow,
            workflow_version=c.workflow_version,
            state=tuple(c.state),
            closed=c.closed_at is not None,
            opened_at=c.opened_at,
            closed_at=c.closed_at,
            roles=tuple(roles.get(c.id, ())),
        )
        for c in found
    ]
    return summaries, more


def summary_line(row: CaseSummary) -> str:
    status = f"closed {row.closed_at:%Y-%m-%d}" if row.closed_at else "open"
    roles = f"  as {', '.join(row.roles)}" if row.roles else ""
    return (
        f"{row.id:>5}  {row.workflow} v{row.workflow_version}  {', '.join(row.state)}  "
        f"({status}; opened {row.opened_at:%Y-%m-%d %H:%M} UTC){roles}"
    )
