"""Who may see a case's subject and decide on its candidates.

An agency with no role on the case is told the case does not exist; a role the
definition keeps the subject from is told the case has no subject visible to it,
whether or not one is recorded, so the answer reveals nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from engine.cases.access import holders, reader_roles
from engine.definitions.model import Definition
from engine.errors import NotFound
from engine.machine.deploy import compiled_by_hash
from engine.store import caserow
from engine.store.caserow import CaseRow
from engine.store.fastpath import cursor_for


@dataclass(frozen=True, slots=True)
class Scope:
    """A case as one caller reaches it: its row, its definition, the caller's roles."""

    case: CaseRow
    definition: Definition
    readers: frozenset[str]
    agency_id: int | None

    @property
    def pool(self) -> str:
        return self.definition.subjects.pool

    def acting_role(self) -> str:
        """The role a decision is recorded under: the first that may match."""
        return sorted(self.readers & self.definition.subjects.match_by)[0]


def no_subject(case_id: int) -> NotFound:
    return NotFound(f"case {case_id} has no subject visible to you", case_id=case_id)


def scope(session: Session, case_id: int, agency_id: int | None,
          role: str | None = None) -> Scope:
    session.flush()
    cur = cursor_for(session)
    case = caserow.load(cur, case_id)
    readers = reader_roles(holders(cur, case.id), case.id, agency_id, role)
    defn = compiled_by_hash(session, case.workflow_version_id, case.content_hash).definition
    return Scope(case, defn, readers, agency_id)


def seeing(session: Session, case_id: int, agency_id: int | None,
           role: str | None = None) -> Scope:
    """The case for a caller who may see its subject; NotFound for anyone else."""
    found = scope(session, case_id, agency_id, role)
    if not found.definition.subjects.sees(found.readers):
        raise no_subject(case_id)
    return found


def matching(session: Session, case_id: int, agency_id: int | None,
             role: str | None = None) -> Scope:
    """The case for a caller who may see and decide on its candidates."""
    found = seeing(session, case_id, agency_id, role)
    if not found.definition.subjects.matches(found.readers):
        raise no_subject(case_id)
    return found
