"""The acknowledge link in a reminder's mail, against the live API server: signed,
single-use, expiring, for the agency it was sent to only; opening it changes nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from api_server import Clock, LiveServer, live_server
from conftest import free_port
from sqlalchemy import Engine, select
from support_servers import MailSink, WebhookReceiver
from test_notices import T0, WORKFLOW, make_site

from engine.notify.acklink import make_token
from engine.store.tables import Escalation

SECRET = "link-secret-for-tests-0123456789"
REMINDED = T0 + timedelta(days=3, minutes=5)  # screening_nudge: Thursday 17 December


@pytest.fixture
def server(db_url: str) -> Iterator[LiveServer]:
    with live_server(db_url, clock=Clock(REMINDED), link_secret=SECRET) as running:
        yield running


def _reminder_link(db_engine: Engine, server: LiveServer, tmp_path: Path) -> tuple[str, int]:
    with WebhookReceiver() as receiver, MailSink(free_port()) as sink:
        site = make_site(db_engine, receiver, sink, tmp_path, WORKFLOW.read_text("utf-8"),
                         public_url=server.url, link_secret=SECRET)
        case = site.open(T0)
        site.fire(case, "accept", "coordinator", T0 + timedelta(minutes=5))
        site.worker.run_once(REMINDED)
        site.worker.deliverer.close()
        [mail] = [m for m in sink.messages if m["Subject"].startswith("Reminder")]
    plain = MailSink.part(mail, "plain")
    found = re.search(r"Acknowledge \(once, within 7 days\): (\S+)", plain)
    assert found is not None, plain
    assert f'href="{found.group(1)}"' in MailSink.part(mail, "html")
    return found.group(1), site.agencies["police"]


def _acknowledged(db_engine: Engine) -> list[int | None]:
    with db_engine.connect() as conn:
        return list(conn.scalars(select(Escalation.acknowledged_by).order_by(Escalation.id)))


def test_the_link_acknowledges_once_and_only_by_post(
    db_engine: Engine, server: LiveServer, tmp_path: Path
) -> None:
    link, police = _reminder_link(db_engine, server, tmp_path)
    assert link.startswith(f"{server.url}/ack/")
    with server.client() as client:
        page = client.get(link)
        assert page.status_code == 200 and '<form method="post">' in page.text
        assert _acknowledged(db_engine) == [None]  # opening the link changed nothing
        done = client.post(link)
        assert done.status_code == 200, done.text
        assert _acknowledged(db_engine) == [police]
        again = client.post(link)
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "ack_not_allowed"
        assert "already acknowledged" in again.json()["error"]["message"]


def test_a_forged_tampered_or_expired_link_is_refused(
    db_engine: Engine, server: LiveServer, tmp_path: Path
) -> None:
    link, police = _reminder_link(db_engine, server, tmp_path)
    token = link.rsplit("/", 1)[1]
    body, signature = token.split(".")
    with server.client() as client:
        forged = make_token("not-the-secret", 1, police, now=REMINDED).replace("=", "")
        tampered = f"{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{signature}"
        for bad in (forged, tampered):
            answer = client.post(f"/ack/{bad}")
            assert answer.status_code == 422, answer.text
            assert answer.json()["error"]["code"] == "invalid_input"
        server.clock.advance(timedelta(days=8))
        expired = client.post(link)
        assert expired.status_code == 422 and "expired" in expired.json()["error"]["message"]
    assert _acknowledged(db_engine) == [None]
