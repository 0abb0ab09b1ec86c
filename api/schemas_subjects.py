"""Request and response models of the subject routes (``routes_subjects``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import CaseIn, Id, Name
from engine import SubjectDetails, subject_details

Text200 = Annotated[str, Field(max_length=200)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NameIn(_In):
    given: Text200 = ""
    family: Text200 = ""
    kind: Literal["primary", "alias", "script"] = Field(
        default="primary",
        description="`primary` as referred, `alias` also known as, `script` the name "
        "written in another script.",
    )


class SubjectFields(_In):
    """Who a case is about. Also the shape for a ``subject`` given with a new referral
    (``POST /cases``), where the opener's role needs no naming."""

    names: list[NameIn] = Field(min_length=1, max_length=20)
    date_of_birth: date | None = None
    birth_year: int | None = Field(default=None, ge=1900, le=2100,
                                   description="When only the year is known.")
    locality: Text200 | None = None
    identifiers: dict[Annotated[str, Field(min_length=1, max_length=32)],
                      Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=dict, max_length=10,
        description="Official identifiers by type (e.g. `pnc`); a shared one decides a match.")

    def details(self) -> SubjectDetails:
        """The engine's checked form (``InvalidInput`` for what the shape cannot say)."""
        return subject_details(
            [n.model_dump() for n in self.names], date_of_birth=self.date_of_birth,
            birth_year=self.birth_year, locality=self.locality, identifiers=self.identifiers,
        )


class SubjectIn(SubjectFields):
    role: Name | None = Field(default=None, description="Act in this role on the case.")


class NameOut(BaseModel):
    given: str
    family: str
    kind: str


class SubjectOut(BaseModel):
    case_id: int
    subject_id: int
    names: list[NameOut]
    date_of_birth: str | None
    birth_year: int | None
    locality: str | None
    identifiers: dict[str, str]
    recorded_at: datetime
    updated_at: datetime


class ReasonOut(BaseModel):
    factor: str = Field(description="name, date_of_birth, locality or identifier.")
    score: float
    detail: str = Field(description="How the two compare (never the other's value).")


class OtherCaseOut(BaseModel):
    case_id: int
    workflow: str
    opened_at: datetime
    closed_at: datetime | None
    outcome: str | None = Field(description="The final state it closed in; null while open.")


class CandidateOut(OtherCaseOut):
    score: float
    reasons: list[ReasonOut]
    decision: Literal["linked", "rejected"] | None


class PriorContactOut(OtherCaseOut):
    linked_at: datetime
    decided_on: int = Field(description="The case on which the link was decided.")


class DecisionIn(_In):
    case_id: Id = Field(description="The candidate case.")
    decision: Literal["linked", "rejected"] = "linked"
    role: Name | None = Field(default=None, description="Act in this role on the case.")


class SubjectQuery(_In):
    role: Name | None = Field(default=None, description="Read in this one role.")


class ReferralIn(CaseIn):
    """A new case, with the person it is about when the referrer knows them."""

    subject: SubjectFields | None = Field(
        default=None,
        description="Who the case is about; kept apart from the case and shown only to the "
        "roles the workflow's `subjects:` names (never echoed back to the opener).",
    )
