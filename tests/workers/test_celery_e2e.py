"""End to end on real components: a Celery worker process with beat on Redis, PostgreSQL,
a signature-checking webhook receiver and an SMTP server.

The ladder's due times are in 2027, so the worker's own beat (on the wall clock) never
fires them; the test drives the tick task with an explicit ``now`` instead, exactly as
beat would at those times.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from support_servers import (
    REMIND_AT,
    STEP1_AT,
    STEP2_AT,
    CeleryWorker,
    MailSink,
    Received,
    TimerWorld,
    WebhookReceiver,
    make_timer_world,
    wait_until,
    worker_env,
)

from engine.settings import Settings
from engine.store.db import make_engine, session_factory
from engine.store.tables import DeliveryAttempt
from engine.timers.escalations import acknowledge
from workers.app import ReferralCelery, create_app

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

WEBHOOK_ROLES = {"police": "/police", "police_supervisor": "/supervisor", "chair": "/chair"}


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
def mail() -> Iterator[MailSink]:
    from conftest import free_port

    with MailSink(free_port()) as m:
        yield m


@pytest.fixture
def world(factory: sessionmaker[Session], receiver: WebhookReceiver) -> TimerWorld:
    world = make_timer_world(
        factory,
        webhook_for=lambda role: receiver.url(WEBHOOK_ROLES[role]) if role in WEBHOOK_ROLES
        else None,
        email_for=lambda role: "channel-team@council.example" if role == "coordinator" else None,
    )
    for role, path in WEBHOOK_ROLES.items():
        receiver.register(path, world.secrets[role])
    return world


@pytest.fixture
def worker(
    pg_url: str, redis_url: str, mail: MailSink, tmp_path: Path
) -> Iterator[CeleryWorker]:
    env = worker_env(
        database_url=pg_url,
        broker_url=redis_url,
        tick_interval_seconds=0.5,
        claim_lease_seconds=5,
        smtp_port=mail.port,
        delivery_backoff_seconds=0.2,
        log_channel_path=tmp_path / "log.jsonl",
    )
    proc = CeleryWorker(env, tmp_path)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def client(pg_url: str, redis_url: str) -> ReferralCelery:
    return create_app(Settings(database_url=pg_url, broker_url=redis_url))


def tick_at(client: ReferralCelery, now: datetime) -> None:
    client.send_task("referral.tick", kwargs={"now": now.isoformat()})


def of_case(case_id: int) -> object:
    def select(received: list[Received]) -> list[Received]:
        return [r for r in received if r.data.get("case_id") == case_id and r.verified
                and r.answered == 200]

    return select


def test_ladder_on_celery_with_webhooks_and_email(
    world: TimerWorld,
    worker: CeleryWorker,
    client: ReferralCelery,
    receiver: WebhookReceiver,
    mail: MailSink,
) -> None:
    full = world.open_in_screening()
    acked = world.open_in_screening()

    def webhooks(case_id: int) -> list[tuple[str, str, int]]:
        return [(r.path, r.payload["type"], r.data["step"]) for r in receiver.delivered()
                if r.data.get("case_id") == case_id]

    tick_at(client, REMIND_AT - timedelta(seconds=1))
    tick_at(client, REMIND_AT)
    receiver.wait_for(lambda rs: len([r for r in rs if r.answered == 200]) >= 2, timeout=60)
    assert webhooks(full) == [("/police", "case.reminder", 0)]
    assert webhooks(acked) == [("/police", "case.reminder", 0)]
    [reminder] = [r for r in receiver.delivered() if r.data["case_id"] == full]
    # Five business days in the London calendar: Good Friday and Easter Monday skipped.
    assert reminder.data["due_at"] == REMIND_AT.isoformat()
    assert reminder.verified and reminder.webhook_id.startswith("msg_")

    # A repeated tick for the same moment fires nothing more.
    tick_at(client, REMIND_AT)
    tick_at(client, STEP1_AT)
    receiver.wait_for(lambda rs: len([r for r in rs if r.answered == 200]) >= 4, timeout=60)
    assert webhooks(full) == [("/police", "case.reminder", 0), ("/supervisor", "case.escalated", 1)]
    [step1] = [r for r in receiver.delivered("/supervisor") if r.data["case_id"] == acked]
    assert step1.data["due_at"] == STEP1_AT.isoformat()

    # The supervisor acknowledges the second case's escalation: its ladder stops there.
    with world.factory() as s:
        acknowledge(s, step1.data["escalation_id"],
                    agency_id=world.agencies["police_supervisor"], now=STEP1_AT)
        s.commit()

    tick_at(client, STEP2_AT)
    receiver.wait_for(lambda rs: len([r for r in rs if r.answered == 200]) >= 5, timeout=60)
    [email] = mail.wait_for(lambda ms: len(ms) >= 1, timeout=60)
    assert webhooks(full) == [
        ("/police", "case.reminder", 0), ("/supervisor", "case.escalated", 1),
        ("/chair", "case.escalated", 2),
    ]
    assert email["To"] == "channel-team@council.example"
    ref = MailSink.reference(email)
    assert (ref["case"], ref["step"], ref["due at"]) == (str(full), "2", STEP2_AT.isoformat())

    def settled() -> bool:
        notes = world.notifications()
        return all(n.status == "delivered" for n in notes) and len(notes) == 6

    wait_until(settled, timeout=60, message="every notification delivered")
    assert [t.status for t in world.timers(acked)] == ["fired", "fired", "stopped"]
    assert [t.status for t in world.timers(full)] == ["fired", "fired", "fired"]
    assert webhooks(acked) == [
        ("/police", "case.reminder", 0), ("/supervisor", "case.escalated", 1)]
    # Every webhook-id is one outbox row's message id, each delivered once here.
    ids = [r.webhook_id for r in receiver.delivered()]
    assert sorted(ids) == sorted(n.message_id for n in world.notifications()
                                 if n.channel == "webhook")


def test_two_beats_and_two_workers_fire_and_send_each_once(
    pg_url: str, redis_url: str, tmp_path: Path, world: TimerWorld, receiver: WebhookReceiver,
    mail: MailSink,
) -> None:
    from engine import clock

    entered = clock.utcnow() - timedelta(days=30)  # the whole ladder is overdue
    cases = [world.open_in_screening(at=entered) for _ in range(25)]
    env = worker_env(
        database_url=pg_url, broker_url=redis_url, tick_interval_seconds=0.2,
        tick_batch_size=5, delivery_batch_size=5, smtp_port=mail.port,
    )
    workers = [CeleryWorker(env, tmp_path, name=f"w{n}") for n in range(2)]
    try:
        for w in workers:
            w.start(wait=False)

        def settled() -> bool:
            notes = world.notifications()
            return len(notes) == 4 * len(cases) and all(n.status == "delivered" for n in notes)

        wait_until(settled, timeout=90, message="every notification delivered")
    finally:
        for w in workers:
            w.stop()
    for case in cases:
        assert [e.data["step"] for e in world.events(case, "reminder", "escalation")] == [0, 1, 2]
    ids = [r.webhook_id for r in receiver.delivered()]
    assert len(ids) == len(set(ids)) == 3 * len(cases)  # no crash, so no duplicate sends
    assert len(mail.messages) == len(cases)
    assert all(r.verified for r in receiver.all())
    with world.factory() as s:
        failed = s.execute(select(DeliveryAttempt.outcome, DeliveryAttempt.error).where(
            DeliveryAttempt.outcome != "delivered")).all()
    assert failed == []  # healthy receivers: every first attempt succeeded
