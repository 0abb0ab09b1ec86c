"""What callers get back about subjects: one frozen type each, JSON-ready.

A candidate or prior contact tells about the other case only its id, dates, workflow
and closure outcome: never its data, its subject's names or date of birth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.subjects.details import SubjectDetails
from engine.subjects.scoring import Reason


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True, slots=True)
class SubjectView:
    case_id: int
    subject_id: int
    details: SubjectDetails
    recorded_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        born = self.details.born
        return {
            "case_id": self.case_id,
            "subject_id": self.subject_id,
            "names": [n.as_dict() for n in self.details.names],
            "date_of_birth": born.text() if born is not None and born.full else None,
            "birth_year": born.year if born is not None else None,
            "locality": self.details.locality,
            "identifiers": dict(self.details.identifiers),
            "recorded_at": self.recorded_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class OtherCase:
    """The earlier (or later) case, as much of it as a candidate may show."""

    case_id: int
    workflow: str
    opened_at: datetime
    closed_at: datetime | None
    # The final state the case closed in; None while it is open.
    outcome: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "workflow": self.workflow,
            "opened_at": self.opened_at.isoformat(),
            "closed_at": _iso(self.closed_at),
            "outcome": self.outcome,
        }


@dataclass(frozen=True, slots=True)
class CandidateView:
    case: OtherCase
    score: float
    reasons: tuple[Reason, ...]
    # linked, rejected, or None while undecided
    decision: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.case.as_dict(),
            "score": self.score,
            "reasons": [r.as_dict() for r in self.reasons],
            "decision": self.decision,
        }


@dataclass(frozen=True, slots=True)
class PriorContactView:
    case: OtherCase
    linked_at: datetime
    # The case on which the link was decided (this one or the other).
    decided_on: int

    def as_dict(self) -> dict[str, Any]:
        return {**self.case.as_dict(), "linked_at": self.linked_at.isoformat(),
                "decided_on": self.decided_on}
