"""The audit hash chain catches an edited, a deleted and a swapped event, naming the first."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from casekit import World, drive_to, execute, make_world
from sqlalchemy import select, update

from engine.cases.audit import verify
from engine.errors import NotFound
from engine.store.tables import CaseEvent


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    w = make_world(db_url)
    yield w
    w.dispose()


def _case_with_history(world: World) -> int:
    cid = world.open({"screening_rationale": "x"}).id
    drive_to(world, cid, "support")  # opened + 3 transitions + 1 milestone = 5 events
    return cid


def _event_id(world: World, cid: int, seq: int) -> int:
    with world.factory() as s:
        found = s.scalar(select(CaseEvent.id).where(CaseEvent.case_id == cid, CaseEvent.seq == seq))
    assert found is not None
    return found


def _verify(world: World, cid: int | None = None) -> list[tuple[int, int, int | None]]:
    with world.factory() as s:
        return [(f.case_id, f.seq, f.event_id) for f in verify(s, cid)]


def test_an_untouched_trail_verifies(world: World) -> None:
    cid = _case_with_history(world)
    other = _case_with_history(world)
    assert _verify(world) == []
    assert _verify(world, cid) == []
    assert _verify(world, other) == []
    with world.factory() as s, pytest.raises(NotFound):
        verify(s, 999)


def test_an_edited_event_is_caught(world: World) -> None:
    cid = _case_with_history(world)
    other = _case_with_history(world)
    execute(
        world.engine,
        "UPDATE case_events SET role = 'mentor' WHERE case_id = :c AND seq = 3",
        c=cid,
    )
    assert _verify(world) == [(cid, 3, _event_id(world, cid, 3))]
    assert _verify(world, other) == []
    with world.factory() as s:
        fault = verify(s, cid)[0]
    assert "edited" in fault.problem
    assert f"case {cid} seq 3" in fault.format()


def test_edited_event_data_is_caught(world: World) -> None:
    cid = _case_with_history(world)
    with world.engine.begin() as conn:
        event = conn.execute(
            select(CaseEvent.__table__).where(CaseEvent.case_id == cid, CaseEvent.seq == 2)
        ).one()
        data = dict(event.data)
        data["changes"] = {"screening_rationale": "rewritten"}
        conn.execute(update(CaseEvent).where(CaseEvent.id == event.id).values(data=data))
    assert _verify(world) == [(cid, 2, event.id)]


def test_a_deleted_event_is_caught(world: World) -> None:
    cid = _case_with_history(world)
    execute(world.engine, "DELETE FROM case_events WHERE case_id = :c AND seq = 2", c=cid)
    assert _verify(world) == [(cid, 2, None)]


def test_deleting_the_newest_event_is_caught(world: World) -> None:
    cid = _case_with_history(world)
    execute(world.engine, "DELETE FROM case_events WHERE case_id = :c AND seq = 5", c=cid)
    assert _verify(world) == [(cid, 5, None)]


def test_deleting_and_renumbering_is_caught(world: World) -> None:
    cid = _case_with_history(world)
    execute(world.engine, "DELETE FROM case_events WHERE case_id = :c AND seq = 2", c=cid)
    for seq in (3, 4, 5):
        execute(
            world.engine,
            "UPDATE case_events SET seq = :n WHERE case_id = :c AND seq = :s",
            c=cid,
            s=seq,
            n=seq - 1,
        )
    execute(world.engine, "UPDATE cases SET last_event_seq = 4 WHERE id = :c", c=cid)
    # The renumbered seq 2 no longer matches its own hash.
    assert _verify(world) == [(cid, 2, _event_id(world, cid, 2))]


def test_a_swapped_pair_is_caught(world: World) -> None:
    cid = _case_with_history(world)
    second, third = _event_id(world, cid, 2), _event_id(world, cid, 3)
    execute(world.engine, "UPDATE case_events SET seq = -1 WHERE id = :i", i=second)
    execute(world.engine, "UPDATE case_events SET seq = 2 WHERE id = :i", i=third)
    execute(world.engine, "UPDATE case_events SET seq = 3 WHERE id = :i", i=second)
    assert _verify(world) == [(cid, 2, third)]


def test_events_appended_after_verification_keep_the_chain(world: World) -> None:
    cid = _case_with_history(world)
    world.fire(cid, "begin_sessions", "coordinator")
    world.fire(cid, "withdraw", "coordinator")
    assert _verify(world, cid) == []


def test_deleting_a_whole_history_is_caught(world: World) -> None:
    cid = _case_with_history(world)
    other = _case_with_history(world)
    execute(world.engine, "DELETE FROM case_events WHERE case_id = :c", c=cid)
    assert _verify(world) == [(cid, 1, None)]
    assert _verify(world, other) == []
