"""The notification outbox: who is told, on which channel, with what payload.

Rows are written in the caller's transaction (the tick's, or delivery's for an alert), so a
notification exists exactly when the change that caused it committed. Delivery picks them
up later (:mod:`engine.notify.delivery`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.cases import access
from engine.cases.audit import append_event
from engine.definitions.model import COORDINATOR_ROLE, SYSTEM_ROLE, Definition
from engine.store.tables import Agency, Case, Notification

logger = logging.getLogger(__name__)

WEBHOOK, EMAIL, LOG = "webhook", "email", "log"


def new_message_id() -> str:
    """A stable id for one notification: its ``webhook-id`` on every retry."""
    return f"msg_{uuid.uuid4().hex}"


@dataclass(frozen=True, slots=True)
class Resolution:
    """Agencies to notify, each with the roles it is notified as."""

    by_agency: Mapping[int, tuple[str, ...]]
    # Roles nobody holds on the case, redirected to the coordinator (or nowhere, see below).
    unassigned: tuple[str, ...] = ()
    # True when unassigned roles had no coordinator to fall back to either.
    undeliverable: bool = False

    @property
    def agency_ids(self) -> list[int]:
        return sorted(self.by_agency)

    @property
    def roles(self) -> list[str]:
        held = {r for roles in self.by_agency.values() for r in roles}
        return sorted(held | set(self.unassigned))


@dataclass(slots=True)
class Written:
    notifications: list[Notification] = field(default_factory=list)

    @property
    def ids(self) -> list[int]:
        return [n.id for n in self.notifications]


class CaseFacts(Protocol):
    """What a notification payload reads of a case (an ORM row or a Core row)."""

    @property
    def id(self) -> int: ...
    @property
    def workflow(self) -> str: ...
    @property
    def workflow_version(self) -> int: ...
    @property
    def state(self) -> list[Any]: ...
    @property
    def data(self) -> dict[str, Any]: ...


def case_roles(session: Session, case_id: int) -> dict[str, int]:
    """role -> agency id for every role assigned on the case."""
    return access.assignments(session, case_id)


def plan(
    assigned: Mapping[str, int], roles: Iterable[str], *, case_id: int, reason: str
) -> tuple[Resolution, dict[str, Any] | None]:
    """Map roles to the agencies assigned on the case (``assigned``: role -> agency id).

    A role with no agency goes to the coordinator's agency; the second value is then the
    data of the ``warning`` audit event the caller must append (a notification is never
    dropped silently), else None.
    """
    by_agency: dict[int, list[str]] = {}
    unassigned: list[str] = []
    for role in dict.fromkeys(roles):
        agency_id = assigned.get(role)
        if agency_id is None:
            unassigned.append(role)
        else:
            by_agency.setdefault(agency_id, []).append(role)
    resolution = Resolution(by_agency={a: tuple(r) for a, r in by_agency.items()})
    if not unassigned:
        return resolution, None
    coordinator = assigned.get(COORDINATOR_ROLE)
    if coordinator is not None:
        bucket = by_agency.setdefault(coordinator, [])
        bucket.extend(r for r in unassigned if r not in bucket)
        message = "no agency holds these roles on the case; sent to the coordinator instead"
    else:
        message = "no agency holds these roles nor the coordinator role; nobody was notified"
        logger.error("case %s: %s (%s): %s", case_id, reason, unassigned, message)
    warning = {
        "warning": "unassigned_roles" if coordinator is not None else "undeliverable",
        "message": message,
        "roles": unassigned,
        "about": reason,
        "redirected_to_agency": coordinator,
    }
    resolution = Resolution(
        by_agency={a: tuple(r) for a, r in by_agency.items()},
        unassigned=tuple(unassigned),
        undeliverable=coordinator is None,
    )
    return resolution, warning


def resolve(
    session: Session,
    case: Case,
    roles: Iterable[str],
    *,
    now: datetime,
    reason: str,
    assigned: Mapping[str, int] | None = None,
) -> Resolution:
    """:func:`plan` for an ORM case, appending the warning event when there is one."""
    if assigned is None:
        assigned = case_roles(session, case.id)
    resolution, warning = plan(assigned, roles, case_id=case.id, reason=reason)
    if warning is not None:
        append_event(
            session,
            case,
            kind="warning",
            at=now,
            role=SYSTEM_ROLE,
            agency_id=None,
            from_state=tuple(case.state),
            to_state=tuple(case.state),
            data=warning,
        )
    return resolution


class Reachable(Protocol):
    """What :func:`channels_for` reads of an agency (an ORM row or a Core row)."""

    @property
    def webhook_url(self) -> str | None: ...
    @property
    def webhook_secret(self) -> str | None: ...
    @property
    def webhook_disabled_at(self) -> datetime | None: ...
    @property
    def email(self) -> str | None: ...


def channels_for(agency: Reachable, *, exclude: str | None = None) -> list[str]:
    """The channels an agency is reached on: webhook and/or email, else the log."""
    channels: list[str] = []
    if agency.webhook_url and agency.webhook_secret and agency.webhook_disabled_at is None:
        channels.append(WEBHOOK)
    if agency.email:
        channels.append(EMAIL)
    channels = [c for c in channels if c != exclude]
    return channels or [LOG]


def visible_fields(
    defn: Definition, data: Mapping[str, Any], roles: Iterable[str]
) -> dict[str, Any]:
    """Only the case fields a reader holding ``roles`` on the case may see."""
    shown, _withheld = access.filter_fields(defn, data, frozenset(roles))
    return shown


def case_payloads(
    case: CaseFacts,
    defn: Definition,
    resolution: Resolution,
    assigned: Mapping[str, int],
    agencies: Mapping[int, Reachable],
    *,
    kind: str,
    info: Mapping[str, Any],
) -> list[tuple[int, str, dict[str, Any]]]:
    """(agency id, channel, payload) per outbox row: each payload what that agency may see."""
    rows: list[tuple[int, str, dict[str, Any]]] = []
    for agency_id, roles in sorted(resolution.by_agency.items()):
        # Visibility follows every role the agency holds on the case, not only those
        # this notification is addressed to.
        held = {r for r, a in assigned.items() if a == agency_id}
        payload: dict[str, Any] = {
            "type": kind,
            "case_id": case.id,
            "workflow": case.workflow,
            "version": case.workflow_version,
            "state": list(case.state),
            **info,
            "roles": list(roles),
            "fields": visible_fields(defn, case.data or {}, held),
        }
        rows.extend((agency_id, channel, payload) for channel in channels_for(agencies[agency_id]))
    return rows


def write_case_notifications(
    session: Session,
    case: Case,
    defn: Definition,
    resolution: Resolution,
    *,
    kind: str,
    info: Mapping[str, Any],
    now: datetime,
    assigned: Mapping[str, int] | None = None,
) -> Written:
    """One outbox row per (agency, channel), each with the payload that agency may see."""
    written = Written()
    if not resolution.by_agency:
        return written
    if assigned is None:
        assigned = case_roles(session, case.id)
    agencies = {
        a.id: a
        for a in session.scalars(select(Agency).where(Agency.id.in_(resolution.by_agency)))
    }
    for agency_id, channel, payload in case_payloads(
        case, defn, resolution, assigned, agencies, kind=kind, info=info
    ):
        written.notifications.append(
            _add(session, case_id=case.id, agency_id=agency_id, channel=channel, kind=kind,
                 payload=payload, now=now)
        )
    session.flush()
    return written


def write_alert(
    session: Session,
    *,
    case_id: int | None,
    agency_id: int,
    kind: str,
    payload: Mapping[str, Any],
    now: datetime,
    exclude_channel: str | None = None,
) -> list[Notification]:
    """Notify one agency directly (e.g. a dead-letter alert to the coordinator)."""
    agency = session.get(Agency, agency_id)
    if agency is None:
        return []
    rows = [
        _add(session, case_id=case_id, agency_id=agency_id, channel=channel, kind=kind,
             payload=dict(payload), now=now)
        for channel in channels_for(agency, exclude=exclude_channel)
    ]
    session.flush()
    return rows


def _add(
    session: Session,
    *,
    case_id: int | None,
    agency_id: int,
    channel: str,
    kind: str,
    payload: Mapping[str, Any],
    now: datetime,
) -> Notification:
    message_id = new_message_id()
    row = Notification(
        message_id=message_id,
        case_id=case_id,
        agency_id=agency_id,
        channel=channel,
        kind=kind,
        payload={**payload, "message_id": message_id},
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    return row


def pending_ids(notifications: Sequence[Notification]) -> list[int]:
    return [n.id for n in notifications if n.status == "pending"]
