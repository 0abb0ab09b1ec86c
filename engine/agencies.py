"""Agencies: who acts on cases, how they authenticate, and where they are notified.

API tokens are random, shown once and stored only as a sha256 digest. A webhook agency
also gets a Standard Webhooks signing secret (``whsec_`` + base64 of 24 random bytes),
likewise shown once; it is kept because the engine signs with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import Conflict, InvalidInput, NotFound
from engine.store.tables import Agency

TOKEN_BYTES = 32
WEBHOOK_SECRET_BYTES = 24


@dataclass(frozen=True, slots=True)
class NewAgency:
    """A freshly created agency with its secrets, which are never retrievable again."""

    agency: Agency
    token: str
    webhook_secret: str | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(WEBHOOK_SECRET_BYTES)).decode("ascii")


def _check_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > 200:
        raise InvalidInput("an agency name must be 1 to 200 characters", field="name")
    return cleaned


def _check_webhook(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise InvalidInput(f"webhook must be an http(s) URL, got {url!r}", field="webhook")
    return url


def _check_email(address: str) -> str:
    """The normalised address, checked by email-validator (syntax only, no DNS: the
    engine may run air-gapped). A newline would smuggle headers into the mail."""
    try:
        checked = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"not an email address: {address!r} ({exc})",
                           field="email") from None
    return str(checked.normalized)


def add_agency(
    session: Session,
    *,
    name: str,
    webhook: str | None = None,
    email: str | None = None,
    now: datetime,
) -> NewAgency:
    """Create an agency; the returned token (and webhook secret) are shown once only."""
    name = _check_name(name)
    if session.scalar(select(Agency.id).where(Agency.name == name)) is not None:
        raise Conflict(f"an agency named {name!r} already exists", field="name")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    secret = new_webhook_secret() if webhook else None
    agency = Agency(
        name=name,
        token_hash=hash_token(token),
        webhook_url=_check_webhook(webhook) if webhook else None,
        webhook_secret=secret,
        email=_check_email(email) if email else None,
        created_at=now,
    )
    session.add(agency)
    session.flush()
    return NewAgency(agency=agency, token=token, webhook_secret=secret)


def authenticate(session: Session, token: str) -> Agency | None:
    """The agency holding ``token``, or None."""
    if not token:
        return None
    digest = hash_token(token)
    agency = session.scalar(select(Agency).where(Agency.token_hash == digest))
    if agency is None or not hmac.compare_digest(agency.token_hash, digest):
        return None
    return agency


def agency_by_name(session: Session, name: str) -> Agency:
    agency = session.scalar(select(Agency).where(Agency.name == name.strip()))
    if agency is None:
        raise NotFound(f"no agency named {name!r}", agency=name)
    return agency


def agency_by_id(session: Session, agency_id: int) -> Agency:
    agency = session.get(Agency, agency_id)
    if agency is None:
        raise NotFound(f"no agency with id {agency_id}", agency_id=agency_id)
    return agency


def list_agencies(session: Session) -> list[Agency]:
    return list(session.scalars(select(Agency).order_by(Agency.name)))
