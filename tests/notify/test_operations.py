"""Delivery operations through the API (admin only) and the CLI: list dead letters
without their payloads, re-enable a webhook a 410 disabled, replay with the same message
id, send a test notification; every action audited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_server import Clock, LiveServer, live_server
from conftest import free_port
from sqlalchemy import Engine, select
from support_servers import MailSink, WebhookReceiver
from test_notices import T0, WORKFLOW, Site, make_site
from typer.testing import CliRunner

from engine.cli import app
from engine.store.tables import Agency, DeliveryAttempt, OperationEvent

LATER = T0 + timedelta(hours=1)


@pytest.fixture
def server(db_url: str) -> Iterator[LiveServer]:
    with live_server(db_url, clock=Clock(LATER)) as running:
        yield running


@pytest.fixture
def site(db_engine: Engine, tmp_path: Path) -> Iterator[Site]:
    with WebhookReceiver() as receiver, MailSink(free_port()) as sink:
        made = make_site(db_engine, receiver, sink, tmp_path, WORKFLOW.read_text("utf-8"))
        yield made
        made.worker.deliverer.close()


def _dead_receipt(site: Site) -> int:
    """A case whose receipt to the referrer died on a 410 (the webhook now disabled)."""
    site.receiver.endpoints["/referrer"].gone = True
    case = site.open(T0)
    site.worker.run_once(T0)
    return case


def _audit(db_engine: Engine) -> list[tuple[str, str]]:
    with db_engine.connect() as conn:
        return [(r.actor, r.action) for r in conn.execute(
            select(OperationEvent.actor, OperationEvent.action).order_by(OperationEvent.id))]


def test_admin_lists_re_enables_and_replays_a_dead_letter_with_its_message_id(
    site: Site, server: LiveServer, db_engine: Engine,
) -> None:
    _dead_receipt(site)
    [first] = site.receiver.all("/referrer")
    admin, agency = server.admin(), server.client()
    listed = admin.get("/notifications/dead")
    assert listed.status_code == 200, listed.text
    [dead] = [d for d in listed.json() if d["kind"] == "opened"]
    assert dead["message_id"] == first.webhook_id and dead["channel"] == "webhook"
    assert "payload" not in dead and "Worrying remarks" not in listed.text

    site.receiver.endpoints["/referrer"].gone = False
    referrer = site.agencies["referrer"]
    enabled = admin.post(f"/agencies/{referrer}/webhook/enable")
    assert enabled.json() == {"agency_id": referrer, "was_disabled": True}
    replayed = admin.post("/notifications/replay", json={"ids": [dead["id"]]})
    assert replayed.json() == {"replayed": [dead["id"]]}
    # Delivered on the next pass, or after its retry's backoff if that attempt failed.
    for hours in range(6):
        site.worker.run_once(LATER + timedelta(hours=hours))
        if site.receiver.delivered("/referrer"):
            break
    again = site.receiver.delivered("/referrer")
    with db_engine.connect() as conn:
        errors = list(conn.scalars(select(DeliveryAttempt.error)))
    assert [r.webhook_id for r in again] == [first.webhook_id], errors
    assert _audit(db_engine) == [("admin", "enable_webhook"), ("admin", "replay")]
    assert agency.get("/notifications/dead").status_code == 401


def test_agencies_cannot_operate_delivery(site: Site, server: LiveServer,
                                          db_engine: Engine) -> None:
    _dead_receipt(site)
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/notifications/dead").status_code == 401
    token = _token(server)
    police = server.client(token)
    for method, path, body in [
        ("GET", "/notifications/dead", None),
        ("POST", "/notifications/replay", {}),
        ("POST", f"/agencies/{site.agencies['referrer']}/webhook/enable", None),
        ("POST", f"/agencies/{site.agencies['police']}/test-notification", None),
    ]:
        answer = police.request(method, path, json=body)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["error"]["code"] == "forbidden"
    assert _audit(db_engine) == []


def _token(server: LiveServer) -> str:
    made = server.admin().post("/agencies", json={"name": "Curious Agency"})
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


def test_a_test_notification_reaches_the_agency_and_matches_its_schema(
    site: Site, server: LiveServer, db_engine: Engine,
) -> None:
    from test_notices import _validators

    police = site.agencies["police"]
    sent = server.admin().post(f"/agencies/{police}/test-notification")
    assert sent.status_code == 202, sent.text
    assert len(sent.json()["notifications"]) == 2  # its webhook and its email
    site.worker.run_once(LATER)
    [hook] = site.receiver.delivered("/police")
    assert hook.payload["type"] == "notification.test"
    assert not list(_validators(db_engine)["notification.test"].iter_errors(hook.payload))
    [mail] = site.mail.wait_for(lambda ms: len(ms) == 1, timeout=10)
    assert mail["Subject"] == "Test notification"
    assert _audit(db_engine) == [("admin", "test_notification")]


def test_the_cli_lists_replays_and_re_enables(
    site: Site, db_url: str, db_engine: Engine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _dead_receipt(site)
    monkeypatch.setenv("REFERRAL_DATABASE_URL", db_url)
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(app, ["notifications", *args])
        assert result.exit_code == 0, (args, result.output)
        return result

    [dead] = json.loads(run("dead", "--json").output)
    assert dead["kind"] == "opened" and "payload" not in dead
    enabled = json.loads(run("enable-webhook", "referrer agency", "--json").output)
    assert enabled["was_disabled"] is True
    assert json.loads(run("replay", "--all", "--json").output) == {"replayed": [dead["id"]]}
    refused = runner.invoke(app, ["notifications", "replay", "999"])
    assert refused.exit_code == 1 and "no dead-lettered notification" in refused.output
    with db_engine.connect() as conn:
        assert conn.scalar(select(Agency.webhook_disabled_at).where(
            Agency.id == site.agencies["referrer"])) is None
    assert _audit(db_engine) == [("cli", "enable_webhook"), ("cli", "replay")]
