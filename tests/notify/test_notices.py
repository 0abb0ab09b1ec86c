"""Notices on events, outcomes and repeating reminders, end to end: the shipped
community_panel workflow, agencies on signed webhooks (checked by the standardwebhooks
library in the receiver) and on email (a real SMTP server), one embedded worker pass per
tick on a virtual clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from conftest import free_port
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from support_servers import MailSink, Received, WebhookReceiver

from api.app import create_app
from engine import __version__
from engine.agencies import add_agency
from engine.cases import service
from engine.embedded import EmbeddedWorker
from engine.machine.deploy import deploy
from engine.settings import Settings
from engine.store.db import session_factory

WORKFLOW = Path(__file__).parents[2] / "workflows" / "community_panel.yaml"
# Monday 14 December 2026, 09:00 in London (GMT = UTC).
T0 = datetime(2026, 12, 14, 9, 0, tzinfo=UTC)
SECRET_FIELDS = ("screening_rationale", "screening_category", "police_intelligence",
                 "risk_level")


@dataclass
class Site:
    factory: sessionmaker[Session]
    worker: EmbeddedWorker
    receiver: WebhookReceiver
    mail: MailSink
    agencies: dict[str, int] = field(default_factory=dict)

    def open(self, at: datetime) -> int:
        with self.factory() as s:
            view = service.open_case(
                s, workflow="community_panel", assignments=dict(self.agencies),
                agency_id=self.agencies["referrer"], now=at,
                data={"referral_reason": "Worrying remarks in class",
                      "referral_source": "school"},
            )
            s.commit()
            return int(view.id)

    def fire(self, case_id: int, trigger: str, role: str, at: datetime,
             data: dict[str, Any] | None = None) -> None:
        with self.factory() as s:
            service.fire(s, case_id, trigger, role=role, agency_id=self.agencies[role],
                         data=data, now=at)
            s.commit()

    def bodies(self, path: str, kind: str | None = None) -> list[dict[str, Any]]:
        return [r.payload for r in self.receiver.delivered(path)
                if kind is None or r.payload["type"] == kind]


def make_site(db_engine: Engine, receiver: WebhookReceiver, mail: MailSink, tmp: Path,
              source: str, **options: Any) -> Site:
    factory = session_factory(db_engine)
    settings = Settings(smtp_port=mail.port, log_channel_path=str(tmp / "log.jsonl"),
                        webhook_timeout_seconds=5, **options)
    site = Site(factory, EmbeddedWorker(factory, settings), receiver, mail)
    channels = {"referrer": "webhook", "police": "both", "police_supervisor": "webhook",
                "coordinator": "both"}
    with factory() as s:
        deploy(s, source, str(WORKFLOW), now=T0 - timedelta(days=1))
        for role in ("referrer", "police", "police_supervisor", "coordinator", "chair"):
            how = channels.get(role, "log")
            hook = receiver.url(f"/{role}") if how in ("webhook", "both") else None
            email = f"{role}@example.org" if how in ("email", "both") else None
            made = add_agency(s, name=f"{role} agency", webhook=hook, email=email,
                              now=T0 - timedelta(days=1))
            if made.webhook_secret:
                receiver.register(f"/{role}", made.webhook_secret)
            site.agencies[role] = made.agency.id
        s.commit()
    return site


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


@pytest.fixture
def mail() -> Iterator[MailSink]:
    with MailSink(free_port()) as m:
        yield m


@pytest.fixture
def site(db_engine: Engine, receiver: WebhookReceiver, mail: MailSink,
         tmp_path: Path) -> Iterator[Site]:
    made = make_site(db_engine, receiver, mail, tmp_path, WORKFLOW.read_text("utf-8"))
    yield made
    made.worker.deliverer.close()


def test_the_referrer_gets_a_receipt_within_one_tick_and_the_outcome_without_secrets(
    site: Site,
) -> None:
    case = site.open(T0)
    site.worker.run_once(T0)
    [receipt] = site.bodies("/referrer", "case.opened")
    assert receipt["data"]["case_id"] == case
    assert receipt["data"]["subject"] == "Referral received"
    assert receipt["data"]["roles"] == ["referrer"]

    site.fire(case, "accept", "coordinator", T0 + timedelta(hours=1))
    site.fire(case, "screen_out", "police", T0 + timedelta(hours=2), data={
        "screening_rationale": "No indicators of radicalisation",
        "police_intelligence": "Nothing held"})
    site.worker.run_once(T0 + timedelta(hours=2))
    [closed] = site.bodies("/referrer", "case.closed")
    data = closed["data"]
    assert data["outcome"] == "no_concern"
    assert data["fields"]["outcome"] == "no_concern"
    assert not set(SECRET_FIELDS) & set(data["fields"])
    assert "No indicators" not in str(closed) and "Nothing held" not in str(closed)
    # The referrer was told nothing else: no police notice, no timer went off.
    assert [b["type"] for b in site.bodies("/referrer")] == ["case.opened", "case.closed"]


def test_the_police_hear_of_new_work_on_entering_screening_without_any_timer(
    site: Site,
) -> None:
    case = site.open(T0)
    accepted = T0 + timedelta(minutes=30)
    site.fire(case, "accept", "coordinator", accepted)
    result = site.worker.run_once(accepted)
    assert result.tick.fired == []
    [notice] = site.bodies("/police", "case.transitioned")
    assert notice["data"]["trigger"] == "accept"
    assert notice["data"]["subject"] == "New referral to screen"
    assert notice["data"]["state"] == ["screening"]
    # The police webhook carries what the police may read; their email no field at all.
    assert notice["data"]["fields"]["referral_reason"] == "Worrying remarks in class"
    [email] = [m for m in site.mail.wait_for(lambda ms: len(ms) >= 1)
               if m["To"] == "police@example.org"]
    assert "Worrying remarks" not in email.as_string()


def test_the_outcome_is_recorded_on_the_closed_case(site: Site) -> None:
    case = site.open(T0)
    site.fire(case, "withdraw", "coordinator", T0 + timedelta(hours=1),
              data={"withdrawal_reason": "Moved away"})
    with site.factory() as s:
        view = service.view(s, case, agency_id=site.agencies["referrer"], now=T0)
    assert view.data["outcome"] == "withdrawn"
    assert "withdrawal_reason" not in view.data


REPEATING = """\
  - name: screening_repeat
    in: screening
    after: 5 business days
    remind: [police]
    every: 5 business days
