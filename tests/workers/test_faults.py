"""Faults on real components: a worker SIGKILLed mid-batch, a failing or gone webhook
endpoint, and Redis restarting. Due times lie in the past of the wall clock, so the
worker's own beat finds them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import free_port
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from support_servers import (
    CeleryWorker,
    RedisServer,
    TimerWorld,
    WebhookReceiver,
    make_timer_world,
    wait_until,
    worker_env,
)

from engine import clock
from engine.cases.audit import verify
from engine.store.db import make_engine, session_factory
from engine.store.tables import Agency, DeliveryAttempt, Notification, Timer

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

PATHS = {
    "police": "/police",
    "police_supervisor": "/supervisor",
    "chair": "/chair",
    "coordinator": "/coordinator",
}
# Per case, the whole overdue ladder: reminder (police), step 1 (supervisor),
# step 2 (coordinator and chair).
NOTES_PER_CASE = 4


@pytest.fixture
def factory(pg_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(pg_url)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


@pytest.fixture
def world(factory: sessionmaker[Session], receiver: WebhookReceiver) -> TimerWorld:
    world = make_timer_world(
        factory, webhook_for=lambda role: receiver.url(PATHS[role]) if role in PATHS else None
    )
    for role, path in PATHS.items():
        receiver.register(path, world.secrets[role])
    return world


def env(pg_url: str, broker_url: str, tmp_path: Path, **extra: object) -> dict[str, str]:
    settings: dict[str, object] = {
        "tick_interval_seconds": 0.3,
        "claim_lease_seconds": 3,
        "webhook_timeout_seconds": 1,
        "tick_batch_size": 10,
        "delivery_batch_size": 10,
        "delivery_backoff_seconds": 0.2,
        "delivery_backoff_max_seconds": 1,
        "log_channel_path": tmp_path / "log.jsonl",
        "smtp_port": free_port(),
        **extra,
    }
    return worker_env(database_url=pg_url, broker_url=broker_url, **settings)


def overdue_cases(world: TimerWorld, n: int) -> list[int]:
    """Cases whose whole ladder (10 business days) fell due in the past month."""
    entered = clock.utcnow() - timedelta(days=30)
    return [world.open_in_screening(at=entered) for _ in range(n)]


def counts(factory: sessionmaker[Session]) -> dict[str, int]:
    with factory() as s:
        timers = dict(s.execute(select(Timer.status, func.count()).group_by(Timer.status)).all())
        notes = dict(
            s.execute(select(Notification.status, func.count()).group_by(Notification.status))
            .all()
        )
    return {**{f"timer_{k}": v for k, v in timers.items()},
            **{f"note_{k}": v for k, v in notes.items()}}


def all_done(factory: sessionmaker[Session], cases: int) -> bool:
    c = counts(factory)
    return (c.get("timer_fired", 0) == 3 * cases
            and c.get("note_delivered", 0) == NOTES_PER_CASE * cases
            and sum(v for k, v in c.items() if k.startswith("note_")) == NOTES_PER_CASE * cases)


def assert_exactly_once(world: TimerWorld, cases: list[int], receiver: WebhookReceiver) -> None:
    for case in cases:
        assert [e.data["step"] for e in world.events(case, "reminder", "escalation")] == [0, 1, 2]
        assert [(t.step, t.status) for t in world.timers(case)] == [
            (0, "fired"), (1, "fired"), (2, "fired")
        ]
        assert [e.step for e in world.escalations(case)] == [0, 1, 2]
    notes = world.notifications()
    assert len(notes) == NOTES_PER_CASE * len(cases)
    ids = {n.message_id for n in notes}
    delivered = receiver.delivered()
    # At least once each, every copy verified and carrying a known, stable webhook-id.
    assert {r.webhook_id for r in delivered} == ids
    assert all(r.verified for r in receiver.all())
    with world.factory() as s:
        assert verify(s) == []


def test_worker_killed_mid_batch_fires_each_timer_once_and_delivers_everything(
    pg_url: str, redis_url: str, tmp_path: Path, world: TimerWorld,
    receiver: WebhookReceiver,
) -> None:
    for path in PATHS.values():
        receiver.endpoints[path].delay = 0.15  # slow receiver: the kill lands mid-delivery
    cases = overdue_cases(world, 60)
    total = 3 * len(cases)
    worker = CeleryWorker(env(pg_url, redis_url, tmp_path), tmp_path)
    try:
        worker.start(wait=False)
        # First kill: while the tick is part-way through its batches of timers.
        def part_fired() -> dict[str, int] | None:
            c = counts(world.factory)
            return c if 0 < c.get("timer_fired", 0) < total else None

        mid_tick = wait_until(part_fired, timeout=60, interval=0.01, message="timers part-fired")
        worker.kill()
        assert counts(world.factory).get("timer_fired", 0) < total, mid_tick
        worker.start()
        # Second kill: while deliveries are part-way through their batches.
        wait_until(lambda: len(receiver.delivered()) >= 8, timeout=60,
                   message="some deliveries before the second kill")
        worker.kill()
        mid_delivery = counts(world.factory)
        assert not all_done(world.factory, len(cases)), mid_delivery
        worker.start()
        wait_until(lambda: all_done(world.factory, len(cases)), timeout=120,
                   message=f"everything done after restarts ({mid_tick}, {mid_delivery})")
    finally:
        worker.stop()
    assert_exactly_once(world, cases, receiver)


def test_server_errors_are_retried_until_delivered(
    pg_url: str, redis_url: str, tmp_path: Path, world: TimerWorld,
    receiver: WebhookReceiver,
) -> None:
    receiver.endpoints["/police"].fail_with = [500, 503, 500]
    [case] = overdue_cases(world, 1)
    worker = CeleryWorker(env(pg_url, redis_url, tmp_path), tmp_path)
    try:
        worker.start()
        wait_until(lambda: all_done(world.factory, 1), timeout=60, message="delivery")
    finally:
        worker.stop()
    police = receiver.all("/police")
    assert [r.answered for r in police] == [500, 503, 500, 200]
    assert len({r.webhook_id for r in police}) == 1
    [note] = [n for n in world.notifications(case) if n.payload["type"] == "reminder"]
    with world.factory() as s:
        outcomes = list(s.scalars(select(DeliveryAttempt.outcome).where(
            DeliveryAttempt.notification_id == note.id).order_by(DeliveryAttempt.id)))
    assert outcomes == ["retry", "retry", "retry", "delivered"]
    assert_exactly_once(world, [case], receiver)


DEAD_TYPE = "notification.dead_lettered"


def test_gone_endpoint_is_disabled_and_the_coordinator_alerted(
    pg_url: str, redis_url: str, tmp_path: Path, world: TimerWorld,
    receiver: WebhookReceiver,
) -> None:
    receiver.endpoints["/supervisor"].gone = True
    [case] = overdue_cases(world, 1)
    worker = CeleryWorker(env(pg_url, redis_url, tmp_path), tmp_path)
    try:
        worker.start()
        alerts = receiver.wait_for(
            lambda rs: any(r.payload.get("type") == DEAD_TYPE for r in rs), timeout=60)
        wait_until(lambda: counts(world.factory).get("note_delivered", 0) == 4, timeout=30,
                   message="the other notifications and the alert delivered")
    finally:
        worker.stop()
    [alert] = [r for r in alerts if r.payload.get("type") == DEAD_TYPE]
    [dead] = [n for n in world.notifications(case) if n.status == "dead"]
    assert alert.path == "/coordinator" and alert.verified
    assert alert.data["dead_message_id"] == dead.message_id
    assert alert.data["payload_type"] == "escalation" and alert.data["step"] == 1
    assert alert.data["endpoint_disabled"] is True
    with world.factory() as s:
        supervisor = s.get(Agency, world.agencies["police_supervisor"])
        assert supervisor is not None and supervisor.webhook_disabled_at is not None
    [event] = world.events(case, "dead_letter")
    assert event.data["message_id"] == dead.message_id
    assert event.data["alerted_agency_id"] == world.agencies["coordinator"]
    assert [r.answered for r in receiver.all("/supervisor")] == [410]


def test_redis_restart_loses_nothing_due(
    pg_url: str, tmp_path: Path, world: TimerWorld, receiver: WebhookReceiver,
) -> None:
    for path in PATHS.values():
        receiver.endpoints[path].delay = 0.1
    redis = RedisServer(free_port(), tmp_path)
    redis.start()
    worker = CeleryWorker(env(pg_url, redis.url, tmp_path), tmp_path)
    try:
        first = overdue_cases(world, 10)
        worker.start()
        wait_until(lambda: len(receiver.delivered()) >= 4, timeout=60,
                   message="first deliveries")
        redis.stop()  # queued messages are gone with it: it keeps nothing on disk
        second = overdue_cases(world, 10)  # fall due while the broker is down
        wait_until(lambda: "Connection to broker lost" in worker.logs(), timeout=30,
                   message="the worker noticing the broker is gone")
        redis.start()
        wait_until(lambda: all_done(world.factory, 20), timeout=120,
                   message=f"everything delivered after the restart: {counts(world.factory)}")
    finally:
        worker.stop()
        redis.stop()
    assert_exactly_once(world, first + second, receiver)
