"""Operations on delivery (admin): dead letters, replay, re-enabling a webhook, a test
notification. Every action is audited (:mod:`engine.notify.operations`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

import engine
from api.auth import AdminDep
from api.deps import NowDep, SessionDep
from api.schemas import MAX_ID, Id, errors

router = APIRouter(tags=["operations"])


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[Id] | None = Field(
        default=None, min_length=1, max_length=engine.MAX_REPLAY,
        description="Dead letters to send again; omit to replay every dead letter "
        f"(at most {engine.MAX_REPLAY} a call).")


class ReplayOut(BaseModel):
    replayed: list[int]


class EnabledOut(BaseModel):
    agency_id: int
    was_disabled: bool


class TestSentOut(BaseModel):
    agency_id: int
    notifications: list[int]


AgencyId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/notifications/dead",
            responses=errors(401, 403, 422), operation_id="list_dead_letters",
            summary="Dead-lettered notifications, oldest first (admin; no payloads)")
def get_dead(
    caller: AdminDep, session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[engine.DeadLetter]:
    return engine.dead_letters(session, limit=limit, offset=offset)


@router.post("/notifications/replay", response_model=ReplayOut,
             responses=errors(401, 403, 404, 422), operation_id="replay_dead_letters",
             summary="Send dead letters again with their message ids (admin, audited)")
def post_replay(body: ReplayIn, caller: AdminDep, session: SessionDep,
                now: NowDep) -> dict[str, Any]:
    replayed = engine.replay(session, body.ids, actor="admin", now=now)
    session.commit()
    return {"replayed": replayed}


@router.post("/agencies/{agency_id}/webhook/enable", response_model=EnabledOut,
             responses=errors(401, 403, 404, 422), operation_id="enable_agency_webhook",
             summary="Re-enable a webhook that a 410 disabled (admin, audited)")
def post_enable(agency_id: AgencyId, caller: AdminDep, session: SessionDep,
                now: NowDep) -> dict[str, Any]:
    was = engine.enable_webhook(session, agency_id, actor="admin", now=now)
    session.commit()
    return {"agency_id": agency_id, "was_disabled": was}


@router.post("/agencies/{agency_id}/test-notification", response_model=TestSentOut,
             status_code=202, responses=errors(401, 403, 404),
             operation_id="send_test_notification",
             summary="Queue a test notification on every channel of the agency (admin, "
             "audited)")
def post_test(agency_id: AgencyId, caller: AdminDep, session: SessionDep,
              now: NowDep) -> dict[str, Any]:
    ids = engine.send_test(session, agency_id, actor="admin", now=now)
    session.commit()
    return {"agency_id": agency_id, "notifications": ids}
