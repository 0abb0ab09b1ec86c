"""The sweep: due outbox rows no queued task will pick up, enqueued again (Celery mode)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.store.tables import Notification


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


def never_enqueued(
    session_factory: sessionmaker[Session], *, now: datetime, limit: int
) -> list[int]:
    """Due rows nobody has enqueued yet: those written by events (an API request opens a
    case and tells its referrer), which no tick hands out. The tick enqueues them after
    its own, so a notice goes out within one tick instead of waiting for the sweep's
    grace period. Enqueueing a row twice is harmless: delivery claims it once."""
    with session_factory() as session, session.begin():
        query = (
            select(Notification.id)
            .where(Notification.status == "pending", Notification.enqueued_at.is_(None),
                   Notification.attempts == 0, Notification.next_attempt_at <= now)
            .order_by(Notification.id)
            .limit(limit)
        )
        # Not marked here: the caller's enqueue marks them just before sending.
        return list(session.scalars(query))
