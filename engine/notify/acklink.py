"""Signed, expiring acknowledge links for mail: who may acknowledge which escalation.

A token names one escalation and the one agency the mail went to, until an expiry, and is
signed with HMAC-SHA256 under ``REFERRAL_LINK_SECRET``: nobody can make one for another
escalation or agency, and nothing is stored. It is single-use because the acknowledgement
itself is: a second use finds the escalation acknowledged and is refused. Opening the link
only shows a confirmation form (mail scanners follow links); the form's POST acknowledges.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.errors import InvalidInput

LIFETIME = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class AckGrant:
    escalation_id: int
    agency_id: int
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, body: str) -> str:
    return _b64(hmac.new(secret.encode("utf-8"), body.encode("ascii"), hashlib.sha256).digest())


def make_token(secret: str, escalation_id: int, agency_id: int, *, now: datetime) -> str:
    """A token for ``agency_id`` to acknowledge ``escalation_id`` until ``now + LIFETIME``."""
    expires = int((now + LIFETIME).timestamp())
    body = _b64(json.dumps([escalation_id, agency_id, expires]).encode("ascii"))
    return f"{body}.{_sign(secret, body)}"


def read_token(secret: str, token: str, *, now: datetime) -> AckGrant:
    """What ``token`` grants; InvalidInput when it is forged, damaged or expired."""
    body, _, signature = token.partition(".")
    if not body or not hmac.compare_digest(signature.encode(), _sign(secret, body).encode()):
        raise InvalidInput("this acknowledge link is not valid", field="token")
    try:
        escalation_id, agency_id, expires = json.loads(_unb64(body))
    except (ValueError, TypeError):
        raise InvalidInput("this acknowledge link is not valid", field="token") from None
    expires_at = datetime.fromtimestamp(int(expires), tz=now.tzinfo)
    if now >= expires_at:
        raise InvalidInput("this acknowledge link has expired; acknowledge from the case "
                           "page or the API instead", field="token")
    return AckGrant(int(escalation_id), int(agency_id), expires_at)
