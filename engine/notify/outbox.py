"""The notification outbox: who is told, on which channel, with what payload.

:func:`plan` decides who is told, :func:`plan_rows` and :func:`alert_rows` make the rows
(the one place a notification row is made), and
:func:`engine.store.writers.add_notifications` writes them in the caller's transaction
(the tick's, or delivery's for an alert), so a notification exists exactly when the
change that caused it committed. Delivery picks them
up later (:mod:`engine.notify.delivery`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from engine.cases import access
from engine.definitions.model import COORDINATOR_ROLE, Definition
from engine.store.caserow import CaseRow

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


def _row(
    *, case_id: int | None, agency_id: int, channel: str, kind: str,
    payload: Mapping[str, Any], now: datetime, trace_parent: str | None = None,
) -> dict[str, Any]:
    """One outbox row, its stable ``message_id`` also in the payload it sends."""
    message_id = new_message_id()
    return {
        "message_id": message_id, "case_id": case_id, "agency_id": agency_id,
        "channel": channel, "kind": kind,
        "payload": {"at": now.isoformat(), **payload, "message_id": message_id},
        "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
        "trace_parent": trace_parent,
    }


def plan_rows(
    case: CaseRow,
    defn: Definition,
    resolution: Resolution,
    assigned: Mapping[str, int],
    agencies: Mapping[int, Reachable],
    *,
    kind: str,
    info: Mapping[str, Any],
    now: datetime,
    trace_parent: str | None = None,
) -> list[dict[str, Any]]:
    """One outbox row per (agency, channel), each payload only what that agency may see;
    ``trace_parent`` links its delivery to the trace behind it (a timer's)."""
    rows: list[dict[str, Any]] = []
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
        for channel in channels_for(agencies[agency_id]):
            # Mail is read on phones and forwarded: by default it says what happened and
            # links to the case, with no field value, unless the workflow opts in.
            bare = channel == EMAIL and not defn.email_fields
            sent = {**payload, "fields": {}} if bare else payload
            rows.append(_row(case_id=case.id, agency_id=agency_id, channel=channel,
                             kind=kind, payload=sent, now=now, trace_parent=trace_parent))
    return rows


def alert_rows(
    agency_id: int,
    agency: Reachable,
    *,
    case_id: int | None,
    kind: str,
    payload: Mapping[str, Any],
    now: datetime,
    exclude_channel: str | None = None,
) -> list[dict[str, Any]]:
    """Rows that tell one agency directly (a dead-letter alert to the coordinator)."""
    return [
        _row(case_id=case_id, agency_id=agency_id, channel=channel, kind=kind,
             payload=payload, now=now)
        for channel in channels_for(agency, exclude=exclude_channel)
    ]
