"""Agencies (admin): create one and receive its token, shown once."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.auth import AdminDep
from api.deps import NowDep, SessionDep
from api.schemas import AgencyCreatedOut, AgencyIn, errors
from engine import add_agency

router = APIRouter(tags=["agencies"])


@router.post(
    "/agencies",
    status_code=201,
    response_model=AgencyCreatedOut,
    responses=errors(401, 403, 409, 413, 415, 422),
    summary="Add an agency (admin); the response holds its API token, shown once",
)
def post_agency(
    body: AgencyIn, caller: AdminDep, session: SessionDep, now: NowDep
) -> dict[str, Any]:
    created = add_agency(session, name=body.name, webhook=body.webhook, email=body.email, now=now)
    session.commit()
    agency = created.agency
    return {
        "id": agency.id,
        "name": agency.name,
        "token": created.token,
        "webhook_secret": created.webhook_secret,
        "webhook": agency.webhook_url,
        "email": agency.email,
    }
