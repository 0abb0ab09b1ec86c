"""Operations on delivery: list dead letters, replay them, re-enable a disabled webhook,
send a test notification. Every action is audited in ``operation_events``.

Like the service, each function takes a session and ``now``, flushes and never commits;
the edge (API handler, CLI command) commits once. Listings are for the administrator: a
dead letter's payload (case fields) is never listed, only what identifies it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.agencies import agency_by_id
from engine.errors import InvalidInput, NotFound
from engine.notify.outbox import alert_rows
from engine.store import writers
from engine.store.fastpath import cursor_for
from engine.store.tables import Notification, OperationEvent

MAX_REPLAY = 1000
TEST_TEXT = "This is a test notification from the referral engine: no action is needed."


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    message_id: str
    case_id: int | None
    agency_id: int
    channel: str
    kind: str
    attempts: int
    last_error: str | None
    created_at: datetime


def _audit(session: Session, *, actor: str, action: str, now: datetime,
           **details: Any) -> None:
    session.add(OperationEvent(at=now, actor=actor, action=action, details=details))


def dead_letters(session: Session, *, limit: int = 100, offset: int = 0) -> list[DeadLetter]:
    """Dead-lettered notifications, oldest first (their payloads left out)."""
    rows = session.scalars(
        select(Notification).where(Notification.status == "dead")
        .order_by(Notification.id).limit(limit).offset(offset)
    )
    return [DeadLetter(n.id, n.message_id, n.case_id, n.agency_id, n.channel, n.kind,
                       n.attempts, (n.last_error or "")[:300] or None, n.created_at)
            for n in rows]


def replay(
    session: Session, ids: Sequence[int] | None, *, actor: str, now: datetime
) -> list[int]:
    """Send dead letters again from a fresh attempt count, with their original message
    ids (receivers de-duplicate on them); ``ids`` None replays every dead letter."""
    query = select(Notification.id).where(Notification.status == "dead")
    if ids is not None:
        if not ids or len(ids) > MAX_REPLAY:
            raise InvalidInput(f"replay 1 to {MAX_REPLAY} notifications at a time",
                               field="ids")
        query = query.where(Notification.id.in_(list(ids)))
    found = sorted(session.scalars(query.limit(MAX_REPLAY)))
    missing = sorted(set(ids or ()) - set(found))
    if missing:
        raise NotFound(f"no dead-lettered notification with id {missing[0]}",
                       notification_id=missing[0])
    if found:
        session.execute(
            update(Notification).where(Notification.id.in_(found)).values(
                status="pending", attempts=0, next_attempt_at=now, claimed_until=None,
                enqueued_at=None,
            )
        )
    _audit(session, actor=actor, action="replay", now=now, notification_ids=found)
    session.flush()
    return found


def enable_webhook(session: Session, agency_id: int, *, actor: str, now: datetime) -> bool:
    """Re-enable an agency's webhook that a 410 disabled; False when it was not."""
    agency = agency_by_id(session, agency_id)
    if agency.webhook_url is None:
        raise InvalidInput(f"agency {agency.name!r} has no webhook", field="agency")
    was_disabled = agency.webhook_disabled_at is not None
    agency.webhook_disabled_at = None
    _audit(session, actor=actor, action="enable_webhook", now=now, agency_id=agency_id,
           was_disabled=was_disabled)
    session.flush()
    return was_disabled


def send_test(session: Session, agency_id: int, *, actor: str, now: datetime) -> list[int]:
    """Queue a test notification to every channel the agency is reached on."""
    agency = agency_by_id(session, agency_id)
    rows = alert_rows(agency_id, agency, case_id=None, kind="test",
                      payload={"type": "test", "text": TEST_TEXT}, now=now)
    session.flush()
    ids = writers.add_notifications(cursor_for(session), rows)
    _audit(session, actor=actor, action="test_notification", now=now, agency_id=agency_id,
           notification_ids=ids)
    session.flush()
    return ids


def operation_log(session: Session, *, limit: int = 100) -> list[dict[str, Any]]:
    """The latest operator actions, newest first."""
    rows = session.scalars(select(OperationEvent).order_by(OperationEvent.id.desc())
                           .limit(limit))
    return [{"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "action": e.action,
             "details": e.details} for e in rows]
