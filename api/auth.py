"""Bearer-token authentication: an agency's token acts as that agency; the admin token
from the settings (``REFERRAL_ADMIN_TOKEN``) manages workflows and agencies and reads
everything. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import RuntimeDep, SessionDep
from engine import authenticate
from engine.errors import Forbidden, Unauthenticated

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An agency's API token (from `referral agency add` or `POST /agencies`) "
    "or the admin token (`REFERRAL_ADMIN_TOKEN`).",
)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: an agency, or the administrator (``agency_id`` None)."""

    agency_id: int | None
    name: str

    @property
    def is_admin(self) -> bool:
        return self.agency_id is None


ADMIN = Caller(agency_id=None, name="admin")


def _is_admin_token(token: str, admin_token: str | None) -> bool:
    if not admin_token:
        return False
    return hmac.compare_digest(token.encode("utf-8"), admin_token.encode("utf-8"))


def current_caller(
    rt: RuntimeDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    if credentials is None:
        raise Unauthenticated("send `Authorization: Bearer TOKEN` with an agency or admin token")
    token = credentials.credentials
    secret = rt.settings.admin_token
    if _is_admin_token(token, secret.get_secret_value() if secret else None):
        return ADMIN
    agency = authenticate(session, token)
    if agency is None:
        raise Unauthenticated("the bearer token is not valid")
    return Caller(agency_id=agency.id, name=agency.name)


def admin_caller(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    if not caller.is_admin:
        raise Forbidden("this needs the admin token", caller=caller.name)
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]
AdminDep = Annotated[Caller, Depends(admin_caller)]
