"""Which outbox rows go out now: due rows claimed for sending, with a lease.

A claim marks due rows ``sending`` until a lease runs out (PostgreSQL skips rows another
claimer holds, ``FOR UPDATE SKIP LOCKED``; SQLite's ``BEGIN IMMEDIATE`` makes claimers take
turns) and hands back what to send. The sweep (:mod:`engine.notify.sweep`) finds due rows
no queued task will pick up.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from engine.notify.channels import Message
from engine.notify.outbox import EMAIL, WEBHOOK, channels_for
from engine.store.tables import Agency, Notification

logger = logging.getLogger(__name__)


def _due_condition(now: datetime) -> Any:
    return or_(
        and_(Notification.status == "pending", Notification.next_attempt_at <= now),
        and_(Notification.status == "sending", Notification.claimed_until < now),
    )


def claim(
    session: Session,
    *,
    now: datetime,
    lease_until: datetime,
    limit: int,
    ids: list[int] | None = None,
) -> list[tuple[int, Message, str]]:
    """Mark up to ``limit`` due rows ``sending`` until ``lease_until``; return what to send.

    PostgreSQL skips rows other claimers hold (``FOR UPDATE SKIP LOCKED``); SQLite runs this
    under ``BEGIN IMMEDIATE``, so claimers take turns.
    """
    query = select(Notification.id).where(_due_condition(now))
    if ids is not None:
        if not ids:
            return []
        query = query.where(Notification.id.in_(ids))
    query = query.order_by(Notification.next_attempt_at, Notification.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        # Named rows are waited for (a sweep may hold them for an instant; skipping would
        # drop this task's work); an open-ended claim skips what others hold.
        query = query.with_for_update(skip_locked=ids is None)
    claimed = list(session.scalars(query))
    if not claimed:
        return []
    session.execute(
        update(Notification)
        .where(Notification.id.in_(claimed))
        .values(status="sending", claimed_until=lease_until)
    )
    rows = session.execute(
        select(Notification, Agency)
        .join(Agency, Agency.id == Notification.agency_id)
        .where(Notification.id.in_(claimed))
        .order_by(Notification.id)
    ).all()
    return [(row.id, _message(row, agency), _reroute(row, agency)) for row, agency in rows]


def _reroute(row: Notification, agency: Agency) -> str:
    """The channel to send on now: the row's own, or the agency's remaining channel when
    the row's was disabled or removed after the row was written (rather than dropping
    the notification). The new channel is stored on the row, so the record says so."""
    reachable = channels_for(agency)
    if row.channel not in (WEBHOOK, EMAIL) or row.channel in reachable:
        return row.channel
    logger.info("notification %s: %s is off for agency %s; sending by %s",
                row.message_id, row.channel, agency.id, reachable[0])
    row.channel = reachable[0]
    return row.channel


def _message(row: Notification, agency: Agency) -> Message:
    return Message(
        message_id=row.message_id,
        kind=row.kind,
        payload=dict(row.payload),
        agency_id=agency.id,
        agency_name=agency.name,
        webhook_url=agency.webhook_url,
        webhook_secret=agency.webhook_secret,
        email=agency.email,
        trace_parent=row.trace_parent,
    )
