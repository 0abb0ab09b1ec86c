"""The relational schema: deployed definitions, agencies, cases, audit, timers, outbox.

Times are stored as naive UTC and handed back as aware UTC datetimes on every database,
so comparisons never mix naive and aware values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in Python, naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONType, list[Any]: JSONType}


class WorkflowVersion(Base):
    """A deployed (workflow, version): immutable source text and its hash."""

    __tablename__ = "workflow_versions"
    __table_args__ = (UniqueConstraint("workflow", "version", name="uq_workflow_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workflow: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    deployed_at: Mapped[datetime]


class Agency(Base):
    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # sha256 of the bearer token; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    webhook_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    # Kept in the clear because the engine must sign with it (``whsec_...``).
    webhook_secret: Mapped[str | None] = mapped_column(String(200), default=None)
    webhook_disabled_at: Mapped[datetime | None] = mapped_column(default=None)
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    created_at: Mapped[datetime]


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workflow_version_id: Mapped[int] = mapped_column(ForeignKey("workflow_versions.id"))
    workflow: Mapped[str] = mapped_column(String(64))
    workflow_version: Mapped[int] = mapped_column(Integer)
    # Sorted active leaf state paths (one per parallel track).
    state: Mapped[list[Any]]
    data: Mapped[dict[str, Any]]
    # {milestone: {"at": iso, "agency_id": int | None, "role": str}}
    milestones: Mapped[dict[str, Any]]
    # Optimistic concurrency: bumped by every write; UPDATE ... WHERE revision = :seen.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    # Head of the audit hash chain, so appending needs no read of the last event.
    last_event_hash: Mapped[str] = mapped_column(String(64), default="")
    last_event_seq: Mapped[int] = mapped_column(Integer, default=0)


class CaseAssignment(Base):
    """Which agency holds which role on a case."""

    __tablename__ = "case_assignments"
    __table_args__ = (Index("ix_case_assignments_agency", "agency_id", "case_id"),)

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(64), primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))


class CaseEvent(Base):
    """Append-only audit history, hash-chained per case."""

    __tablename__ = "case_events"
    __table_args__ = (UniqueConstraint("case_id", "seq", name="uq_case_event_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    # opened, transition, milestone, timer_fired, reminder, escalation, ack, assign,
    # warning, delivery_failed, ...
    kind: Mapped[str] = mapped_column(String(32))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), default=None)
    role: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str | None] = mapped_column(String(64), default=None)
    from_state: Mapped[list[Any]]
    to_state: Mapped[list[Any]]
    # Field changes and other facts of the event (timer name, escalation id, ...).
    data: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Timer(Base):
    """A durable deadline. Due and unfired is decided from these rows only."""

    __tablename__ = "timers"
    __table_args__ = (
        Index("ix_timers_due", "status", "due_at"),
        Index("ix_timers_case", "case_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    name: Mapped[str] = mapped_column(String(64))
    # The state path whose entry started it; leaving that state cancels it.
    state: Mapped[str] = mapped_column(String(200))
    # 0: the timer itself (reminder or fire); k >= 1: the k-th escalation step.
    step: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime]
    # pending, firing (claimed, lease until claimed_until), fired, cancelled, stopped
    status: Mapped[str] = mapped_column(String(16), default="pending")
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    fired_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]
    # The W3C traceparent of the request that started the timer (null when not traced).
    trace_parent: Mapped[str | None] = mapped_column(String(64), default=None)


class Escalation(Base):
    """A reminder (step 0) or escalation step sent to agencies, which they acknowledge."""

    __tablename__ = "escalations"
    __table_args__ = (Index("ix_escalations_case", "case_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    timer_id: Mapped[int] = mapped_column(ForeignKey("timers.id"))
    timer_name: Mapped[str] = mapped_column(String(64))
    step: Mapped[int] = mapped_column(Integer)
    roles: Mapped[list[Any]]
    agency_ids: Mapped[list[Any]]
    created_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), default=None)


class Notification(Base):
    """Outbox row, written in the same transaction as the change that caused it."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_due", "status", "next_attempt_at"),
        Index("ix_notifications_case", "case_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Stable across retries: the Standard Webhooks ``webhook-id`` and de-duplication key.
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), default=None)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    channel: Mapped[str] = mapped_column(String(16))  # webhook, email, log
    kind: Mapped[str] = mapped_column(String(32))  # reminder, escalation, dead_letter, ...
    payload: Mapped[dict[str, Any]]
    # pending, sending, delivered, dead
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    enqueued_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    # Seconds from when it was due (its timer's due time, else its writing) to delivery.
    latency_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime]
    # Copied from the timer (or taken from the request) that caused the notification.
    trace_parent: Mapped[str | None] = mapped_column(String(64), default=None)


class DeliveryAttempt(Base):
    """Every delivery attempt, successful or not: nothing is dropped silently."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (Index("ix_delivery_attempts_notification", "notification_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id"))
    at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))  # delivered, retry, gone, dead
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    duration_seconds: Mapped[float | None] = mapped_column(Float, default=None)


class OperationEvent(Base):
    """An operator's action on delivery (replay, re-enable, test): who, what, when.

    Not a case event: these act on notifications and endpoints, often of no case, and the
    case's hash chain records only what happened to the case.
    """

    __tablename__ = "operation_events"
    __table_args__ = (Index("ix_operation_events_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))  # "admin" (API) or "cli"
    action: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]]