"""
# From Monday 14 December 2026 in England, 5 business days at a time, skipping weekends,
# the bank holidays (25 and 28 December, 1 January) and the workflow's closure days
# (24 and 31 December).
REMINDERS = [datetime(2026, 12, 21, 9, 0, tzinfo=UTC), datetime(2027, 1, 4, 9, 0, tzinfo=UTC),
             datetime(2027, 1, 11, 9, 0, tzinfo=UTC)]


def test_a_repeating_reminder_fires_every_5_business_days_until_the_state_is_left(
    db_engine: Engine, receiver: WebhookReceiver, mail: MailSink, tmp_path: Path,
) -> None:
    text = WORKFLOW.read_text("utf-8").replace("\ntimers:\n", "\ntimers:\n" + REPEATING, 1)
    site = make_site(db_engine, receiver, mail, tmp_path, text)
    case = site.open(T0 - timedelta(minutes=5))
    site.fire(case, "accept", "coordinator", T0)

    def repeats() -> list[dict[str, Any]]:
        return [b["data"] for b in site.bodies("/police", "case.reminder")
                if b["data"]["timer"] == "screening_repeat"]

    for n, due in enumerate(REMINDERS):
        site.worker.run_once(due - timedelta(minutes=1))
        assert len(repeats()) == n, f"reminder {n} came before {due}"
        site.worker.run_once(due)
        assert [r["due_at"] for r in repeats()] == [d.isoformat() for d in REMINDERS[:n + 1]]
        assert repeats()[-1]["step"] == n
    site.fire(case, "screen_out", "police", REMINDERS[-1] + timedelta(hours=1),
              data={"screening_rationale": "No concern"})
    site.worker.run_once(REMINDERS[-1] + timedelta(days=60))
    assert len(repeats()) == len(REMINDERS)
    site.worker.deliverer.close()


def test_a_capped_repeating_reminder_stops_at_its_cap(
    db_engine: Engine, receiver: WebhookReceiver, mail: MailSink, tmp_path: Path,
) -> None:
    text = WORKFLOW.read_text("utf-8").replace(
        "\ntimers:\n", "\ntimers:\n" + REPEATING + "    at_most: 2\n", 1)
    site = make_site(db_engine, receiver, mail, tmp_path, text)
    case = site.open(T0 - timedelta(minutes=5))
    site.fire(case, "accept", "coordinator", T0)
    for due in [*REMINDERS, REMINDERS[-1] + timedelta(days=30)]:
        site.worker.run_once(due)
    sent = [b for b in site.bodies("/police", "case.reminder")
            if b["data"]["timer"] == "screening_repeat"]
    assert [b["data"]["due_at"] for b in sent] == [d.isoformat() for d in REMINDERS[:2]]
    site.worker.deliverer.close()


def _validators(db_engine: Engine) -> dict[str, Any]:
    document = create_app(Settings(), engine=db_engine).openapi()
    validators = {}
    for name, item in document["webhooks"].items():
        schema = item["post"]["requestBody"]["content"]["application/json"]["schema"]
        validators[name] = jsonschema_rs.validator_for(
            {**schema, "components": document["components"]})
    return validators


def test_every_webhook_the_engine_sends_matches_its_published_schema(
    site: Site, db_engine: Engine,
) -> None:
    validators = _validators(db_engine)
    case = site.open(T0)
    site.fire(case, "accept", "coordinator", T0 + timedelta(minutes=1))
    # Screening's timers: a nudge, a reminder and the ladder's escalations.
    for days in (3, 5, 7, 10):
        site.worker.run_once(T0 + timedelta(days=days + 2))
    site.receiver.endpoints["/referrer"].gone = True
    site.fire(case, "screen_out", "police", T0 + timedelta(days=13),
              data={"screening_rationale": "No concern"})
    site.worker.run_once(T0 + timedelta(days=13))
    seen: list[Received] = [r for r in site.receiver.all() if r.verified]
    types = {r.payload["type"] for r in seen}
    assert {"case.opened", "case.transitioned", "case.reminder", "case.escalated",
            "case.closed", "notification.dead_lettered"} <= types
    for received in seen:
        assert received.user_agent == f"referral-engine/{__version__}"
        body = received.payload
        assert body["data"]["message_id"] == received.webhook_id
        errors = [e.message for e in validators[body["type"]].iter_errors(body)]
        assert not errors, (body, errors)
    # A webhook that is not in the schema fails it: the check is not vacuous.
    wrong = {**seen[0].payload, "data": {**seen[0].payload["data"], "extra": 1}}
    assert not validators[wrong["type"]].is_valid(wrong)
