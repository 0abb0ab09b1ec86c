"""Loading a case row and claiming it for a write (optimistic concurrency).

Every write to a case first claims it: ``UPDATE cases SET revision = seen + 1 WHERE id =
:id AND revision = :seen``. On PostgreSQL the UPDATE takes the row lock; a concurrent
writer that read the same revision waits, re-checks its WHERE after the winner commits
and matches no row, so it gets a VersionConflict instead of a lost update. On SQLite
every transaction begins IMMEDIATE, so writers are serialised before they read.

The event path (``service.fire``) works on ``CaseRow``s through Core statements built
once at import, not on ORM entities: loading, flushing and building statements per call
cost several times the database work. The ORM ``Case`` stays for the other writers, and
a ``Case`` the caller's session already holds is kept in step with what the event path
wrote (``sync_identity``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from engine.errors import NotFound, VersionConflict
from engine.store.fastpath import Cursor, Prepared
from engine.store.tables import Base, Case

_cases = Base.metadata.tables["cases"]
_versions = Base.metadata.tables["workflow_versions"]

# The case and the content hash of its (immutable) workflow version, which is the key of
# the compiled-workflow cache: one statement instead of two.
_LOAD = Prepared(
    select(
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
    .select_from(_cases.join(_versions, _versions.c.id == _cases.c.workflow_version_id))
    .where(_cases.c.id == bindparam("b_id"))
)
_CLAIM = Prepared(
    update(_cases)
    .where(_cases.c.id == bindparam("b_id"), _cases.c.revision == bindparam("b_seen"))
    .values(revision=bindparam("b_next"))
)
_REVISION = select(_cases.c.revision).where(_cases.c.id == bindparam("b_id"))
_WRITE = Prepared(
    update(_cases)
    .where(_cases.c.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        data=bindparam("b_data"),
        milestones=bindparam("b_milestones"),
        closed_at=bindparam("b_closed_at"),
        last_event_hash=bindparam("b_hash"),
        last_event_seq=bindparam("b_seq"),
    )
)
# What the event path writes, so a caller's ORM copy can be brought up to date.
_WRITTEN = (
    "state",
    "data",
    "milestones",
    "revision",
    "closed_at",
    "last_event_hash",
    "last_event_seq",
)


@dataclass(slots=True)
class CaseRow:
    """A case as the event path reads and changes it (plain values, no ORM state)."""

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


def load_case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id, populate_existing=True)
    if case is None:
        raise NotFound(f"case {case_id} not found", case_id=case_id)
    return case


def load_row(cur: Cursor, case_id: int) -> CaseRow:
    found = _LOAD.first(cur, {"b_id": case_id})
    if found is None:
        raise NotFound(f"case {case_id} not found", case_id=case_id)
    return CaseRow(*found)


def _conflict(case_id: int, expected: int, current: int | None) -> VersionConflict:
    return VersionConflict(
        f"case {case_id} changed (now version {current}, you had {expected}); "
        "reload it and try again",
        case_id=case_id,
        expected_version=expected,
        current_version=current,
    )


def check_version(case: Case | CaseRow, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != case.revision:
        raise _conflict(case.id, expected_version, case.revision)


def claim(session: Session, case: Case) -> None:
    """Bump the case's revision if nobody else did since it was read; else VersionConflict.

    Call before changing anything else about the case, so that a lost race writes nothing.
    """
    seen = case.revision
    result = session.execute(
        update(Case)
        .where(Case.id == case.id, Case.revision == seen)
        .values(revision=seen + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        current = session.scalar(select(Case.revision).where(Case.id == case.id))
        raise _conflict(case.id, seen, current)
    set_committed_value(case, "revision", seen + 1)


def claim_row(cur: Cursor, case: CaseRow) -> None:
    """``claim`` for the event path: the same guarded UPDATE, on a ``CaseRow``."""
    seen = case.revision
    if _CLAIM.execute(cur, {"b_id": case.id, "b_seen": seen, "b_next": seen + 1}) != 1:
        current = cur.conn.execute(_REVISION, {"b_id": case.id}).scalar()
        raise _conflict(case.id, seen, current)
    case.revision = seen + 1


def write_row(cur: Cursor, case: CaseRow) -> None:
    """Store the row's state, data, milestones, closing time and audit chain head.

    The caller claimed the case first (``claim_row``), so the row is ours.
    """
    _WRITE.execute(
        cur,
        {
            "b_id": case.id,
            "b_state": case.state,
            "b_data": case.data,
            "b_milestones": case.milestones,
            "b_closed_at": case.closed_at,
            "b_hash": case.last_event_hash,
            "b_seq": case.last_event_seq,
        },
    )


def sync_identity(session: Session, case: CaseRow) -> None:
    """Bring the session's ORM copy of the case (if it holds one) up to ``case``.

    Callers that loaded the ``Case`` themselves (the timer tick, the CLI) go on using
    that object after the event path wrote the row.
    """
    if not session.identity_map:
        return
    held = session.identity_map.get(identity_key(Case, case.id))
    if held is None:
        return
    for name in _WRITTEN:
        set_committed_value(held, name, getattr(case, name))
