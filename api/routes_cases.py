"""Cases: open, read (filtered by the caller's roles), fire events, history, assign.

The admin token acts with ``agency_id`` None: the system's full view, and any role.
An agency holding no role on a case gets 404 for it, exactly as for a case that does
not exist.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy.orm import Session

import engine
from api.auth import CallerDep
from api.deps import NowDep, SessionDep
from api.schemas import (
    MAX_ID,
    AssignIn,
    EventIn,
    ReadQuery,
    errors,
)
from api.schemas_subjects import ReferralIn
from engine import CaseView, EventView, agency_by_name, tracing
from engine.errors import InvalidInput, NotFound

router = APIRouter(tags=["cases"])

CaseId = Annotated[int, Path(ge=1, le=MAX_ID, description="The case id.")]
AsRole = Annotated[ReadQuery, Query()]
ROLE_QUERY_NOTES = {
    403: "`?role=` names a role the agency does not hold on the case.",
    422: "`?role=` with the admin token names a role other than `system`.",
}


def _agency_id(session: Session, agency: int | str) -> int:
    """Assignments name agencies by id or by name."""
    if isinstance(agency, int):
        return agency
    try:
        return agency_by_name(session, agency).id
    except NotFound as exc:
        # A body naming an unknown agency is invalid input, not a missing resource.
        raise InvalidInput(exc.message, agency=agency) from None


@router.post(
    "/cases",
    status_code=201,
    responses=errors(401, 403, 404, 409, 413, 415, 422),
    summary="Open a case (an agency must take a role on it)",
)
def post_case(body: ReferralIn, caller: CallerDep, session: SessionDep, now: NowDep) -> CaseView:
    assignments = {role: _agency_id(session, agency) for role, agency in body.assignments.items()}
    with tracing.span("service.open_case", {"referral.workflow": body.workflow}):
        case = engine.open_case(
            session,
            workflow=body.workflow,
            version=body.version,
            assignments=assignments,
            data=body.data,
            now=now,
            agency_id=caller.agency_id,
        )
        if body.subject is not None:
            engine.attach_at_open(session, case.id, body.subject.details(),
                                  agency_id=caller.agency_id, now=now)
        session.commit()
    return case


@router.get(
    "/cases/{case_id}",
    responses=errors(401, 403, 404, 422, notes=ROLE_QUERY_NOTES),
    summary="A case as the caller's roles on it may see it",
)
def get_case(
    case_id: CaseId, query: AsRole, caller: CallerDep, session: SessionDep, now: NowDep
) -> CaseView:
    return engine.view(session, case_id, agency_id=caller.agency_id, now=now, role=query.role)


@router.post(
    "/cases/{case_id}/events",
    responses=errors(401, 403, 404, 409, 413, 415, 422),
    summary="Fire a trigger on a case, acting in one of the caller's roles",
)
def post_event(
    case_id: CaseId, body: EventIn, caller: CallerDep, session: SessionDep, now: NowDep
) -> CaseView:
    with tracing.span("service.fire", {"referral.case_id": case_id,
                                       "referral.trigger": body.trigger}):
        case = engine.fire(
            session,
            case_id,
            body.trigger,
            role=body.role,
            agency_id=caller.agency_id,
            data=body.data,
            expected_version=body.expected_version,
            now=now,
        )
        session.commit()
    return case


@router.get(
    "/cases/{case_id}/history",
    responses=errors(401, 403, 404, 422, notes=ROLE_QUERY_NOTES),
    summary="The case's audit history, restricted field values left out",
)
def get_history(
    case_id: CaseId, query: AsRole, caller: CallerDep, session: SessionDep
) -> list[EventView]:
    return engine.history(session, case_id, agency_id=caller.agency_id, role=query.role)


@router.put(
    "/cases/{case_id}/assignments/{role}",
    responses=errors(401, 403, 404, 409, 413, 415, 422),
    summary="Give a role on the case to an agency (the case's coordinator or the admin)",
)
def put_assignment(
    case_id: CaseId,
    role: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")],
    body: AssignIn,
    caller: CallerDep,
    session: SessionDep,
    now: NowDep,
) -> CaseView:
    case = engine.assign(
        session,
        case_id,
        role,
        _agency_id(session, body.agency),
        now=now,
        by_agency_id=caller.agency_id,
    )
    session.commit()
    return case
