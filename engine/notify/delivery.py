"""Delivering outbox rows: claim in batches with a lease, send, record every attempt.

A notification is claimed (status ``sending`` until ``claimed_until``), sent with no
transaction open, and its outcome recorded in a short transaction of its own batch:
delivered, retried later with exponential backoff and jitter (honouring ``Retry-After``),
or dead-lettered after the last attempt (or a 410, which also disables the endpoint), in
which case the coordinator is alerted through its own channel. A worker that dies after
sending but before recording leaves the lease to expire; the row is then sent again with
the same ``message_id``: at least once, de-duplicable by the receiver.
"""

from __future__ import annotations

import contextvars
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from engine import clock
from engine.cases.access import holders
from engine.cases.audit import plan_event
from engine.definitions.model import COORDINATOR_ROLE, SYSTEM_ROLE
from engine.notify.channels import Channel, Message, SendResult
from engine.notify.channels.log import LogChannel
from engine.notify.channels.smtp import EmailChannel, SmtpConfig
from engine.notify.channels.webhook import WebhookChannel
from engine.notify.claims import claim
from engine.notify.facts import DEAD_LETTER, alert_payload, dead_facts, due_time
from engine.notify.outbox import EMAIL, LOG, WEBHOOK, alert_rows
from engine.settings import Settings
from engine.store import caserow, writers
from engine.store.fastpath import cursor_for
from engine.store.tables import Agency, DeliveryAttempt, Notification

logger = logging.getLogger(__name__)

__all__ = ["DEAD_LETTER", "Deliverer", "DeliveryResult", "Policy", "build_channels"]
MAX_BACKOFF_EXPONENT = 30


@dataclass(slots=True)
class DeliveryResult:
    claimed: int = 0
    delivered: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)
    # Outbox rows written by this pass (dead-letter alerts), to be delivered next.
    alerts: list[int] = field(default_factory=list)

    def merge(self, other: DeliveryResult) -> None:
        self.claimed += other.claimed
        self.delivered += other.delivered
        self.retried += other.retried
        self.dead += other.dead
        self.alerts += other.alerts


@dataclass(frozen=True, slots=True)
class Policy:
    """Retry and batching rules, normally taken from :class:`Settings`."""

    max_attempts: int = 8
    backoff_seconds: float = 30.0
    backoff_max_seconds: float = 6 * 3600.0
    lease_seconds: int = 120
    batch_size: int = 100
    concurrency: int = 8
    # Longest one attempt may take (the channels' timeout), to size the claim's lease.
    send_timeout_seconds: float = 15.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            max_attempts=settings.delivery_max_attempts,
            backoff_seconds=settings.delivery_backoff_seconds,
            backoff_max_seconds=settings.delivery_backoff_max_seconds,
            lease_seconds=settings.claim_lease_seconds,
            batch_size=settings.delivery_batch_size,
            send_timeout_seconds=settings.webhook_timeout_seconds,
        )

    def lease_for(self, limit: int) -> timedelta:
        """Long enough for a whole batch of slow endpoints, so a live sender is never
        overtaken by a reclaim (which would send twice without any crash)."""
        rounds = -(-limit // max(1, self.concurrency))
        return timedelta(seconds=self.lease_seconds + rounds * self.send_timeout_seconds)

    def backoff(self, attempts: int, rng: random.Random, retry_after: float | None) -> float:
        """Exponential backoff with jitter, never sooner than the receiver asked."""
        # The exponent is capped: a float times 2**1024 overflows, and 2**30 backoffs
        # are past any sane maximum already.
        exponent = min(max(0, attempts - 1), MAX_BACKOFF_EXPONENT)
        delay = min(self.backoff_max_seconds, self.backoff_seconds * 2.0**exponent)
        delay *= rng.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay


def build_channels(
    settings: Settings, *, wall_clock: Callable[[], datetime] = clock.utcnow
) -> dict[str, Channel]:
    return {
        WEBHOOK: WebhookChannel(timeout=settings.webhook_timeout_seconds, wall_clock=wall_clock),
        EMAIL: EmailChannel(SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_sender,
            tls=settings.smtp_tls,
            user=settings.smtp_user,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password
            else None,
            ca_file=settings.smtp_ca_file,
            timeout=settings.webhook_timeout_seconds,
            public_url=settings.public_url,
            link_secret=settings.link_secret.get_secret_value() if settings.link_secret
            else None,
        )),
        LOG: LogChannel(settings.log_channel_path),
    }


