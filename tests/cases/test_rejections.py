"""Every rejection path leaves the database exactly as it was.

After the error the test even commits the session: the service must have raised before
writing anything, not merely relied on the edge's rollback.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from casekit import World, drive_to, dump, make_world

from engine.cases import service
from engine.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    ReferralError,
    TransitionRejected,
    VersionConflict,
)


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    w = make_world(db_url)
    yield w
    w.dispose()


@dataclass(frozen=True)
class Rejection:
    stage: str
    trigger: str
    role: str
    error: type[ReferralError]
    data: dict[str, Any] = field(default_factory=dict)
    agency: str = "auto"  # "auto": the agency holding ``role``; else a role whose agency acts
    details: dict[str, Any] = field(default_factory=dict)
    expected_version: int | None = None
    case: int | None = None


REJECTIONS = {
    "wrong role": Rejection(
        "referred",
        "accept",
        "referrer",
        TransitionRejected,
        details={"reason": "role_not_allowed", "allowed": []},
    ),
    "wrong agency": Rejection("referred", "accept", "coordinator", Forbidden, agency="police"),
    "agency without any role on the case": Rejection(
        "referred", "accept", "coordinator", NotFound, agency="outsider"
    ),
    "agency claiming the system role": Rejection(
        "referred", "accept", "system", Forbidden, agency="coordinator"
    ),
    "trigger not allowed in this state": Rejection(
        "referred",
        "adopt",
        "chair",
        TransitionRejected,
        details={"reason": "not_in_state", "state": ["referred"]},
    ),
    "unknown trigger": Rejection(
        "referred",
        "teleport",
        "coordinator",
        TransitionRejected,
        details={"reason": "unknown_trigger"},
    ),
    "failed when": Rejection(
        "panel",
        "adopt",
        "chair",
        TransitionRejected,
        data={"risk_level": "low", "consent": True},
        details={"reason": "guard_failed", "state": ["panel"]},
    ),
    "missing requires": Rejection(
        "screening",
        "screen_out",
        "police",
        TransitionRejected,
        details={"reason": "missing_required", "missing": ["screening_rationale"]},
    ),
    "missing needs": Rejection(
        "review",
        "close",
        "chair",
        TransitionRejected,
        details={"reason": "milestones_missing", "missing": ["exit_criteria_met"]},
    ),
    "bad field type": Rejection(
        "referred",
        "accept",
        "coordinator",
        InvalidInput,
        data={"consent": "yes"},
        details={"field": "consent"},
    ),
    "bad enum value": Rejection(
        "panel",
        "adopt",
        "chair",
        InvalidInput,
        data={"risk_level": "extreme"},
        details={"field": "risk_level"},
    ),
    "unknown field": Rejection(
        "referred",
        "accept",
        "coordinator",
        InvalidInput,
        data={"shoe_size": 42},
        details={"field": "shoe_size"},
    ),
    "unknown case": Rejection("referred", "accept", "coordinator", NotFound, case=424242),
    "stale expected version": Rejection(
        "screening",
        "refer_to_panel",
        "police",
        VersionConflict,
        expected_version=1,
        details={"current_version": 2},
    ),
}


@pytest.mark.parametrize("name", list(REJECTIONS))
def test_rejection_changes_nothing(world: World, name: str) -> None:
    r = REJECTIONS[name]
    cid = world.open().id
    drive_to(world, cid, r.stage)
    if r.agency == "auto":
        agency_id = world.agencies.get(r.role)
    elif r.agency == "outsider":
        agency_id = world.outsider
    else:
        agency_id = world.agencies[r.agency]
    before = dump(world.engine)
    with world.factory() as s:
        with pytest.raises(r.error) as info:
            service.fire(
                s,
                r.case or cid,
                r.trigger,
                role=r.role,
                agency_id=agency_id,
                data=r.data,
                expected_version=r.expected_version,
                now=world.tick(),
            )
        s.commit()
    assert dump(world.engine) == before
    for key, value in r.details.items():
        assert info.value.details[key] == value, (key, info.value.details)
    if isinstance(info.value, TransitionRejected):
        # The error names the case, the trigger, the state, the role and what is allowed.
        details = info.value.details
        assert details["case_id"] == cid
        assert details["trigger"] == r.trigger
        assert details["role"] == r.role
        assert "allowed" in details
        assert str(cid) in info.value.message and r.trigger in info.value.message


def test_rejected_open_changes_nothing(world: World) -> None:
    before = dump(world.engine)
    for kwargs in (
        {"data": {"shoe_size": 1}},
        {"data": {"consent": "maybe"}},
        {"assignments": {"janitor": world.outsider}},
        {"agency_id": world.outsider},
        {"workflow": "nope"},
    ):
        with world.factory() as s:
            with pytest.raises(ReferralError):
                args: dict[str, Any] = {
                    "workflow": "community_panel",
                    "assignments": dict(world.agencies),
                    "agency_id": world.agencies["referrer"],
                    "data": {},
                } | kwargs
                service.open_case(s, now=world.tick(), **args)
            s.commit()
    assert dump(world.engine) == before


def test_firing_on_a_closed_case_is_rejected(world: World) -> None:
    cid = world.open().id
    world.fire(cid, "withdraw", "coordinator")
    before = dump(world.engine)
    with world.factory() as s:
        with pytest.raises(TransitionRejected):
            service.fire(
                s,
                cid,
                "accept",
                role="coordinator",
                agency_id=world.agencies["coordinator"],
                now=world.tick(),
            )
        s.commit()
    assert dump(world.engine) == before
