"""``visible_to`` keeps therapy notes with the therapist, in views and in history."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from casekit import World, drive_to, make_world

from engine.cases import service
from engine.errors import Forbidden, InvalidInput
from engine.views_json import to_jsonable

SECRET = "disclosed a family conflict in session 3"


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    w = make_world(db_url)
    yield w
    w.dispose()


@pytest.fixture
def case_id(world: World) -> int:
    cid = world.open().id
    drive_to(world, cid, "support")
    world.fire(cid, "begin_treatment", "therapist", {"therapy_notes": SECRET})
    return cid


def _history(world: World, cid: int, agency_id: int | None, role: str | None = None) -> str:
    with world.factory() as s:
        events = service.history(s, cid, agency_id=agency_id, role=role)
    return json.dumps(to_jsonable(events))


def test_the_therapist_sees_the_notes(world: World, case_id: int) -> None:
    therapist = world.agencies["therapist"]
    view = world.view(case_id, therapist)
    assert view.data["therapy_notes"] == SECRET
    assert view.withheld == ()
    assert SECRET in _history(world, case_id, therapist)


@pytest.mark.parametrize("role", ["coordinator", "chair", "mentor", "police", "referrer"])
def test_other_roles_do_not(world: World, case_id: int, role: str) -> None:
    agency = world.agencies[role]
    view = world.view(case_id, agency)
    assert "therapy_notes" not in view.data
    assert view.withheld == ("therapy_notes",)
    assert SECRET not in json.dumps(to_jsonable(view))
    history = _history(world, case_id, agency)
    assert SECRET not in history
    assert '"withheld": ["therapy_notes"]' in history
    # The rest of the case stays readable.
    assert view.data["risk_level"] == "moderate"


def test_the_administrator_is_restricted_too(world: World, case_id: int) -> None:
    view = world.view(case_id)
    assert view.roles == ("system",)
    assert "therapy_notes" not in view.data
    assert SECRET not in _history(world, case_id, None)
    # No back door: the administrator cannot read as the therapist either.
    with pytest.raises(InvalidInput):
        world.view(case_id, None, role="therapist")
    with world.factory() as s, pytest.raises(InvalidInput):
        service.history(s, case_id, agency_id=None, role="therapist")


def test_an_agency_holding_several_roles_sees_what_any_of_them_may(world: World) -> None:
    both = dict(world.agencies)
    both["mentor"] = both["therapist"]
    cid = world.open(assignments=both).id
    drive_to(world, cid, "support")
    world.fire(cid, "begin_treatment", "therapist", {"therapy_notes": SECRET})
    agency = world.agencies["therapist"]
    assert world.view(cid, agency).data["therapy_notes"] == SECRET
    # Narrowed to one role, the view follows that role only.
    assert "therapy_notes" not in world.view(cid, agency, role="mentor").data
    with pytest.raises(Forbidden):
        world.view(cid, agency, role="chair")
