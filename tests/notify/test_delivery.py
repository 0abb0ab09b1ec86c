"""Delivery through real channels: a signature-checking webhook receiver, SMTP, the log."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import free_port
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from support_servers import MailSink, WebhookReceiver

from engine.agencies import add_agency
from engine.notify.claims import claim
from engine.notify.delivery import Deliverer, Policy, build_channels
from engine.notify.outbox import alert_rows
from engine.notify.sweep import to_enqueue
from engine.settings import Settings
from engine.store import writers
from engine.store.db import session_factory
from engine.store.fastpath import cursor_for
from engine.store.tables import Agency, DeliveryAttempt, Notification

T0 = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def factory(db_engine: Engine) -> sessionmaker[Session]:
    return session_factory(db_engine)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


@pytest.fixture
def mail() -> Iterator[MailSink]:
    with MailSink(free_port()) as m:
        yield m


def deliverer(tmp_path: Path, *, smtp_port: int = 1, max_attempts: int = 4,
              timeout: float = 5.0) -> Deliverer:
    settings = Settings(
        smtp_port=smtp_port,
        log_channel_path=str(tmp_path / "notifications.jsonl"),
        webhook_timeout_seconds=timeout,
        delivery_max_attempts=max_attempts,
        delivery_backoff_seconds=10,
        delivery_backoff_max_seconds=600,
        claim_lease_seconds=60,
    )
    return Deliverer(build_channels(settings), Policy.from_settings(settings),
                     rng=random.Random(7))


def agency(factory: sessionmaker[Session], name: str, *, webhook: str | None = None,
           email: str | None = None) -> tuple[int, str | None]:
    with factory() as session, session.begin():
        new = add_agency(session, name=name, webhook=webhook, email=email, now=T0)
        session.flush()
        return new.agency.id, new.webhook_secret


def notify(factory: sessionmaker[Session], agency_id: int, *, now: datetime = T0) -> list[int]:
    with factory() as session, session.begin():
        rows = alerts(session, agency_id, kind="reminder",
                      payload={"type": "reminder", "timer": "t"}, now=now)
        return writers.add_notifications(cursor_for(session), rows)


def alerts(session: Session, agency_id: int, *, kind: str, payload: dict[str, str],
           now: datetime) -> list[dict[str, object]]:
    found = session.get(Agency, agency_id)
    assert found is not None
    return alert_rows(agency_id, found, case_id=None, kind=kind, payload=payload, now=now)


def row(factory: sessionmaker[Session], notification_id: int) -> Notification:
    with factory() as session:
        found = session.get(Notification, notification_id)
        assert found is not None
        return found


def attempts(factory: sessionmaker[Session], notification_id: int) -> list[str]:
    with factory() as session:
        return list(session.scalars(
            select(DeliveryAttempt.outcome)
            .where(DeliveryAttempt.notification_id == notification_id)
            .order_by(DeliveryAttempt.id)
        ))


def test_webhook_is_signed_and_delivered_once(
    factory: sessionmaker[Session], receiver: WebhookReceiver, tmp_path: Path
) -> None:
    agency_id, secret = agency(factory, "police", webhook=receiver.url("/police"))
    assert secret is not None and secret.startswith("whsec_")
    receiver.register("/police", secret)
    [nid] = notify(factory, agency_id)
    result = deliverer(tmp_path).deliver(factory, now=T0)
    sent = row(factory, nid)
    assert result.delivered == [sent.message_id]
    assert sent.status == "delivered" and sent.attempts == 1 and sent.delivered_at == T0
    [got] = receiver.all("/police")
    assert got.verified and got.answered == 200
    assert got.webhook_id == sent.message_id and got.webhook_id.startswith("msg_")
    assert got.payload["type"] == "case.reminder"
    assert got.payload["data"]["message_id"] == sent.message_id
    assert attempts(factory, nid) == ["delivered"]
    # Nothing is due any more: a second pass sends nothing.
    assert deliverer(tmp_path).deliver(factory, now=T0 + timedelta(hours=1)).claimed == 0
    assert len(receiver.all()) == 1


def test_server_errors_are_retried_with_backoff_then_delivered(
    factory: sessionmaker[Session], receiver: WebhookReceiver, tmp_path: Path
) -> None:
    agency_id, secret = agency(factory, "police", webhook=receiver.url("/police"))
    assert secret
    receiver.register("/police", secret).fail_with = [500, 503, 502]
    [nid] = notify(factory, agency_id)
    d = deliverer(tmp_path, max_attempts=8)
    now = T0
    delays = []
    for _ in range(3):
        result = d.deliver(factory, now=now)
        assert len(result.retried) == 1
        pending = row(factory, nid)
        assert pending.status == "pending"
        delays.append((pending.next_attempt_at - now).total_seconds())
        # Not due before the backoff runs out.
        assert d.deliver(factory, now=pending.next_attempt_at - timedelta(seconds=1)).claimed == 0
        now = pending.next_attempt_at
    # Exponential with jitter in [0.5, 1] of 10s * 2^(n-1).
    assert 5 <= delays[0] <= 10 and 10 <= delays[1] <= 20 and 20 <= delays[2] <= 40
    assert d.deliver(factory, now=now).delivered
    assert attempts(factory, nid) == ["retry", "retry", "retry", "delivered"]
    ids = {r.webhook_id for r in receiver.all("/police")}
    assert ids == {row(factory, nid).message_id}  # the same webhook-id on every attempt
    assert all(r.verified for r in receiver.all())


def test_retry_after_is_honoured(
    factory: sessionmaker[Session], receiver: WebhookReceiver, tmp_path: Path
) -> None:
    agency_id, secret = agency(factory, "police", webhook=receiver.url("/police"))
    assert secret
    endpoint = receiver.register("/police", secret)
    endpoint.fail_with, endpoint.retry_after = [429], "300"
    [nid] = notify(factory, agency_id)
    deliverer(tmp_path).deliver(factory, now=T0)
    assert row(factory, nid).next_attempt_at >= T0 + timedelta(seconds=300)


def test_last_attempt_dead_letters(
    factory: sessionmaker[Session], receiver: WebhookReceiver, tmp_path: Path
) -> None:
    agency_id, secret = agency(factory, "police", webhook=receiver.url("/police"))
    assert secret
    receiver.register("/police", secret).fail_with = [500] * 10
    [nid] = notify(factory, agency_id)
    d = deliverer(tmp_path, max_attempts=3)
    now = T0
    for _ in range(3):
        d.deliver(factory, now=now)
        now = row(factory, nid).next_attempt_at
    dead = row(factory, nid)
    assert dead.status == "dead" and dead.attempts == 3 and "500" in (dead.last_error or "")
    assert attempts(factory, nid) == ["retry", "retry", "dead"]
    assert d.deliver(factory, now=now + timedelta(days=1)).claimed == 0


def test_gone_disables_the_endpoint_and_reroutes_later_notifications(
    factory: sessionmaker[Session], receiver: WebhookReceiver, tmp_path: Path
) -> None:
    agency_id, secret = agency(factory, "police", webhook=receiver.url("/police"))
    assert secret
    receiver.register("/police", secret).gone = True
    first = notify(factory, agency_id)
    later = notify(factory, agency_id)
    d = deliverer(tmp_path)
    d.deliver(factory, now=T0, ids=first)
    assert row(factory, first[0]).status == "dead"
    assert attempts(factory, first[0]) == ["gone"]
    with factory() as session:
        police = session.get(Agency, agency_id)
        assert police is not None and police.webhook_disabled_at == T0
    # A row written before the endpoint was disabled goes to the log instead.
    d.deliver(factory, now=T0)
    rerouted = row(factory, later[0])
    assert rerouted.status == "delivered" and rerouted.channel == "log"
    lines = (tmp_path / "notifications.jsonl").read_text().splitlines()
    assert [json.loads(x)["message_id"] for x in lines] == [rerouted.message_id]
    # New notifications skip the disabled webhook altogether.
    with factory() as session:
        assert {r["channel"] for r in alerts(
            session, agency_id, kind="x", payload={}, now=T0)} == {"log"}
    assert len(receiver.all()) == 1


def test_timeouts_and_refused_connections_are_retried(
    factory: sessionmaker[Session], receiver: WebhookReceiver, tmp_path: Path
) -> None:
    slow_id, secret = agency(factory, "slow", webhook=receiver.url("/slow"))
    assert secret
    receiver.register("/slow", secret).delay = 1.0
    closed_id, _ = agency(factory, "closed", webhook=f"http://127.0.0.1:{free_port()}/x")
    [slow] = notify(factory, slow_id)
    [closed] = notify(factory, closed_id)
    result = deliverer(tmp_path, timeout=0.3).deliver(factory, now=T0)
    assert len(result.retried) == 2
    assert "timeout" in (row(factory, slow).last_error or "")
    assert row(factory, closed).status == "pending"


def test_email_is_sent_over_smtp_as_plain_text(
    factory: sessionmaker[Session], mail: MailSink, tmp_path: Path
) -> None:
    agency_id, secret = agency(factory, "school", email="dsl@school.example")
    assert secret is None
    [nid] = notify(factory, agency_id)
    result = deliverer(tmp_path, smtp_port=mail.port).deliver(factory, now=T0)
    assert len(result.delivered) == 1
    [message] = mail.wait_for(lambda ms: len(ms) == 1, timeout=10)
    sent = row(factory, nid)
    assert message["To"] == "dsl@school.example"
    assert message["Message-ID"] == f"<{sent.message_id}@referral-engine>"
    assert message.get_content_type() == "multipart/alternative"
    assert MailSink.reference(message)["message id"] == sent.message_id


def test_smtp_down_is_retried(factory: sessionmaker[Session], tmp_path: Path) -> None:
    agency_id, _ = agency(factory, "school", email="dsl@school.example")
    [nid] = notify(factory, agency_id)
    deliverer(tmp_path, smtp_port=free_port()).deliver(factory, now=T0)
    assert row(factory, nid).status == "pending"
    assert attempts(factory, nid) == ["retry"]


def test_agency_without_channels_gets_the_log(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    agency_id, _ = agency(factory, "family")
    [nid] = notify(factory, agency_id)
    deliverer(tmp_path).deliver(factory, now=T0)
    [line] = (tmp_path / "notifications.jsonl").read_text().splitlines()
    assert json.loads(line)["agency"] == "family"
    assert row(factory, nid).channel == "log"


def test_an_expired_lease_is_reclaimed_with_the_same_message_id(
    factory: sessionmaker[Session], receiver: WebhookReceiver, tmp_path: Path
) -> None:
    agency_id, secret = agency(factory, "police", webhook=receiver.url("/police"))
    assert secret
    receiver.register("/police", secret)
    [nid] = notify(factory, agency_id)
    # A worker claims the row and dies before sending.
    with factory() as session, session.begin():
        assert len(claim(session, now=T0, lease_until=T0 + timedelta(seconds=60), limit=10)) == 1
    d = deliverer(tmp_path)
    assert d.deliver(factory, now=T0 + timedelta(seconds=30)).claimed == 0
    # The sweep hands it out again once the lease has run out, and it is delivered.
    assert to_enqueue(factory, now=T0 + timedelta(seconds=30), stale_seconds=60, limit=10) == []
    later = T0 + timedelta(seconds=61)
    assert to_enqueue(factory, now=later, stale_seconds=60, limit=10) == [nid]
    assert d.deliver(factory, now=later, ids=[nid]).delivered == [row(factory, nid).message_id]


def test_sweep_finds_rows_never_enqueued_and_retries_due(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    agency_id, _ = agency(factory, "family")
    ids = notify(factory, agency_id) + notify(factory, agency_id)
    # Fresh rows are left to the tick that wrote them for a grace period.
    assert to_enqueue(factory, now=T0 + timedelta(seconds=30), stale_seconds=60, limit=10) == []
    swept = T0 + timedelta(seconds=60)
    assert to_enqueue(factory, now=swept, stale_seconds=60, limit=10) == ids
    # Enqueued: not handed out again until they are stale.
    assert to_enqueue(factory, now=swept + timedelta(seconds=59), stale_seconds=60,
                      limit=10) == []
    assert to_enqueue(factory, now=swept + timedelta(seconds=61), stale_seconds=60,
                      limit=10) == ids


def test_sweep_hands_out_a_due_retry_at_once(
    factory: sessionmaker[Session], receiver: WebhookReceiver, tmp_path: Path
) -> None:
    agency_id, secret = agency(factory, "police", webhook=receiver.url("/police"))
    assert secret
    receiver.register("/police", secret).fail_with = [500]
    [nid] = notify(factory, agency_id)
    deliverer(tmp_path).deliver(factory, now=T0)
    due = row(factory, nid).next_attempt_at
    assert to_enqueue(factory, now=due - timedelta(seconds=1), stale_seconds=60, limit=10) == []
    assert to_enqueue(factory, now=due, stale_seconds=60, limit=10) == [nid]


def test_backoff_cannot_overflow_for_any_attempt_count_the_settings_allow() -> None:
    policy = Policy(backoff_seconds=30.0, backoff_max_seconds=6 * 3600.0)
    rng = random.Random(1)
    for attempts in (1, 2, 10, 1100, 10**6):
        delay = policy.backoff(attempts, rng, None)
        assert 0 < delay <= 6 * 3600.0
    assert policy.backoff(1, rng, None) <= 30.0
    with pytest.raises(ValueError):
        Settings(delivery_max_attempts=101)


def test_rows_written_by_events_are_found_for_the_next_tick_to_enqueue(
    factory: sessionmaker[Session],
) -> None:
    from engine.notify.sweep import mark_enqueued, never_enqueued

    agency_id, _ = agency(factory, "school", email="dsl@school.example")
    fresh, enqueued, later = (notify(factory, agency_id)[0] for _ in range(3))
    with factory() as session, session.begin():
        mark_enqueued(session, [enqueued], now=T0)
        session.get(Notification, later).next_attempt_at = T0 + timedelta(hours=1)  # type: ignore[union-attr]
    assert never_enqueued(factory, now=T0, limit=10) == [fresh]
    assert never_enqueued(factory, now=T0 + timedelta(hours=1), limit=10) == [fresh, later]
