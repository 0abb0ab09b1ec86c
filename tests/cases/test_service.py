"""The store and service contract, run on SQLite and PostgreSQL alike (``db_url``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from casekit import T0, World, drive_to, make_world
from sqlalchemy import select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from engine.cases import service
from engine.cases.audit import verify
from engine.errors import Forbidden, InvalidInput, NotFound, VersionConflict
from engine.store.tables import Case, CaseEvent, Timer
from engine.views_json import to_jsonable


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    w = make_world(db_url)
    yield w
    w.dispose()


def timers(world: World, case_id: int) -> list[tuple[str, str, int, datetime]]:
    with world.factory() as s:
        rows = s.scalars(select(Timer).where(Timer.case_id == case_id).order_by(Timer.id))
        return [(t.name, t.status, t.step, t.due_at) for t in rows]


def events(world: World, case_id: int) -> list[CaseEvent]:
    with world.factory() as s:
        return list(
            s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq))
        )


def test_whole_case_from_referral_to_closure(world: World) -> None:
    opened = world.open()
    cid = opened.id
    assert opened.state == ("referred",)
    assert opened.version == 1
    assert opened.data == {"consent": False}
    assert opened.roles == ("referrer",)
    assert not opened.closed

    v = world.fire(cid, "accept", "coordinator")
    assert v.state == ("screening",)
    assert v.version == 2
    # 5 business days from Monday 2 March 09:01 (London on GMT): Monday 9 March.
    assert timers(world, cid) == [
        ("screening_deadline", "pending", 0, datetime(2026, 3, 9, 9, 2, tzinfo=T0.tzinfo))
    ]

    v = world.fire(cid, "refer_to_panel", "police")
    assert v.state == ("panel",)
    assert [t[1] for t in timers(world, cid)] == ["cancelled"]

    v = world.fire(cid, "adopt", "chair", {"risk_level": "high", "consent": True})
    assert v.state == ("support.mentoring.matching", "support.therapy.intake")
    assert set(v.milestones) == {"plan_agreed"}
    assert v.milestones["plan_agreed"].role == "chair"
    assert v.milestones["plan_agreed"].agency_id == world.agencies["chair"]

    v = world.fire(cid, "begin_sessions", "coordinator")
    assert v.state == ("support.mentoring.sessions", "support.therapy.intake")
    live = [t for t in timers(world, cid) if t[1] == "pending"]
    assert [t[0] for t in live] == ["mentoring_heartbeat"]

    # The heartbeat: an internal transition in restart_on cancels and restarts the timer.
    v = world.fire(cid, "log_session", "mentor")
    assert v.state == ("support.mentoring.sessions", "support.therapy.intake")
    beats = [t for t in timers(world, cid) if t[0] == "mentoring_heartbeat"]
    assert [t[1] for t in beats] == ["cancelled", "pending"]
    assert beats[1][3] > beats[0][3]
    last = events(world, cid)[-1]
    assert last.data["timers_started"] == ["mentoring_heartbeat"]
    assert last.data["timers_cancelled"] == ["mentoring_heartbeat"]

    v = world.fire(cid, "begin_treatment", "therapist", {"therapy_notes": "notes"})
    assert "therapy_engaged" in v.milestones
    v = world.fire(cid, "finish_mentoring", "mentor")
    assert v.state == ("support.mentoring.done", "support.therapy.treatment")
    assert not [t for t in timers(world, cid) if t[1] == "pending"]

    # The last track finishing fires the join: the case moves to review by itself.
    v = world.fire(cid, "finish_therapy", "therapist")
    assert v.state == ("review",)
    assert events(world, cid)[-1].data.get("joined") == "support"
    assert [t[0] for t in timers(world, cid) if t[1] == "pending"] == ["review_due"]

    # An internal transition records its milestone and keeps the timer running.
    before = timers(world, cid)
    v = world.fire(cid, "confirm_exit_criteria", "chair")
    assert v.state == ("review",)
    assert "exit_criteria_met" in v.milestones
    assert timers(world, cid) == before

    v = world.fire(cid, "close", "chair")
    assert v.state == ("closed_completed",)
    assert v.closed and v.closed_at is not None
    assert v.allowed == ()
    assert all(t[1] == "cancelled" for t in timers(world, cid))

    history = events(world, cid)
    kinds = [e.kind for e in history]
    assert kinds[0] == "opened"
    assert kinds.count("transition") == 10
    assert kinds.count("milestone") == 3
    assert [e.seq for e in history] == list(range(1, len(history) + 1))
    assert v.version == 11
    with world.factory() as s:
        assert verify(s) == []


def test_milestones_are_recorded_once(world: World) -> None:
    cid = world.open().id
    drive_to(world, cid, "review")
    world.fire(cid, "confirm_exit_criteria", "chair")
    first = world.view(cid).milestones["exit_criteria_met"]
    world.fire(cid, "confirm_exit_criteria", "chair")
    assert world.view(cid).milestones["exit_criteria_met"] == first
    milestone_events = [e for e in events(world, cid) if e.kind == "milestone"]
    assert [e.data["milestone"] for e in milestone_events].count("exit_criteria_met") == 1


def test_event_data_is_applied_and_only_changes_are_recorded(world: World) -> None:
    cid = world.open({"screening_rationale": "initial"}).id
    v = world.fire(cid, "accept", "coordinator", {"screening_rationale": "initial"})
    assert v.data["screening_rationale"] == "initial"
    assert events(world, cid)[-1].data["changes"] == {}
    v = world.fire(cid, "screen_out", "police", {"screening_rationale": "no concern"})
    assert v.state == ("closed_no_concern",) and v.closed
    assert events(world, cid)[-1].data["changes"] == {"screening_rationale": "no concern"}


def test_system_fires_a_timer_trigger_whatever_by_says(world: World) -> None:
    cid = world.open().id
    drive_to(world, cid, "review")
    world.fire(cid, "confirm_exit_criteria", "chair")
    v = world.fire(cid, "close", "system", agency=None)
    assert v.state == ("closed_completed",)
    assert events(world, cid)[-1].role == "system"


def test_an_agency_cannot_claim_the_system_role(world: World) -> None:
    cid = world.open().id
    drive_to(world, cid, "review")
    with pytest.raises(Forbidden):
        world.fire(cid, "close", "system", agency=world.agencies["chair"])


def test_expected_version(world: World) -> None:
    cid = world.open().id
    with pytest.raises(VersionConflict) as info:
        world.fire(cid, "accept", "coordinator", expected_version=7)
    assert info.value.details["current_version"] == 1
    v = world.fire(cid, "accept", "coordinator", expected_version=1)
    assert v.version == 2


def test_open_case_checks(world: World) -> None:
    with pytest.raises(NotFound):
        world.open(workflow="no_such_workflow")
    with pytest.raises(NotFound):
        world.open(version=9)
    with pytest.raises(InvalidInput, match="no role 'janitor'"):
        world.open(assignments={"janitor": world.outsider, "referrer": world.agencies["referrer"]})
    with pytest.raises(InvalidInput, match="no role 'system'"):
        world.open(assignments={"system": world.agencies["referrer"]})
    with pytest.raises(InvalidInput, match="no agency"):
        world.open(assignments={"referrer": 9999})
    with pytest.raises(Forbidden):
        world.open(agency_id=world.outsider)
    with pytest.raises(InvalidInput, match="risk_level"):
        world.open({"risk_level": "extreme"})
    # The administrator may open a case without taking a role.
    v = world.open(agency_id=None)
    assert v.roles == ("system",)
    with world.factory() as s:
        assert s.scalar(select(Case.id).where(Case.id == v.id)) == v.id


def test_unknown_case(world: World) -> None:
    with world.factory() as s:
        for call in (
            lambda: service.view(s, 404, agency_id=None, now=T0),
            lambda: service.history(s, 404, agency_id=None),
            lambda: service.fire(s, 404, "accept", role="coordinator", agency_id=None, now=T0),
            lambda: service.assign(s, 404, "mentor", world.outsider, now=T0),
        ):
            with pytest.raises(NotFound):
                call()


def test_reading_a_case_without_a_role_is_not_found(world: World) -> None:
    cid = world.open().id
    with world.factory() as s:
        with pytest.raises(NotFound):
            service.view(s, cid, agency_id=world.outsider, now=T0)
        with pytest.raises(NotFound):
            service.history(s, cid, agency_id=world.outsider)
        with pytest.raises(NotFound):
            service.fire(s, cid, "accept", role="coordinator", agency_id=world.outsider, now=T0)


def test_allowed_triggers_follow_the_readers_roles(world: World) -> None:
    cid = world.open().id
    coord = world.view(cid, world.agencies["coordinator"])
    assert {a.trigger for a in coord.allowed} == {"accept", "withdraw"}
    police = world.view(cid, world.agencies["police"])
    assert {a.trigger for a in police.allowed} == {"accept"}
    assert world.view(cid, world.agencies["mentor"]).allowed == ()
    assert {a.trigger for a in world.view(cid).allowed} == {"accept", "withdraw"}


def test_assign(world: World) -> None:
    cid = world.open().id
    with world.session() as s:
        v = service.assign(
            s, cid, "mentor", world.outsider, now=T0, by_agency_id=world.agencies["coordinator"]
        )
    assert v.assignments["mentor"].agency_id == world.outsider
    assert v.version == 2
    # The new holder sees the case; the former one no longer does.
    assert world.view(cid, world.outsider).roles == ("mentor",)
    with pytest.raises(NotFound):
        world.view(cid, world.agencies["mentor"])
    last = events(world, cid)[-1]
    assert last.kind == "assigned"
    assert last.data == {
        "role": "mentor",
        "agency_id": world.outsider,
        "previous_agency_id": world.agencies["mentor"],
    }
    with world.factory() as s:
        with pytest.raises(Forbidden):
            service.assign(
                s, cid, "mentor", world.outsider, now=T0, by_agency_id=world.agencies["chair"]
            )
        with pytest.raises(InvalidInput):
            service.assign(s, cid, "janitor", world.outsider, now=T0)


def test_case_view_serialises_to_json(world: World) -> None:
    import json

    cid = world.open({"risk_level": "high"}).id
    world.fire(cid, "accept", "police")
    d = to_jsonable(world.view(cid))
    json.dumps(d)
    assert d["state"] == ["screening"]
    assert d["assignments"]["police"] == {
        "agency_id": world.agencies["police"],
        "agency": "Police Prevent Team",
    }
    assert d["timers"][0]["name"] == "screening_deadline"
    assert d["version"] == 2
    assert d["withheld"] == []
    with world.factory() as s:
        json.dumps(to_jsonable(service.history(s, cid, agency_id=None)))


def test_writes_in_one_session_extend_one_chain(world: World) -> None:
    # Write paths read the case row themselves, never an ORM copy the session holds:
    # successive writes in one transaction each see the one before, and a reader of the
    # ORM model sees the result once it re-reads.
    cid = world.open().id
    with world.session() as s:
        held = s.get(Case, cid)
        assert held is not None and held.state == ["referred"]
        view = service.fire(
            s, cid, "accept", role="coordinator", agency_id=world.agencies["coordinator"],
            now=world.tick(),
        )
        assert view.version == 2
        service.assign(s, cid, "mentor", world.outsider, now=world.tick())
        s.refresh(held)
        assert held.state == ["screening"] and held.revision == 3
        assert held.last_event_seq == 3
    assert [e.kind for e in events(world, cid)] == ["opened", "transition", "assigned"]
    with world.factory() as s:
        assert verify(s, cid) == []


def test_driver_errors_come_out_as_sqlalchemy_errors(world: World) -> None:
    # The event path runs its statements on the driver's cursor: a database error still
    # reaches the edge as SQLAlchemy's exception (the API answers DataError with a 4xx).
    if world.engine.dialect.name != "postgresql":
        pytest.skip("SQLite takes any integer the driver can bind")
    with world.factory() as s, pytest.raises(DataError):
        service.view(s, 2**40, agency_id=None, now=world.clock)
    with world.factory() as s, pytest.raises(DataError):
        world_fire_in(s, world, 2**40)


def world_fire_in(s: Session, world: World, case_id: int) -> None:
    service.fire(s, case_id, "accept", role="coordinator", agency_id=None, now=world.tick())


def test_a_sqlite_lock_not_granted_is_sqlalchemys_operational_error(sqlite_url: str) -> None:
    # Transactions begin IMMEDIATE straight on the driver; a writer that cannot get the
    # lock in time still gets SQLAlchemy's error, as through Connection.execute.
    from sqlalchemy.exc import OperationalError

    from engine.store.db import make_engine

    holder = make_engine(sqlite_url)
    waiter = make_engine(sqlite_url, connect_args={"timeout": 0.05})
    try:
        with holder.begin(), pytest.raises(OperationalError, match="locked"), waiter.begin():
            pass
    finally:
        holder.dispose()
        waiter.dispose()
