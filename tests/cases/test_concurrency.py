"""Several processes firing at one case on PostgreSQL: one winner per version, no lost update."""

from __future__ import annotations

import multiprocessing
import queue
from typing import Any

import pytest
from casekit import COUNTER_PATH, T0
from sqlalchemy import select

from engine.agencies import add_agency
from engine.cases import service
from engine.cases.audit import verify
from engine.clock import monotonic
from engine.errors import TransitionRejected, VersionConflict
from engine.machine.deploy import deploy
from engine.store.db import make_engine, session_factory
from engine.store.tables import CaseEvent

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PROCESSES = 4
ROUNDS = 5
BUMPS = 6
DEADLINE_SECONDS = 120


def _setup(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    factory = session_factory(engine)
    with factory() as s:
        deploy(s, COUNTER_PATH.read_text(), str(COUNTER_PATH), now=T0)
        agency = add_agency(s, name="workers", now=T0).agency.id
        case = service.open_case(
            s, workflow="counter", assignments={"worker": agency}, now=T0, agency_id=agency
        ).id
        s.commit()
    engine.dispose()
    return case, agency


def _race_worker(url: str, case_id: int, agency: int, me: int, barrier: Any, results: Any) -> None:
    """Each round: wait for everyone, then try to take the case at the same moment."""
    engine = make_engine(url)
    factory = session_factory(engine)
    outcomes: list[tuple[str, int | None]] = []
    try:
        for _ in range(ROUNDS):
            barrier.wait(timeout=DEADLINE_SECONDS)
            with factory() as s:
                try:
                    view = service.fire(
                        s,
                        case_id,
                        "take",
                        role="worker",
                        agency_id=agency,
                        data={"winner": f"p{me}"},
                        now=T0,
                    )
                    s.commit()
                    outcomes.append(("won", view.version))
                except VersionConflict:
                    s.rollback()
                    outcomes.append(("conflict", None))
                except TransitionRejected:
                    s.rollback()
                    outcomes.append(("rejected", None))
            barrier.wait(timeout=DEADLINE_SECONDS)
            if me == 0:
                # Put the case back for the next round while the others wait.
                with factory() as s:
                    service.fire(s, case_id, "bump", role="worker", agency_id=agency, now=T0)
                    s.commit()
            barrier.wait(timeout=DEADLINE_SECONDS)
    finally:
        results.put((me, outcomes))
        engine.dispose()


def _counter_worker(
    url: str, case_id: int, agency: int, me: int, barrier: Any, results: Any
) -> None:
    """Read the counter, write counter + 1 with expected_version; retry on conflict."""
    engine = make_engine(url)
    factory = session_factory(engine)
    conflicts = 0
    try:
        barrier.wait(timeout=DEADLINE_SECONDS)
        done = 0
        while done < BUMPS:
            with factory() as s:
                seen = service.view(s, case_id, agency_id=agency, now=T0)
            with factory() as s:
                try:
                    service.fire(
                        s,
                        case_id,
                        "bump",
                        role="worker",
                        agency_id=agency,
                        data={"count": seen.data["count"] + 1},
                        expected_version=seen.version,
                        now=T0,
                    )
                    s.commit()
                    done += 1
                except VersionConflict:
                    s.rollback()
                    conflicts += 1
    finally:
        results.put((me, conflicts))
        engine.dispose()


def _run(target: Any, url: str, case_id: int, agency: int) -> list[Any]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=target, args=(url, case_id, agency, i, barrier, results))
        for i in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    deadline = monotonic() + DEADLINE_SECONDS
    collected: list[tuple[int, Any]] = []
    try:
        while len(collected) < PROCESSES:
            remaining = deadline - monotonic()
            assert remaining > 0, "worker processes did not finish in time"
            try:
                collected.append(results.get(timeout=remaining))
            except queue.Empty:
                break
    finally:
        for p in procs:
            p.join(timeout=max(1.0, deadline - monotonic()))
            if p.is_alive():
                p.kill()
    assert len(collected) == PROCESSES, collected
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return [value for _, value in sorted(collected)]


def test_one_winner_per_version(pg_url: str) -> None:
    case_id, agency = _setup(pg_url)
    per_process = _run(_race_worker, pg_url, case_id, agency)
    for round_no in range(ROUNDS):
        outcomes = [p[round_no] for p in per_process]
        winners = [o for o in outcomes if o[0] == "won"]
        assert len(winners) == 1, (round_no, outcomes)
        assert all(o[0] in ("conflict", "rejected") for o in outcomes if o[0] != "won")

    engine = make_engine(pg_url)
    with session_factory(engine)() as s:
        takes = list(
            s.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.trigger == "take")
            )
        )
        final = service.view(s, case_id, agency_id=None, now=T0)
        assert verify(s, case_id) == []
    engine.dispose()
    assert len(takes) == ROUNDS
    # opened (1) + per round one take and one bump.
    assert final.version == 1 + 2 * ROUNDS


def test_no_lost_update(pg_url: str) -> None:
    case_id, agency = _setup(pg_url)
    conflicts = _run(_counter_worker, pg_url, case_id, agency)
    engine = make_engine(pg_url)
    with session_factory(engine)() as s:
        final = service.view(s, case_id, agency_id=None, now=T0)
        events = list(
            s.scalars(
                select(CaseEvent)
                .where(CaseEvent.case_id == case_id, CaseEvent.kind == "transition")
                .order_by(CaseEvent.seq)
            )
        )
        assert verify(s, case_id) == []
    engine.dispose()
    total = PROCESSES * BUMPS
    assert final.data["count"] == total
    assert final.version == 1 + total
    # Each version moved exactly once, and each write saw the value before it.
    assert [e.data["changes"]["count"] for e in events] == list(range(1, total + 1))
    assert sum(conflicts) >= 0


def test_an_idle_connection_killed_by_the_server_is_replaced(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No ping per transaction: a pooled connection is pinged only after sitting idle, and
    # a dead one is replaced before anyone uses it.
    import psycopg
    from sqlalchemy import text

    from engine.store import db

    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()
