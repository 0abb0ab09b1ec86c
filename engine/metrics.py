"""Prometheus metrics computed from the database at scrape time.

Counts come from the durable rows (events, timers, notifications, delivery attempts), not
from in-process counters, so any API process answers correctly however many workers run
and however often they restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import Float, case, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from engine.store.tables import Case, CaseEvent, DeliveryAttempt, Notification, Timer

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# Timer rows that are due and not yet handled by a tick.
_WAITING_TIMER = ("pending", "firing")
# Due to delivered: seconds to days (a retried webhook waits hours by design).
LATENCY_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0, 3 * 86400.0)
# One attempt: a fast receiver to the webhook timeout.
ATTEMPT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 30.0)


class DatabaseCollector(Collector):
    """Reads every metric from one session at ``now``."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session = session
        self.now = now

    def collect(self) -> Iterator[Metric]:
        s = self.session
        events = CounterMetricFamily(
            "referral_case_events", "Audit events written, by kind.", labels=["kind"]
        )
        for kind, count in sorted(_count_by(s, CaseEvent.kind).items()):
            events.add_metric([kind], count)
        yield events

        timers = _count_by(s, Timer.status)
        yield CounterMetricFamily(
            "referral_timers_fired", "Timers (and ladder steps) fired.",
            value=timers.get("fired", 0),
        )
        pending = GaugeMetricFamily("referral_timers", "Timer rows by status.", labels=["status"])
        for status in sorted(timers):
            pending.add_metric([status], timers[status])
        yield pending

        oldest_due = s.scalar(
            select(func.min(Timer.due_at)).where(
                Timer.status.in_(_WAITING_TIMER), Timer.due_at <= self.now
            )
        )
        overdue = s.scalar(
            select(func.count()).select_from(Timer).where(
                Timer.status.in_(_WAITING_TIMER), Timer.due_at <= self.now
            )
        )
        lag = max(0.0, (self.now - oldest_due).total_seconds()) if oldest_due else 0.0
        yield GaugeMetricFamily(
            "referral_tick_lag_seconds",
            "Now minus the due time of the oldest due timer not yet fired (0 when none).",
            value=lag,
        )
        yield GaugeMetricFamily(
            "referral_timers_overdue", "Timers due but not yet fired.", value=overdue or 0
        )

        notes = _count_by(s, Notification.status)
        yield CounterMetricFamily(
            "referral_notifications_delivered", "Notifications delivered.",
            value=notes.get("delivered", 0),
        )
        yield CounterMetricFamily(
            "referral_notifications_dead_lettered",
            "Notifications given up on after the last attempt.",
            value=notes.get("dead", 0),
        )
        by_status = GaugeMetricFamily(
            "referral_notifications", "Notification rows by status.", labels=["status"]
        )
        for status in sorted(notes):
            by_status.add_metric([status], notes[status])
        yield by_status

        failed = s.scalar(
            select(func.count()).select_from(DeliveryAttempt).where(
                DeliveryAttempt.outcome != "delivered"
            )
        )
        yield CounterMetricFamily(
            "referral_delivery_attempts_failed",
            "Delivery attempts that did not deliver (retried, gone or dead).",
            value=failed or 0,
        )

        due = s.scalar(
            select(func.count()).select_from(Notification).where(
                Notification.status == "pending", Notification.next_attempt_at <= self.now
            )
        )
        yield GaugeMetricFamily(
            "referral_notifications_queue_depth",
            "Notifications due for delivery now and not yet sent.", value=due or 0,
        )
        yield _histogram(
            s, Notification.latency_seconds, LATENCY_BUCKETS,
            "referral_notification_latency_seconds",
            "Due time (a timer's, else the event's) to delivery, per delivered notification.",
        )
        yield _histogram(
            s, DeliveryAttempt.duration_seconds, ATTEMPT_BUCKETS,
            "referral_delivery_attempt_duration_seconds",
            "Time one delivery attempt took, whatever its outcome.",
        )

        open_cases = s.scalar(
            select(func.count()).select_from(Case).where(Case.closed_at.is_(None))
        )
        yield GaugeMetricFamily("referral_cases_open", "Cases not closed.", value=open_cases or 0)


def _histogram(
    session: Session, column: InstrumentedAttribute[float | None], bounds: tuple[float, ...],
    name: str, documentation: str,
) -> HistogramMetricFamily:
    """A histogram of a timing column, bucketed in one query from the durable rows, so
    every process serving /metrics reports the same counts."""
    present = column.is_not(None)
    cells = [func.count(column), func.coalesce(func.sum(column), 0.0).cast(Float)]
    cells += [func.coalesce(func.sum(case((column <= b, 1), else_=0)), 0) for b in bounds]
    row = session.execute(select(*cells).where(present)).one()
    total, summed, counts = int(row[0]), float(row[1]), [int(c) for c in row[2:]]
    buckets = [(_le(b), c) for b, c in zip(bounds, counts, strict=True)] + [("+Inf", total)]
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=summed)


def _le(bound: float) -> str:
    return repr(float(bound))


def _count_by(session: Session, column: InstrumentedAttribute[str]) -> dict[str, int]:
    """Rows of ``column``'s table counted by its value."""
    return {
        value: count
        for value, count in session.execute(select(column, func.count()).group_by(column))
    }


class _Forward(Collector):
    """Another registry's metrics, exposed alongside the database's."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


def render(
    session: Session, *, now: datetime, process: CollectorRegistry | None = None
) -> bytes:
    """The Prometheus text exposition of every metric, read from ``session`` now, plus
    the serving process's own (``process``) when given."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(session, now))
    if process is not None:
        registry.register(_Forward(process))
    return generate_latest(registry)