class Deliverer:
    """Delivers due outbox rows through the configured channels."""

    def __init__(
        self,
        channels: Mapping[str, Channel],
        policy: Policy,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.channels = channels
        self.policy = policy
        self.rng = rng or random.Random()

    @classmethod
    def from_settings(cls, settings: Settings) -> Deliverer:
        return cls(build_channels(settings), Policy.from_settings(settings))

    def close(self) -> None:
        for channel in self.channels.values():
            closer = getattr(channel, "close", None)
            if closer is not None:
                closer()

    def deliver(
        self,
        session_factory: sessionmaker[Session],
        *,
        now: datetime,
        ids: Iterable[int] | None = None,
        limit: int | None = None,
    ) -> DeliveryResult:
        """One batch: claim up to ``limit`` due rows (only ``ids`` if given) and send them."""
        limit = limit or self.policy.batch_size
        lease = now + self.policy.lease_for(limit)
        with session_factory() as session, session.begin():
            messages = claim(
                session, now=now, lease_until=lease, limit=limit,
                ids=None if ids is None else list(ids),
            )
        result = DeliveryResult(claimed=len(messages))
        if not messages:
            return result
        sent = self._send_all(messages, now=now)
        with session_factory() as session, session.begin():
            for (row_id, message, channel), outcome in zip(messages, sent, strict=True):
                self._record(session, row_id, message, channel, outcome, lease, now, result)
        return result

    def deliver_due(
        self, session_factory: sessionmaker[Session], *, now: datetime, max_batches: int = 100
    ) -> DeliveryResult:
        """Batches until nothing due is left (bounded), for the embedded worker and CLI."""
        total = DeliveryResult()
        for _ in range(max_batches):
            batch = self.deliver(session_factory, now=now)
            total.merge(batch)
            if batch.claimed < self.policy.batch_size:
                break
        return total

    def _send_all(
        self, messages: Sequence[tuple[int, Message, str]], *, now: datetime
    ) -> list[SendResult]:
        def one(item: tuple[int, Message, str]) -> SendResult:
            _, message, channel = item
            started = clock.monotonic()
            try:
                sent = self.channels[channel].send(message, now=now)
            except Exception as exc:  # a channel bug must not lose the attempt record
                logger.exception("channel %s failed on %s", channel, message.message_id)
                sent = SendResult("retry", error=f"{type(exc).__name__}: {exc}")
            return replace(sent, duration=clock.monotonic() - started)

        if len(messages) == 1 or self.policy.concurrency <= 1:
            return [one(m) for m in messages]
        with ThreadPoolExecutor(max_workers=min(self.policy.concurrency, len(messages))) as pool:
            # Each send in the caller's context, so its span joins the caller's trace.
            sends = [pool.submit(contextvars.copy_context().run, one, m) for m in messages]
            return [send.result() for send in sends]

    def _record(
        self,
        session: Session,
        row_id: int,
        message: Message,
        channel: str,
        sent: SendResult,
        lease: datetime,
        now: datetime,
        result: DeliveryResult,
    ) -> None:
        row = session.get(Notification, row_id, with_for_update=True)
        if row is None:
            return
        final = sent.outcome in ("delivered", "gone", "failed")
        attempts = row.attempts + 1
        exhausted = sent.outcome == "retry" and attempts >= self.policy.max_attempts
        outcome = "dead" if exhausted else sent.outcome
        session.add(
            DeliveryAttempt(
                notification_id=row.id,
                at=now,
                outcome=outcome,
                status_code=sent.status_code,
                error=sent.error,
                duration_seconds=sent.duration,
            )
        )
        if row.status != "sending" or row.claimed_until != lease:
            # Our lease ran out and another worker took the row over: it owns the outcome.
            return
        row.attempts = attempts
        row.claimed_until = None
        row.last_error = sent.error
        if sent.outcome == "delivered":
            row.status, row.delivered_at = "delivered", now
            row.latency_seconds = max(0.0, (now - due_time(row)).total_seconds())
            result.delivered.append(row.message_id)
            return
        if sent.outcome == "gone":
            agency = session.get(Agency, row.agency_id)
            if agency is not None and agency.webhook_disabled_at is None:
                agency.webhook_disabled_at = now
        if final or exhausted:
            row.status = "dead"
            result.dead.append(row.message_id)
            self._dead_letter(session, row, channel, sent, now, result)
            return
        row.status = "pending"
        row.enqueued_at = None
        delay = self.policy.backoff(attempts, self.rng, sent.retry_after)
        row.next_attempt_at = now + timedelta(seconds=delay)
        result.retried.append(row.message_id)

    def _dead_letter(
        self,
        session: Session,
        row: Notification,
        channel: str,
        sent: SendResult,
        now: datetime,
        result: DeliveryResult,
    ) -> None:
        facts = dead_facts(row, channel, sent)
        # Error text stays out of the log: an endpoint may echo what it was sent.
        logger.warning("dead letter %s (%s, agency %s, %s attempts)", row.message_id,
                       row.kind, row.agency_id, row.attempts)
        if row.case_id is None:
            return
        session.flush()  # the ORM's pending changes first, then the cursor's
        cur = cursor_for(session)
        case = caserow.load(cur, row.case_id, lock=True)
        coordinator = holders(cur, case.id).assignments.get(COORDINATOR_ROLE)
        # The audit event moves the case's chain head: claim it like every writer does.
        caserow.claim(cur, case)
        alerted = None if row.kind == DEAD_LETTER else coordinator
        event = plan_event(case, kind="dead_letter", at=now, role=SYSTEM_ROLE, agency_id=None,
                           data={**facts, "alerted_agency_id": alerted})
        writers.add_events(cur, [event])
        caserow.write(cur, [case])
        if alerted is None:
            # An alert that cannot be delivered is recorded, not alerted about again.
            return
        agency = session.get(Agency, alerted)
        assert agency is not None  # agencies are never deleted
        rows = alert_rows(
            alerted, agency, case_id=row.case_id, kind=DEAD_LETTER,
            payload=alert_payload(row, facts), now=now,
            exclude_channel=channel if alerted == row.agency_id else None,
        )
        result.alerts.extend(writers.add_notifications(cur, rows))


