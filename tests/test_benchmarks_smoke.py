"""The benchmarks still run, and measure what they claim to: no timing is asserted here.

The quick run on SQLite must print every figure with its floor and ratio. The bulk loader
must write the rows ``open_case`` writes, and the raw-driver floors must issue as many
statements as the engine does for the same work (when the service or the tick changes its
SQL, the floor in ``benchmarks/event.py`` or ``benchmarks/tick.py`` must follow).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO
from sqlalchemy import select

from benchmarks import bulk, event, latency, tick
from benchmarks.raw import Raw
from benchmarks.report import FIGURES
from benchmarks.world import EPOCH, WORKFLOW, Database, VirtualClock, temporary_database
from engine.cases import service
from engine.cases.audit import verify
from engine.store.tables import Case, CaseAssignment, CaseEvent, Timer


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with temporary_database("sqlite", tmp_path) as database:
        yield database


@pytest.mark.slow
def test_quick_run_reports_every_figure_with_floor_and_ratio() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--db", "sqlite", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout)
    assert report["quick"] is True and report["databases"] == ["sqlite"]
    by_figure: dict[str, list[dict[str, object]]] = {}
    for line in report["figures"]:
        by_figure.setdefault(str(line["figure"]), []).append(line)
    assert sorted(by_figure) == sorted(FIGURES)
    redis_up = latency.redis_missing() is None
    for name, lines in by_figure.items():
        for line in lines:
            if line["skipped"]:
                assert name == "latency" and not redis_up, line
                continue
            for key in ("value", "floor", "ratio"):
                value = line[key]
                assert isinstance(value, float) and math.isfinite(value), (name, key, line)
            assert line["floor_label"], line
            assert line["rounds"] and line["floor_rounds"], line
    assert "figure" in done.stderr and "floor" in done.stderr  # the table, for people


def test_bulk_loaded_case_matches_one_opened_by_the_service(db: Database) -> None:
    setup = bulk.prepare(db, agencies=2)
    [loaded] = bulk.load_cases(db, setup, 1)
    engine, factory = db.factory()
    try:
        with factory() as session, session.begin():
            opened = service.open_case(
                session, workflow=WORKFLOW,
                assignments={"worker": setup.workers[loaded % len(setup.workers)],
                             "coordinator": setup.coordinators[loaded % len(setup.coordinators)]},
                data={"note": bulk.NOTE}, now=EPOCH,
            ).id

        def rows(case_id: int) -> tuple[object, ...]:
            with factory() as session:
                case = session.get(Case, case_id)
                assert case is not None
                held = session.execute(
                    select(CaseAssignment.role, CaseAssignment.agency_id)
                    .where(CaseAssignment.case_id == case_id).order_by(CaseAssignment.role)
                ).all()
                [opened_event] = session.scalars(
                    select(CaseEvent).where(CaseEvent.case_id == case_id)
                ).all()
                [timer] = session.scalars(select(Timer).where(Timer.case_id == case_id)).all()
                return (
                    case.workflow_version_id, case.state, case.data, case.milestones,
                    case.revision, case.opened_at, case.closed_at, case.last_event_seq,
                    [tuple(r) for r in held],
                    (opened_event.seq, opened_event.kind, opened_event.role,
                     opened_event.agency_id, opened_event.trigger, opened_event.from_state,
                     opened_event.to_state, opened_event.data, opened_event.prev_hash),
                    # The loader spreads due times on purpose; everything else is alike.
                    (timer.name, timer.state, timer.step, timer.status, timer.created_at),
                )

        assert rows(loaded) == rows(opened)
        with factory() as session:
            assert verify(session) == []
    finally:
        engine.dispose()


def test_floors_issue_the_engine_statements_and_keep_the_audit_chain(db: Database) -> None:
    setup = bulk.prepare(db, agencies=4)
    cases = list(bulk.load_cases(db, setup, 40))
    clock = VirtualClock()
    engine_count, floor_count = event.statements_per_event(db, setup, cases[0], clock.advance())
    assert engine_count == floor_count, (
        f"service.fire issues {engine_count} statements, the floor in benchmarks/event.py "
        f"{floor_count}: bring the floor in line with the service"
    )
    tick_count, floor_per_timer = tick.statements_per_timer(db, setup, cases, clock.advance())
    assert tick_count == pytest.approx(floor_per_timer, abs=0.01), (
        f"the tick issues {tick_count:.2f} statements per timer, the floor in "
        f"benchmarks/tick.py {floor_per_timer:.2f}: bring the floor in line with the tick"
    )
    # More floor work of both kinds, then every chain must still verify.
    raw = Raw(db)
    try:
        floor = event.FloorEvent(raw, setup)
        now = clock.advance()
        for n, case_id in enumerate(cases[:10]):
            floor.fire(case_id, event.worker_of(setup, case_id), f"floor {n}", now)
    finally:
        raw.close()
    assert tick.measure(tick.Params(db, setup, 1, now), floor=True) >= 0
    now = clock.advance()
    assert tick.make_due(db, cases, 10, now, seed=3) == 10
    assert tick.measure(tick.Params(db, setup, 1, now), floor=True) > 0
    engine, factory = db.factory()
    try:
        with factory() as session:
            assert verify(session) == []
            fired = session.scalars(select(Timer).where(Timer.status == "fired")).all()
            assert len(fired) >= 15
    finally:
        engine.dispose()
