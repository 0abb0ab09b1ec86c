"""The caller's work: its queue, and acknowledging the escalations sent to it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.auth import CallerDep
from api.deps import NowDep, SessionDep
from api.schemas import MAX_ID, QueueQuery, errors
from engine import AckResult, QueuePage, acknowledge, work_queue
from engine.errors import Forbidden

router = APIRouter(tags=["work"])


@router.get(
    "/queue",
    responses=errors(401, 422),
    summary="The caller's work: owned states, overdue deadlines, open escalations; oldest first",
)
def get_queue(
    caller: CallerDep,
    session: SessionDep,
    now: NowDep,
    query: Annotated[QueueQuery, Query()],
) -> QueuePage:
    return work_queue(
        session, agency_id=caller.agency_id, now=now, limit=query.limit, offset=query.offset
    )


@router.post(
    "/escalations/{escalation_id}/ack",
    responses=errors(401, 403, 404, 409, 422),
    summary="Acknowledge a reminder or escalation sent to the caller; stops its ladder",
)
def post_ack(
    escalation_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    caller: CallerDep,
    session: SessionDep,
    now: NowDep,
) -> AckResult:
    if caller.agency_id is None:
        raise Forbidden("acknowledge with the token of an agency that was notified")
    result = acknowledge(session, escalation_id, agency_id=caller.agency_id, now=now)
    session.commit()
    return result
