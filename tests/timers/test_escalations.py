"""Acknowledging escalations: who did, and the ladder stops; mistakes are clear errors."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from support_servers import (
    REMIND_AT,
    STEP1_AT,
    STEP2_AT,
    TimerWorld,
    make_timer_world,
)
from typer.testing import CliRunner

from engine.cases.audit import verify
from engine.cli import app as cli
from engine.errors import AckRejected, NotFound
from engine.store.db import session_factory
from engine.timers import tick as timers
from engine.timers.escalations import acknowledge


@pytest.fixture
def factory(db_engine: Engine) -> sessionmaker[Session]:
    return session_factory(db_engine)


@pytest.fixture
def world(factory: sessionmaker[Session]) -> TimerWorld:
    return make_timer_world(factory)


def ack(world: TimerWorld, escalation_id: int, role: str, at: object) -> object:
    with world.factory() as s:
        result = acknowledge(s, escalation_id, agency_id=world.agencies[role], now=at)  # type: ignore[arg-type]
        s.commit()
        return result


def test_acknowledging_the_reminder_stops_the_ladder(world: TimerWorld) -> None:
    case = world.open_in_screening()
    [reminder] = timers.tick(world.factory, now=REMIND_AT, batch_size=10).fired
    assert reminder.escalation_id is not None
    at = REMIND_AT + timedelta(hours=2)
    result = ack(world, reminder.escalation_id, "police", at)
    assert result.stopped_steps == (1,)  # type: ignore[attr-defined]
    assert timers.tick(world.factory, now=STEP2_AT + timedelta(days=30), batch_size=10).fired == []
    assert [t.status for t in world.timers(case)] == ["fired", "stopped"]
    [esc] = world.escalations(case)
    assert esc.acknowledged_at == at and esc.acknowledged_by == world.agencies["police"]
    [event] = world.events(case, "ack")
    assert event.agency_id == world.agencies["police"] and event.role == "police"
    assert event.data == {"escalation_id": esc.id, "timer": "screening_deadline", "step": 0,
                          "stopped_steps": [1]}
    with world.factory() as s:
        assert verify(s) == []


def test_acknowledging_a_middle_step_stops_the_later_ones(world: TimerWorld) -> None:
    case = world.open_in_screening()
    timers.tick(world.factory, now=REMIND_AT, batch_size=10)
    [step1] = timers.tick(world.factory, now=STEP1_AT, batch_size=10).fired
    assert step1.escalation_id is not None
    ack(world, step1.escalation_id, "police_supervisor", STEP1_AT + timedelta(hours=1))
    assert timers.tick(world.factory, now=STEP2_AT, batch_size=10).fired == []
    assert [t.status for t in world.timers(case)] == ["fired", "fired", "stopped"]


def test_acknowledging_twice_is_rejected(world: TimerWorld) -> None:
    world.open_in_screening()
    [reminder] = timers.tick(world.factory, now=REMIND_AT, batch_size=10).fired
    assert reminder.escalation_id is not None
    ack(world, reminder.escalation_id, "police", REMIND_AT)
    with pytest.raises(AckRejected, match="already acknowledged by police agency"):
        ack(world, reminder.escalation_id, "police", REMIND_AT + timedelta(hours=1))


def test_an_agency_that_was_not_notified_cannot_acknowledge(world: TimerWorld) -> None:
    case = world.open_in_screening()
    [reminder] = timers.tick(world.factory, now=REMIND_AT, batch_size=10).fired
    assert reminder.escalation_id is not None
    with pytest.raises(AckRejected, match="was not notified") as raised:
        ack(world, reminder.escalation_id, "chair", REMIND_AT)
    assert raised.value.code == "ack_not_allowed"
    # Nothing was written: the ladder still runs.
    assert world.events(case, "ack") == []
    assert [t.status for t in world.timers(case)] == ["fired", "pending"]


def test_unknown_escalation_is_not_found(world: TimerWorld) -> None:
    with pytest.raises(NotFound):
        ack(world, 999, "police", REMIND_AT)


def test_cli_tick_and_ack(world: TimerWorld, db_url: str, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFERRAL_DATABASE_URL", db_url)
    monkeypatch.setenv("REFERRAL_LOG_CHANNEL_PATH", str(tmp_path / "log.jsonl"))
    case = world.open_in_screening()
    runner = CliRunner()
    early = runner.invoke(cli, ["tick", "--now", "2027-03-31T09:00:00Z"])
    assert early.exit_code == 0, early.output
    assert "nothing due" in early.output
    fired = runner.invoke(cli, ["tick", "--now", REMIND_AT.isoformat(), "--json"])
    assert fired.exit_code == 0, fired.output
    done = json.loads(fired.output)
    [reminder] = done["tick"]["fired"]
    assert reminder["case_id"] == case and reminder["kind"] == "reminder"
    assert len(done["delivery"]["delivered"]) == 1
    esc = str(reminder["escalation_id"])

    wrong = runner.invoke(cli, ["ack", esc, "--agency", "chair agency"])
    assert wrong.exit_code == 1 and "was not notified" in wrong.output
    assert "Traceback" not in wrong.output
    ok = runner.invoke(cli, ["ack", esc, "--agency", "police agency", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["stopped_steps"] == [1]
    again = runner.invoke(cli, ["ack", esc, "--agency", "police agency"])
    assert again.exit_code == 1 and "already acknowledged" in again.output
    bad = runner.invoke(cli, ["tick", "--now", "yesterday"])
    assert bad.exit_code == 1 and "ISO 8601" in bad.output


def test_an_agency_holding_no_role_on_the_case_learns_nothing(world: TimerWorld) -> None:
    from engine.agencies import add_agency

    case = world.open_in_screening()
    [reminder] = timers.tick(world.factory, now=REMIND_AT, batch_size=10).fired
    assert reminder.escalation_id is not None
    with world.factory() as s:
        outsider = add_agency(s, name="outsider", now=REMIND_AT).agency.id
        s.commit()
    with world.factory() as s, pytest.raises(NotFound):
        acknowledge(s, reminder.escalation_id, agency_id=outsider, now=REMIND_AT)
    assert world.events(case, "ack") == []
