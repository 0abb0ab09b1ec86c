"""Helpers shared by the cases tests: a deployed example workflow, one agency per role,
explicit clocks, and a full dump of every table for "nothing changed" checks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from engine.agencies import add_agency
from engine.cases import service
from engine.cases.views import CaseView
from engine.machine.deploy import deploy
from engine.store.db import make_engine, session_factory
from engine.store.tables import Base

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLE_PATH = FIXTURES / "cases_example.yaml"
EXAMPLE = EXAMPLE_PATH.read_text(encoding="utf-8")
COUNTER_PATH = FIXTURES / "cases_counter.yaml"

# A Monday in March: no bank holiday near, London on GMT (= UTC).
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

AGENCY_FOR_ROLE = {
    "referrer": "Northside School",
    "police": "Police Prevent Team",
    "police_supervisor": "Police Supervisor",
    "coordinator": "Council Channel Team",
    "chair": "Panel Chair",
    "mentor": "Exit Mentors",
    "therapist": "Youth Clinic",
}
OUTSIDER = "Unrelated Agency"


@dataclass
class World:
    engine: Engine
    factory: sessionmaker[Session]
    agencies: dict[str, int] = field(default_factory=dict)  # role -> agency id
    outsider: int = 0
    tokens: dict[int, str] = field(default_factory=dict)
    clock: datetime = T0

    def tick(self, minutes: int = 1) -> datetime:
        self.clock += timedelta(minutes=minutes)
        return self.clock

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.factory() as s:
            yield s
            s.commit()

    def open(self, data: Mapping[str, Any] | None = None, **kwargs: Any) -> CaseView:
        kwargs.setdefault("workflow", "community_panel")
        kwargs.setdefault("assignments", dict(self.agencies))
        kwargs.setdefault("agency_id", self.agencies["referrer"])
        with self.session() as s:
            return service.open_case(s, data=data or {}, now=self.tick(), **kwargs)

    def fire(
        self,
        case_id: int,
        trigger: str,
        role: str,
        data: Mapping[str, Any] | None = None,
        *,
        agency: int | str | None = "auto",
        **kwargs: Any,
    ) -> CaseView:
        agency_id = self.agencies.get(role) if agency == "auto" else agency
        assert not isinstance(agency_id, str)
        with self.session() as s:
            return service.fire(
                s,
                case_id,
                trigger,
                role=role,
                agency_id=agency_id,
                data=data,
                now=self.tick(),
                **kwargs,
            )

    def view(self, case_id: int, agency_id: int | None = None, **kwargs: Any) -> CaseView:
        with self.factory() as s:
            return service.view(s, case_id, agency_id=agency_id, now=self.clock, **kwargs)

    def dispose(self) -> None:
        self.engine.dispose()


def make_world(url: str, *, source: str = EXAMPLE) -> World:
    engine = make_engine(url)
    world = World(engine=engine, factory=session_factory(engine))
    with world.session() as s:
        deploy(s, source, str(EXAMPLE_PATH), now=T0)
        for role, name in AGENCY_FOR_ROLE.items():
            created = add_agency(s, name=name, now=T0)
            world.agencies[role] = created.agency.id
            world.tokens[created.agency.id] = created.token
        world.outsider = add_agency(s, name=OUTSIDER, now=T0).agency.id
    return world


# The route from a new case to each stage of the example, as (trigger, role, data).
ROUTE: list[tuple[str, str, dict[str, Any]]] = [
    ("accept", "coordinator", {}),
    ("refer_to_panel", "police", {}),
    ("adopt", "chair", {"risk_level": "moderate", "consent": True}),
    ("begin_sessions", "coordinator", {}),
    ("finish_mentoring", "mentor", {}),
    ("begin_treatment", "therapist", {"therapy_notes": "first session notes"}),
    ("finish_therapy", "therapist", {}),
]
STAGE_AFTER = {
    "referred": 0,
    "screening": 1,
    "panel": 2,
    "support": 3,
    "review": 7,
}


def drive_to(world: World, case_id: int, stage: str) -> CaseView:
    view = world.view(case_id)
    for trigger, role, data in ROUTE[: STAGE_AFTER[stage]]:
        view = world.fire(case_id, trigger, role, data)
    return view


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    result: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            order = list(table.primary_key.columns)
            rows = conn.execute(select(table).order_by(*order)).all()
            result[table.name] = [tuple(r) for r in rows]
    return result


def execute(engine: Engine, sql: str, **params: Any) -> int:
    with engine.begin() as conn:
        return int(conn.execute(text(sql), params).rowcount)
