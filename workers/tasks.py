"""Celery tasks: thin edges that parse ids, open sessions and call one engine function.

Deliveries are enqueued only after the rows they name are committed (the engine functions
commit before returning); if enqueueing fails, the sweep finds the rows later. No task is
ever scheduled with an ETA or countdown: due times live in the database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from celery import Task, shared_task

import engine
from engine import clock, tracing
from workers.app import QUEUE, ReferralCelery, Runtime

logger = logging.getLogger(__name__)


def _runtime(task: Task) -> Runtime:
    app = task.app
    if not isinstance(app, ReferralCelery):
        raise RuntimeError("referral tasks need the app built by workers.app.create_app")
    return app.runtime


def parse_now(value: str | None) -> datetime:
    """``now`` given by the caller (a replay or a test's virtual clock) or the wall clock."""
    if value is None:
        return clock.utcnow()
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _chunks(ids: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def enqueue_deliveries(runtime: Runtime, ids: Sequence[int], now: str | None) -> int:
    """One delivery task per batch of committed outbox rows; returns how many enqueued.

    Rows are marked enqueued (and committed) before the message goes out, so the delivery
    task never finds them locked by this marking; if sending fails the mark is taken back,
    and if this process dies in between, the sweep re-enqueues them once the mark is stale.
    """
    if not ids:
        return 0
    tracing.set_attribute("referral.enqueued", len(ids))
    factory = runtime.session_factory()
    with factory() as session, session.begin():
        engine.mark_enqueued(session, ids, now=parse_now(now))
    sent = 0
    chunks = list(_chunks(ids, runtime.settings.delivery_batch_size))
    for index, chunk in enumerate(chunks):
        try:
            deliver.apply_async(args=(chunk,), kwargs={"now": now}, queue=QUEUE)
        except Exception:
            logger.exception("could not enqueue deliveries; the sweep will hand them out")
            unsent = [i for c in chunks[index:] for i in c]
            with factory() as session, session.begin():
                engine.mark_enqueued(session, unsent, now=None)
            break
        sent += len(chunk)
    return sent


@shared_task(bind=True, name="referral.tick", ignore_result=True)
def tick(self: Task, now: str | None = None) -> dict[str, Any]:
    """Fire every due timer in bounded batches, then enqueue their deliveries."""
    runtime = _runtime(self)
    settings = runtime.settings
    result = engine.tick(
        runtime.session_factory(),
        now=parse_now(now),
        batch_size=settings.tick_batch_size,
        lease_seconds=settings.claim_lease_seconds,
    )
    tracing.set_attribute("referral.fired", len(result.fired))
    enqueued = enqueue_deliveries(runtime, result.notification_ids, now)
    # Notices written by events since the last tick: no tick fired them.
    fresh = engine.never_enqueued(runtime.session_factory(), now=parse_now(now),
                                        limit=settings.delivery_batch_size * 20)
    enqueued += enqueue_deliveries(runtime, fresh, now)
    if result.fired or result.errors:
        logger.info(
            "tick fired %d timers (latest %.1fs overdue), enqueued %d deliveries",
            len(result.fired),
            result.max_overdue_seconds,
            enqueued,
        )
    return {"fired": len(result.fired), "errors": len(result.errors), "enqueued": enqueued}


@shared_task(bind=True, name="referral.deliver", ignore_result=True)
def deliver(self: Task, ids: list[int], now: str | None = None) -> dict[str, Any]:
    """Deliver a batch of outbox rows (those still due; the rest were handled already)."""
    runtime = _runtime(self)
    result = runtime.deliverer().deliver(
        runtime.session_factory(), now=parse_now(now), ids=[int(i) for i in ids]
    )
    tracing.set_attribute("referral.delivered", len(result.delivered))
    enqueue_deliveries(runtime, result.alerts, now)
    return {
        "delivered": len(result.delivered),
        "retried": len(result.retried),
        "dead": len(result.dead),
    }


@shared_task(bind=True, name="referral.sweep", ignore_result=True)
def sweep(self: Task, now: str | None = None) -> dict[str, Any]:
    """Re-enqueue outbox rows no queued task will deliver (never enqueued, lost, retries)."""
    runtime = _runtime(self)
    settings = runtime.settings
    ids = engine.to_enqueue(
        runtime.session_factory(),
        now=parse_now(now),
        stale_seconds=settings.claim_lease_seconds,
        limit=settings.delivery_batch_size * 20,
    )
    for chunk in _chunks(ids, settings.delivery_batch_size):
        deliver.apply_async(args=(chunk,), kwargs={"now": now}, queue=QUEUE)
    return {"enqueued": len(ids)}
