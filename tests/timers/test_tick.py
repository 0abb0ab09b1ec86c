"""The tick on a virtual clock: due times in business days, exactly-once firing, ladders."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from support_servers import (
    ENTER,
    REMIND_AT,
    STEP1_AT,
    STEP2_AT,
    TimerWorld,
    make_timer_world,
)

from engine.cases import service
from engine.cases.audit import verify
from engine.embedded import EmbeddedWorker
from engine.notify import outbox
from engine.settings import Settings
from engine.store.db import session_factory
from engine.timers import batch as tickbatch
from engine.timers import tick as timers

SECOND = timedelta(seconds=1)


@pytest.fixture
def factory(db_engine: Engine) -> sessionmaker[Session]:
    return session_factory(db_engine)


@pytest.fixture
def world(factory: sessionmaker[Session]) -> TimerWorld:
    return make_timer_world(factory)


def tick(world: TimerWorld, now: object, batch_size: int = 100) -> timers.TickResult:
    assert hasattr(now, "tzinfo")
    return timers.tick(world.factory, now=now, batch_size=batch_size)  # type: ignore[arg-type]


def test_whole_ladder_across_weekend_holidays_and_dst(world: TimerWorld) -> None:
    case = world.open_in_screening()
    [timer] = world.timers(case)
    assert (timer.name, timer.step, timer.status) == ("screening_deadline", 0, "pending")
    # Good Friday, the weekend, Easter Monday and the change to BST all lie in between.
    assert timer.due_at == REMIND_AT
    with world.factory() as s:
        assert timers.next_due_at(s) == REMIND_AT

    assert tick(world, REMIND_AT - SECOND).fired == []
    first = tick(world, REMIND_AT)
    [reminder] = first.fired
    assert (reminder.kind, reminder.step, reminder.next_due_at) == ("reminder", 0, STEP1_AT)
    assert reminder.agency_ids == (world.agencies["police"],)
    # Exactly once: ticking again at or after the same time fires nothing more.
    assert tick(world, REMIND_AT).fired == []
    assert tick(world, STEP1_AT - SECOND).fired == []

    [step1] = tick(world, STEP1_AT).fired
    assert (step1.kind, step1.step, step1.next_due_at) == ("escalation", 1, STEP2_AT)
    assert step1.agency_ids == (world.agencies["police_supervisor"],)
    assert tick(world, STEP2_AT - SECOND).fired == []
    [step2] = tick(world, STEP2_AT).fired
    assert (step2.kind, step2.step, step2.next_due_at) == ("escalation", 2, None)
    assert set(step2.agency_ids) == {world.agencies["coordinator"], world.agencies["chair"]}
    # The ladder ends at its last step.
    assert tick(world, STEP2_AT + timedelta(days=60)).fired == []
    with world.factory() as s:
        assert timers.next_due_at(s) is None

    assert [e.kind for e in world.events(case, "reminder", "escalation")] == [
        "reminder", "escalation", "escalation"
    ]
    assert [(e.step, e.roles) for e in world.escalations(case)] == [
        (0, ["police"]), (1, ["police_supervisor"]), (2, ["chair", "coordinator"])
    ]
    assert [t.status for t in world.timers(case)] == ["fired", "fired", "fired"]
    with world.factory() as s:
        assert verify(s) == []


def test_overdue_ladder_catches_up_in_order_in_one_tick(world: TimerWorld) -> None:
    case = world.open_in_screening()
    result = tick(world, STEP2_AT + timedelta(days=1))
    assert [(f.kind, f.step) for f in result.fired] == [
        ("reminder", 0), ("escalation", 1), ("escalation", 2)
    ]
    assert [e.data["step"] for e in world.events(case, "reminder", "escalation")] == [0, 1, 2]


def test_leaving_the_state_cancels_the_timer_and_its_ladder(world: TimerWorld) -> None:
    case = world.open_in_screening()
    tick(world, REMIND_AT)
    world.fire(case, "screen_out", "police", at=REMIND_AT + timedelta(hours=1),
               data={"screening_rationale": "no concern"})
    assert tick(world, STEP2_AT + timedelta(days=1)).fired == []
    assert [t.status for t in world.timers(case)] == ["fired", "cancelled"]


def test_restart_on_moves_the_deadline(world: TimerWorld) -> None:
    case = world.open_in_screening()
    contact = ENTER + timedelta(days=7)  # Tue 30 March 2027 10:00 UTC = 11:00 BST
    world.fire(case, "log_contact", "police", at=contact)
    assert tick(world, REMIND_AT).fired == []
    live = [t for t in world.timers(case) if t.status == "pending"]
    # Five business days from Tuesday 30 March: Wed 31, Thu 1, Fri 2, Mon 5, Tue 6.
    assert [t.due_at for t in live] == [contact + timedelta(days=7)]


def test_a_timer_fires_its_trigger_as_system(world: TimerWorld) -> None:
    case = world.open_in_screening(data={"risk_level": "low"})
    world.fire(case, "refer_to_review", "police", at=ENTER + timedelta(days=1))
    due = ENTER + timedelta(days=11)
    [fired] = tick(world, due).fired
    assert (fired.kind, fired.trigger, fired.rejected) == ("fire", "close", None)
    kinds = [(e.kind, e.role, e.trigger) for e in world.events(case)][-2:]
    assert kinds == [("timer_fired", "system", "close"), ("transition", "system", "close")]
    # The timer that fired is recorded as fired, not as cancelled by its own trigger.
    transition = world.events(case, "transition")[-1]
    assert fired.timer not in transition.data["timers_cancelled"]
    with world.factory() as s:
        assert list(service.view(s, case, agency_id=None, now=due).state) == ["closed_completed"]
        assert verify(s) == []


def test_a_rejected_timer_trigger_is_a_warning_not_a_crash(world: TimerWorld) -> None:
    case = world.open_in_screening(data={"risk_level": "high"})
    world.fire(case, "refer_to_review", "police", at=ENTER + timedelta(days=1))
    [fired] = tick(world, ENTER + timedelta(days=11)).fired
    assert fired.kind == "fire" and fired.rejected
    [warning] = world.events(case, "warning")
    assert warning.data["warning"] == "timer_trigger_rejected"
    assert warning.data["code"] == "transition_not_allowed"
    assert world.timers(case)[-1].status == "fired"
    with world.factory() as s:
        assert verify(s) == []


def test_a_role_nobody_holds_goes_to_the_coordinator_with_a_warning(world: TimerWorld) -> None:
    roles = ("referrer", "police", "coordinator", "chair")
    case = world.open_in_screening(roles=roles)
    tick(world, REMIND_AT)
    [step1] = tick(world, STEP1_AT).fired
    assert step1.agency_ids == (world.agencies["coordinator"],)
    [warning] = world.events(case, "warning")
    assert warning.data["roles"] == ["police_supervisor"]
    assert warning.data["redirected_to_agency"] == world.agencies["coordinator"]
    [note] = [n for n in world.notifications(case) if n.payload["step"] == 1]
    assert note.payload["roles"] == ["police_supervisor"]


def test_payload_holds_only_what_the_recipients_roles_may_see(world: TimerWorld) -> None:
    data = {"risk_level": "moderate", "therapy_notes": "private", "police_intel": "secret"}
    case = world.open_in_screening(data=data)
    tick(world, STEP2_AT)
    by_agency = {n.agency_id: n.payload for n in world.notifications(case)}
    police = by_agency[world.agencies["police"]]
    assert police["fields"] == {"risk_level": "moderate", "police_intel": "secret"}
    assert police["type"] == "reminder" and police["case_id"] == case
    assert police["workflow"] == "screening_ladder" and police["state"] == ["screening"]
    assert police["due_at"] == REMIND_AT.isoformat() and police["escalation_id"]
    # visible_to restricts the coordinator too.
    assert by_agency[world.agencies["coordinator"]]["fields"] == {"risk_level": "moderate"}
    assert all("therapy_notes" not in p["fields"] for p in by_agency.values())


def test_concurrent_ticks_fire_each_timer_once(world: TimerWorld) -> None:
    cases = [world.open_in_screening() for _ in range(12)]
    results: list[timers.TickResult] = []
    lock = threading.Lock()

    def run() -> None:
        result = timers.tick(world.factory, now=REMIND_AT, batch_size=3)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fired = [f.case_id for r in results for f in r.fired]
    assert sorted(fired) == sorted(cases)
    assert all(len(world.events(c, "reminder")) == 1 for c in cases)
    assert len(world.escalations()) == 12


def test_a_tick_that_died_after_claiming_is_recovered_after_the_lease(
    world: TimerWorld,
) -> None:
    cases = [world.open_in_screening() for _ in range(3)]
    with world.factory() as s, s.begin():
        claimed = timers.claim_due(s, now=REMIND_AT, lease_until=REMIND_AT + 120 * SECOND,
                                   limit=10)
    assert len(claimed) == 3
    # Still leased: another tick leaves them alone.
    assert tick(world, REMIND_AT + 60 * SECOND).fired == []
    recovered = tick(world, REMIND_AT + 121 * SECOND)
    assert sorted(f.case_id for f in recovered.fired) == sorted(cases)
    assert tick(world, REMIND_AT + 300 * SECOND).fired == []


def test_embedded_worker_fires_and_delivers(world: TimerWorld, tmp_path: Path) -> None:
    case = world.open_in_screening()
    log = tmp_path / "log.jsonl"
    worker = EmbeddedWorker(world.factory, Settings(log_channel_path=str(log)))
    try:
        done = worker.run_once(REMIND_AT)
    finally:
        worker.deliverer.close()
    assert len(done.tick.fired) == 1 and len(done.delivery.delivered) == 1
    [line] = log.read_text().splitlines()
    assert json.loads(line)["payload"]["case_id"] == case
    assert [n.status for n in world.notifications(case)] == ["delivered"]


def test_embedded_worker_loop_stops_on_request(world: TimerWorld) -> None:
    seen: list[object] = []
    worker = EmbeddedWorker(world.factory, Settings(tick_interval_seconds=0.01),
                            wall_clock=lambda: REMIND_AT)
    original = worker.run_once

    def counting(now: object) -> object:
        seen.append(now)
        if len(seen) == 3:
            worker.stopped.set()
        return original(now)  # type: ignore[arg-type]

    worker.run_once = counting  # type: ignore[method-assign,assignment]
    worker.run()
    assert len(seen) == 3


def test_a_batch_mixing_triggers_and_reminders_fires_each_once(world: TimerWorld) -> None:
    reminded = [world.open_in_screening() for _ in range(3)]
    closing = world.open_in_screening(data={"risk_level": "low"})
    world.fire(closing, "refer_to_review", "police", at=ENTER + timedelta(days=1))
    result = tick(world, ENTER + timedelta(days=11))
    assert result.errors == []
    by_case: dict[int, list[str]] = {}
    for f in result.fired:
        by_case.setdefault(f.case_id, []).append(f.kind)
    assert by_case[closing] == ["fire"]
    for case in reminded:
        assert by_case[case][0] == "reminder"
        assert len(world.events(case, "reminder")) == 1
    assert world.events(closing, "transition")[-1].trigger == "close"
    with world.factory() as s:
        assert verify(s) == []


def test_returned_ids_name_the_rows_written(world: TimerWorld) -> None:
    cases = [world.open_in_screening() for _ in range(4)]
    result = tick(world, STEP2_AT)
    assert len(result.fired) == 12
    for f in result.fired:
        notes = {n.id: n for n in world.notifications(f.case_id)}
        assert f.notification_ids and all(notes[i].payload["step"] == f.step
                                          for i in f.notification_ids)
        assert {notes[i].agency_id for i in f.notification_ids} == set(f.agency_ids)
        [esc] = [e for e in world.escalations(f.case_id) if e.id == f.escalation_id]
        assert (esc.case_id, esc.step) == (f.case_id, f.step)
    for case in cases:
        events = world.events(case, "reminder", "escalation")
        assert [e.data["step"] for e in events] == [0, 1, 2]
        messages = {n.message_id for n in world.notifications(case)}
        assert {m for e in events for m in e.data["messages"]} == messages


def test_a_failed_batch_is_fired_one_by_one_and_nothing_twice(
    world: TimerWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = [world.open_in_screening() for _ in range(3)]

    notify = tickbatch._notify

    def broken(cur: object, work: list[object], *, now: object) -> None:
        # A batch of one is the single path: only the many-timer form breaks, after its
        # first writes.
        notify(cur, work[:1], now=now)  # type: ignore[arg-type]
        if len(work) > 1:
            raise RuntimeError("the batch breaks after its first writes")

    monkeypatch.setattr(tickbatch, "_notify", broken)
    result = tick(world, REMIND_AT)
    assert result.errors == []
    assert sorted(f.case_id for f in result.fired) == sorted(cases)
    for case in cases:
        assert len(world.events(case, "reminder")) == 1
        assert len(world.escalations(case)) == 1
    with world.factory() as s:
        assert verify(s) == []


def test_one_bad_timer_fails_alone_and_fires_once_its_lease_runs_out(
    world: TimerWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = [world.open_in_screening() for _ in range(3)]
    bad = world.open_in_screening()
    plan = outbox.plan

    def failing(assigned: object, roles: object, *, case_id: int, reason: str) -> object:
        if case_id == bad:
            raise RuntimeError("cannot plan")
        return plan(assigned, roles, case_id=case_id, reason=reason)  # type: ignore[arg-type]

    monkeypatch.setattr(outbox, "plan", failing)
    result = tick(world, REMIND_AT)
    assert [e.timer_id for e in result.errors] == [world.timers(bad)[0].id]
    assert sorted(f.case_id for f in result.fired) == sorted(good)
    assert world.events(bad, "reminder") == [] and world.timers(bad)[0].status == "firing"
    monkeypatch.setattr(outbox, "plan", plan)
    assert tick(world, REMIND_AT + 60 * SECOND).fired == []  # still leased
    [again] = tick(world, REMIND_AT + 121 * SECOND).fired
    assert (again.case_id, again.kind) == (bad, "reminder")
    assert all(len(world.events(c, "reminder")) == 1 for c in [*good, bad])
    with world.factory() as s:
        assert verify(s) == []
