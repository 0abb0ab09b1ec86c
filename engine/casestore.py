"""Loading a case row and claiming it for a write (optimistic concurrency).

Every write to a case first claims it: ``UPDATE cases SET revision = seen + 1 WHERE id =
:id AND revision = :seen``. On PostgreSQL the UPDATE takes the row lock; a concurrent
writer that read the same revision waits, re-checks its WHERE after the winner commits
and matches no row, so it gets a VersionConflict instead of a lost update. On SQLite
every transaction begins IMMEDIATE, so writers are serialised before they read.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from engine.errors import NotFound, VersionConflict
from engine.models import Case


def load_case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id, populate_existing=True)
    if case is None:
        raise NotFound(f"case {case_id} not found", case_id=case_id)
    return case


def _conflict(case_id: int, expected: int, current: int | None) -> VersionConflict:
    return VersionConflict(
        f"case {case_id} changed (now version {current}, you had {expected}); "
        "reload it and try again",
        case_id=case_id,
        expected_version=expected,
        current_version=current,
    )


def check_version(case: Case, expected_version: int | None) -> None:
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
