"""The caller's work: its queue, and acknowledging the escalations sent to it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from api.auth import CallerDep
from api.deps import NowDep, SessionDep
from api.schemas import MAX_ID, AckOut, QueuePageOut, QueueQuery, errors
from engine.errors import Forbidden, NotFound
from engine.escalations import acknowledge
from engine.models import CaseAssignment, Escalation
from engine.queue import work_queue

router = APIRouter(tags=["work"])


@router.get(
    "/queue",
    response_model=QueuePageOut,
    responses=errors(401, 422),
    summary="The caller's work: owned states, overdue deadlines, open escalations; oldest first",
)
def get_queue(
    caller: CallerDep,
    session: SessionDep,
    now: NowDep,
    query: Annotated[QueueQuery, Query()],
) -> dict[str, Any]:
    page = work_queue(
        session, agency_id=caller.agency_id, now=now, limit=query.limit, offset=query.offset
    )
    return page.as_dict()


@router.post(
    "/escalations/{escalation_id}/ack",
    response_model=AckOut,
    responses=errors(401, 403, 404, 409, 422),
    summary="Acknowledge a reminder or escalation sent to the caller; stops its ladder",
)
def post_ack(
    escalation_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    caller: CallerDep,
    session: SessionDep,
    now: NowDep,
) -> dict[str, Any]:
    if caller.agency_id is None:
        raise Forbidden("acknowledge with the token of an agency that was notified")
    _check_visible(session, escalation_id, caller.agency_id)
    result = acknowledge(session, escalation_id, agency_id=caller.agency_id, now=now)
    session.commit()
    return result.as_dict()


def _check_visible(session: SessionDep, escalation_id: int, agency_id: int) -> None:
    """Another agency's case is 'not found', as everywhere else in the API."""
    holds_role = session.scalar(
        select(CaseAssignment.role)
        .join(Escalation, Escalation.case_id == CaseAssignment.case_id)
        .where(Escalation.id == escalation_id, CaseAssignment.agency_id == agency_id)
        .limit(1)
    )
    if holds_role is None:
        raise NotFound(f"no escalation {escalation_id}", escalation_id=escalation_id)
