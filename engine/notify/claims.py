"""Which outbox rows go out now: claimed for sending with a lease, or swept onto the queue.

A claim marks due rows ``sending`` until a lease runs out (PostgreSQL skips rows another
claimer holds, ``FOR UPDATE SKIP LOCKED``; SQLite's ``BEGIN IMMEDIATE`` makes claimers take
turns) and hands back what to send. The sweep finds due rows no queued task will pick up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

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


def to_enqueue(
    session_factory: sessionmaker[Session], *, now: datetime, stale_seconds: float, limit: int
) -> list[int]:
    """The sweep: due rows that no queued task will pick up; marks them enqueued now.

    Catches rows committed but never enqueued (a crash between commit and enqueue), retries
    whose backoff has run out, messages lost by the broker (enqueued long ago and still
    pending) and rows whose sender died holding the lease.
    """
    stale = now - timedelta(seconds=stale_seconds)
    with session_factory() as session, session.begin():
        query = (
            select(Notification.id)
            .where(
                or_(
                    and_(
                        Notification.status == "pending",
                        Notification.next_attempt_at <= now,
                        or_(
                            # A retry whose backoff ran out: nobody else will enqueue it.
                            and_(Notification.enqueued_at.is_(None), Notification.attempts > 0),
                            # New rows get a grace period: the tick that wrote them is
                            # probably about to enqueue them itself.
                            and_(
                                Notification.enqueued_at.is_(None),
                                Notification.created_at <= stale,
                            ),
                            Notification.enqueued_at < stale,
                        ),
                    ),
                    and_(Notification.status == "sending", Notification.claimed_until < now),
                )
            )
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list(session.scalars(query))
        if ids:
            mark_enqueued(session, ids, now=now)
    return ids


def mark_enqueued(
    session: Session, ids: Sequence[int], *, now: datetime | None
) -> None:
    """Record that a task for these rows is (about to be) on the queue; None: it is not."""
    session.execute(
        update(Notification)
        .where(Notification.id.in_(list(ids)), Notification.status == "pending")
        .values(enqueued_at=now)
    )
