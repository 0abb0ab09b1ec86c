"""Subjects: who a case is about, its candidate matches, link decisions, prior contacts.

Only roles the case's definition names in ``subjects:`` get anything: every other role
on the case, and the administrator, is told the case has no subject visible to it
(404), whether or not one is recorded; an agency with no role on the case gets 404 for
the case itself.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

import engine
from api.auth import CallerDep
from api.deps import NowDep, RuntimeDep, SessionDep
from api.schemas import MAX_ID, errors
from api.schemas_subjects import (
    CandidateOut,
    DecisionIn,
    PriorContactOut,
    SubjectIn,
    SubjectOut,
    SubjectQuery,
)

router = APIRouter(tags=["subjects"])

CaseId = Annotated[int, Path(ge=1, le=MAX_ID, description="The case id.")]
OtherId = Annotated[int, Path(ge=1, le=MAX_ID, description="The linked case id.")]
AsRole = Annotated[SubjectQuery, Query()]


@router.put(
    "/cases/{case_id}/subject",
    response_model=SubjectOut,
    responses=errors(401, 403, 404, 409, 413, 415, 422),
    summary="Record or correct who the case is about (roles that may see the subject)",
)
def put_subject(case_id: CaseId, body: SubjectIn, caller: CallerDep, session: SessionDep,
                now: NowDep) -> dict[str, Any]:
    view = engine.attach_subject(session, case_id, body.details(), agency_id=caller.agency_id,
                                  now=now, role=body.role)
    session.commit()
    return view.as_dict()


@router.get(
    "/cases/{case_id}/subject",
    response_model=SubjectOut,
    responses=errors(401, 403, 404, 422),
    summary="Who the case is about",
)
def get_subject(case_id: CaseId, query: AsRole, caller: CallerDep,
                session: SessionDep) -> dict[str, Any]:
    view = engine.show_subject(session, case_id, agency_id=caller.agency_id, role=query.role)
    return view.as_dict()


@router.get(
    "/cases/{case_id}/candidates",
    response_model=list[CandidateOut],
    responses=errors(401, 403, 404, 422),
    summary="Other cases that may be about the same person, best first, with reasons",
)
def get_candidates(case_id: CaseId, query: AsRole, caller: CallerDep, session: SessionDep,
                   rt: RuntimeDep) -> list[dict[str, Any]]:
    found = engine.subject_candidates(session, case_id, agency_id=caller.agency_id,
                               threshold=rt.settings.match_threshold, role=query.role)
    return [c.as_dict() for c in found]


@router.post(
    "/cases/{case_id}/links",
    response_model=CandidateOut,
    responses=errors(401, 403, 404, 409, 413, 415, 422),
    summary="Link a candidate (same person) or reject it (not them); audited",
)
def post_link(case_id: CaseId, body: DecisionIn, caller: CallerDep, session: SessionDep,
              now: NowDep, rt: RuntimeDep) -> dict[str, Any]:
    view = engine.decide_candidate(session, case_id, body.case_id, body.decision,
                          agency_id=caller.agency_id, threshold=rt.settings.match_threshold,
                          now=now, role=body.role)
    session.commit()
    return view.as_dict()


@router.delete(
    "/cases/{case_id}/links/{other_id}",
    status_code=204,
    responses=errors(401, 403, 404, 409, 422),
    summary="Undo a link between two cases; audited on both",
)
def delete_link(case_id: CaseId, other_id: OtherId, query: AsRole, caller: CallerDep,
                session: SessionDep, now: NowDep) -> Response:
    engine.unlink_subjects(session, case_id, other_id, agency_id=caller.agency_id, now=now,
                   role=query.role)
    session.commit()
    return Response(status_code=204)


@router.get(
    "/cases/{case_id}/prior-contacts",
    response_model=list[PriorContactOut],
    responses=errors(401, 403, 404, 422),
    summary="Cases linked to this one: their dates, workflow and closure outcome",
)
def get_prior_contacts(case_id: CaseId, query: AsRole, caller: CallerDep,
                       session: SessionDep) -> list[dict[str, Any]]:
    found = engine.prior_contacts(session, case_id, agency_id=caller.agency_id,
                                   role=query.role)
    return [c.as_dict() for c in found]
