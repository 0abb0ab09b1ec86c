"""The case row on every write path: load it, claim it, insert it, write it back.

Every write to a case first claims it: ``UPDATE cases SET revision = seen + 1 WHERE id =
:id AND revision = :seen``. On PostgreSQL the UPDATE takes the row lock; a concurrent
writer that read the same revision waits, re-checks its WHERE after the winner commits
and matches no row, so it gets a VersionConflict instead of a lost update. On SQLite
every write transaction begins IMMEDIATE, so writers are serialised before they read.

Write paths work on :class:`CaseRow`, plain values read by Core statements compiled once
(the ORM ``Case`` serves reads and administration only): loading, flushing and building
statements per call would cost several times the database work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy import insert as sql_insert

from engine.errors import NotFound, VersionConflict
from engine.store.fastpath import Cursor, Prepared, PreparedInsert
from engine.store.tables import Base

_cases = Base.metadata.tables["cases"]
_versions = Base.metadata.tables["workflow_versions"]
_assigned = Base.metadata.tables["case_assignments"]

# The case and the content hash of its (immutable) workflow version, which is the key of
# the compiled-workflow cache: one statement instead of two.
_COLUMNS = (
    _cases.c.id,
    _cases.c.workflow_version_id,
    _cases.c.workflow,
    _cases.c.workflow_version,
    _cases.c.state,
    _cases.c.data,
    _cases.c.milestones,
    _cases.c.revision,
    _cases.c.opened_at,
    _cases.c.closed_at,
    _cases.c.last_event_hash,
    _cases.c.last_event_seq,
    _versions.c.content_hash,
)
_SELECT = (
    select(*_COLUMNS)
    .select_from(_cases.join(_versions, _versions.c.id == _cases.c.workflow_version_id))
    .where(_cases.c.id == bindparam("b_id"))
)
_LOAD = Prepared(_SELECT)
# Locks the case row (PostgreSQL; SQLite's write transactions are serialised already) for
# writers that must decide under the lock, before any claim.
_LOCK = Prepared(_SELECT.with_for_update(of=_cases))
_CLAIM = Prepared(
    update(_cases)
    .where(_cases.c.id == bindparam("b_id"), _cases.c.revision == bindparam("b_seen"))
    .values(revision=bindparam("b_next"))
)
_REVISION = Prepared(select(_cases.c.revision).where(_cases.c.id == bindparam("b_id")))
_WRITE = (
    update(_cases)
    .where(_cases.c.id == bindparam("b_id"), _cases.c.revision == bindparam("b_seen"))
    .values(
        revision=bindparam("b_next"),
        state=bindparam("b_state"),
        data=bindparam("b_data"),
        milestones=bindparam("b_milestones"),
        closed_at=bindparam("b_closed_at"),
        last_event_hash=bindparam("b_hash"),
        last_event_seq=bindparam("b_seq"),
    )
)
_WRITE_ONE = Prepared(_WRITE)
_INSERT = PreparedInsert(
    sql_insert(_cases).values(
        workflow_version_id=bindparam("b_version_id"),
        workflow=bindparam("b_workflow"),
        workflow_version=bindparam("b_workflow_version"),
        state=bindparam("b_state"),
        data=bindparam("b_data"),
        milestones=bindparam("b_milestones"),
        revision=bindparam("b_revision"),
        opened_at=bindparam("b_opened_at"),
        closed_at=bindparam("b_closed_at"),
        last_event_hash="",
        last_event_seq=0,
    ),
    _cases.c.id,
)
_ASSIGN = Prepared(
    sql_insert(_assigned).values(
        case_id=bindparam("b_case"), role=bindparam("b_role"), agency_id=bindparam("b_agency")
    )
)
_REASSIGN = Prepared(
    update(_assigned)
    .where(_assigned.c.case_id == bindparam("b_case"), _assigned.c.role == bindparam("b_role"))
    .values(agency_id=bindparam("b_agency"))
)


@dataclass(slots=True)
class CaseRow:
    """A case as a write path reads and changes it (plain values, no ORM state).

    ``seen`` is the revision the row had when it was read or last written by this
    transaction; ``revision`` is what it will have once written.
    """

    id: int
    workflow_version_id: int
    workflow: str
    workflow_version: int
    state: list[Any]
    data: dict[str, Any]
    milestones: dict[str, Any]
    revision: int
    opened_at: datetime
    closed_at: datetime | None
    last_event_hash: str
    last_event_seq: int
    content_hash: str
    seen: int = 0

    @classmethod
    def of(cls, values: Sequence[Any]) -> CaseRow:
        """From a row of the columns :func:`load` reads, in that order."""
        row = cls(*values)
        row.seen = row.revision
        return row


def columns() -> tuple[Any, ...]:
    """The columns a :class:`CaseRow` is made of, for statements that join the case."""
    return _COLUMNS


def load(cur: Cursor, case_id: int, *, lock: bool = False) -> CaseRow:
    """The case, or NotFound; ``lock`` takes its row lock first (PostgreSQL)."""
    found = (_LOCK if lock else _LOAD).first(cur, {"b_id": case_id})
    if found is None:
        raise NotFound(f"case {case_id} not found", case_id=case_id)
    return CaseRow.of(found)


def conflict(case_id: int, expected: int, current: int | None) -> VersionConflict:
    return VersionConflict(
        f"case {case_id} changed (now version {current}, you had {expected}); "
        "reload it and try again",
        case_id=case_id,
        expected_version=expected,
        current_version=current,
    )


def check_version(case: CaseRow, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != case.revision:
        raise conflict(case.id, expected_version, case.revision)


def claim(cur: Cursor, case: CaseRow) -> None:
    """Bump the case's revision if nobody else did since it was read; else VersionConflict.

    Call before changing anything else about the case, so that a lost race writes nothing.
    """
    seen, following = case.seen, case.revision + 1  # after any :func:`bump` not yet written
    if _CLAIM.execute(cur, {"b_id": case.id, "b_seen": seen, "b_next": following}) != 1:
        found = _REVISION.first(cur, {"b_id": case.id})
        raise conflict(case.id, seen, found[0] if found else None)
    case.seen = case.revision = following


def bump(case: CaseRow) -> None:
    """Count one more write of a case held under its row lock (the tick's batch), which
    :func:`write` stores in the same statement as the rest."""
    case.revision += 1


def insert(cur: Cursor, case: CaseRow) -> None:
    """Insert a new case (its chain head follows in :func:`write`); sets ``case.id``."""
    case.id = _INSERT.insert(
        cur,
        {
            "b_version_id": case.workflow_version_id,
            "b_workflow": case.workflow,
            "b_workflow_version": case.workflow_version,
            "b_state": case.state,
            "b_data": case.data,
            "b_milestones": case.milestones,
            "b_revision": case.revision,
            "b_opened_at": case.opened_at,
            "b_closed_at": case.closed_at,
        },
    )
    case.seen = case.revision


def _params(case: CaseRow) -> dict[str, Any]:
    return {
        "b_id": case.id,
        "b_seen": case.seen,
        "b_next": case.revision,
        "b_state": case.state,
        "b_data": case.data,
        "b_milestones": case.milestones,
        "b_closed_at": case.closed_at,
        "b_hash": case.last_event_hash,
        "b_seq": case.last_event_seq,
    }


def write(cur: Cursor, cases: Sequence[CaseRow]) -> None:
    """Store each case's state, data, milestones, closing time, chain head and revision,
    guarded by the revision it was read (or claimed) at: a row that moved under us
    raises, and the caller's transaction rolls back."""
    if len(cases) == 1:
        [case] = cases
        if _WRITE_ONE.execute(cur, _params(case)) != 1:
            raise conflict(case.id, case.seen, None)
    elif cases:
        moved = cur.conn.execute(_WRITE, [_params(c) for c in cases])
        if cur.dialect.supports_sane_multi_rowcount and moved.rowcount != len(cases):
            raise RuntimeError("a case changed under its row lock")
    for case in cases:
        case.seen = case.revision


def assign(cur: Cursor, case_id: int, role: str, agency_id: int, *, new: bool) -> None:
    """Give ``role`` on the case to an agency: a new holder, or a change of holder."""
    params = {"b_case": case_id, "b_role": role, "b_agency": agency_id}
    (_ASSIGN if new else _REASSIGN).execute(cur, params)
