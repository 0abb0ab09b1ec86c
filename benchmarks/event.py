"""Figure 2, event: a persisted ``fire`` through the service, against the raw-driver floor.

Each event is one transaction at the edge: ``service.fire`` (load, access check, version
claim, machine decision, timers cancelled and started, audit event with its hash, the
reader's view) and the commit. The floor issues the same SQL statements, in the same order,
straight through sqlite3 or psycopg, with the hash and the business-day due time computed
by the same engine functions; it knows the benchmark workflow by heart instead of asking
the machine. Both count their statements, and the figure says if they differ.

Processes fire at disjoint sets of cases (no conflicts), picked at random.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event as sa_event

from benchmarks import procs
from benchmarks.bulk import Setup
from benchmarks.raw import Raw
from benchmarks.report import Figure, measured
from benchmarks.world import Database, VirtualClock
from engine import clock
from engine.cases import service
from engine.cases.audit import event_hash
from engine.definitions.model import Definition
from engine.timers.calendar import calendar_for

WARMUP = 30
RATIO_TARGET = 0.5
PG_TARGET = 1000
# state -> (the state it moves to, the timer it cancels, the timer it starts)
BOUNCE = {"ping": ("pong", "pong_due"), "pong": ("ping", "ping_due")}


@dataclass(frozen=True, slots=True)
class Params:
    db: Database
    setup: Setup
    cases: Sequence[int]
    processes: int
    seconds: float
    now: datetime


def worker_of(setup: Setup, case_id: int) -> int:
    """The agency holding the worker role on a bulk-loaded case."""
    return setup.workers[case_id % len(setup.workers)]


def _timed(
    params: Params, index: int, ready: Callable[[], None], one: Callable[[int, int], None]
) -> int:
    rng = random.Random(index)
    mine = list(params.cases[index :: params.processes])
    for n in range(WARMUP):
        one(rng.choice(mine), n)
    ready()
    deadline = clock.monotonic() + params.seconds
    done = 0
    while clock.monotonic() < deadline:
        one(rng.choice(mine), done)
        done += 1
    return done


def service_work(index: int, params: Params, ready: Callable[[], None]) -> int:
    engine, factory = params.db.factory()
    setup, now = params.setup, params.now

    def one(case_id: int, n: int) -> None:
        with factory() as session, session.begin():
            service.fire(
                session, case_id, "hit", role="worker", agency_id=worker_of(setup, case_id),
                data={"note": f"event {n}"}, now=now,
            )

    try:
        return _timed(params, index, ready, one)
    finally:
        engine.dispose()


class FloorEvent:
    """The statements of one ``fire`` of ``hit``, straight through the driver."""

    def __init__(self, raw: Raw, setup: Setup) -> None:
        self.raw = raw
        self.setup = setup
        self.defn: Definition = setup.definition
        self.calendar = calendar_for(self.defn)
        self.after = {t.name: t.after for t in self.defn.timers}
        self.timer_state = {t.name: t.state for t in self.defn.timers}

    def fire(self, case_id: int, agency_id: int, note: str, now: datetime) -> None:
        raw = self.raw
        raw.begin()
        try:
            self._fire(case_id, agency_id, note, now)
        except BaseException:
            raw.rollback()
            raise
        raw.commit()

    def _fire(self, case_id: int, agency_id: int, note: str, now: datetime) -> None:
        raw = self.raw
        # The case with its version's content hash (the compiled-workflow cache key).
        case = raw.one(
            "SELECT cases.id, cases.workflow_version_id, cases.workflow, "
            "cases.workflow_version, cases.state, cases.data, cases.milestones, "
            "cases.revision, cases.opened_at, cases.closed_at, cases.last_event_hash, "
            "cases.last_event_seq, workflow_versions.content_hash FROM cases "
            "JOIN workflow_versions ON workflow_versions.id = cases.workflow_version_id "
            "WHERE cases.id = %s",
            (case_id,),
        )
        # Every holder with its name: the access check, the reader's roles, the view.
        held = raw.all(
            "SELECT case_assignments.role, case_assignments.agency_id, agencies.name "
            "FROM case_assignments JOIN agencies ON agencies.id = case_assignments.agency_id "
            "WHERE case_assignments.case_id = %s ORDER BY case_assignments.role",
            (case_id,),
        )
        if ("worker", agency_id) not in [(r[0], r[1]) for r in held]:
            raise RuntimeError(f"agency {agency_id} is not the worker on case {case_id}")
        state = raw.json_value(case[4])
        data = raw.json_value(case[5])
        milestones = raw.json_value(case[6])
        seen, prev_hash, seq = case[7], case[10], case[11] + 1
        target, started = BOUNCE[state[0]]
        cur = raw.execute(
            "UPDATE cases SET revision = %s WHERE id = %s AND revision = %s",
            (seen + 1, case_id, seen),
        )
        if cur.rowcount != 1:
            raise RuntimeError(f"case {case_id} changed under the floor")
        live = raw.all(
            "SELECT id, name, state, step, due_at, status FROM timers "
            "WHERE case_id = %s AND status IN (%s, %s) ORDER BY due_at, id",
            (case_id, "pending", "firing"),
        )
        cancelled = [row for row in live if row[2] == state[0]]
        for row in cancelled:
            raw.execute(
                "UPDATE timers SET status = %s, claimed_until = %s WHERE id = %s",
                ("cancelled", None, row[0]),
            )
        due = self.calendar.add(now, self.after[started])
        raw.insert(
            "INSERT INTO timers (case_id, name, state, step, due_at, status, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (case_id, started, self.timer_state[started], 0, raw.ts(due), "pending",
             raw.ts(now)),
        )
        changes = {"note": note} if data.get("note") != note else {}
        merged = {**data, "note": note}
        event_data = {
            "changes": changes,
            "timers_started": [started],
            "timers_cancelled": sorted({row[1] for row in cancelled}),
            "milestones": [],
        }
        digest = event_hash(
            case_id=case_id, seq=seq, at=now, kind="transition", agency_id=agency_id,
            role="worker", trigger="hit", from_state=state, to_state=[target],
            data=event_data, prev_hash=prev_hash,
        )
        raw.execute(
            "INSERT INTO case_events (case_id, seq, at, kind, agency_id, role, \"trigger\", "
            "from_state, to_state, data, prev_hash, hash) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %j, %j, %j, %s, %s)",
            (case_id, seq, raw.ts(now), "transition", agency_id, "worker", "hit",
             raw.js(state), raw.js([target]), raw.js(event_data), prev_hash, digest),
        )
        raw.execute(
            "UPDATE cases SET state = %j, data = %j, milestones = %j, closed_at = %s, "
            "last_event_hash = %s, last_event_seq = %s WHERE id = %s",
            (raw.js([target]), raw.js(merged), raw.js(milestones), None, digest, seq,
             case_id),
        )


def floor_work(index: int, params: Params, ready: Callable[[], None]) -> int:
    raw = Raw(params.db)
    floor = FloorEvent(raw, params.setup)
    setup, now = params.setup, params.now

    def one(case_id: int, n: int) -> None:
        floor.fire(case_id, worker_of(setup, case_id), f"event {n}", now)

    try:
        return _timed(params, index, ready, one)
    finally:
        raw.close()


def measure(params: Params, *, floor: bool) -> float:
    """Events per second of one round (all processes together)."""
    work = floor_work if floor else service_work
    return procs.run(work, params, params.processes).rate  # type: ignore[arg-type]


def statements_per_event(
    db: Database, setup: Setup, case_id: int, now: datetime
) -> tuple[int, int]:
    """(service, floor) statements for one event each, BEGIN and COMMIT left out."""
    engine, factory = db.factory()
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.startswith(("BEGIN", "COMMIT")):
            seen.append(statement)

    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        with factory() as session, session.begin():
            service.fire(session, case_id, "hit", role="worker",
                         agency_id=worker_of(setup, case_id), data={"note": "count"}, now=now)
    finally:
        engine.dispose()
    raw = Raw(db)
    try:
        floor = FloorEvent(raw, setup)
        raw.begin()
        before = raw.statements
        floor._fire(case_id, worker_of(setup, case_id), "count again", now)
        raw.commit()
        return len(seen), raw.statements - before
    finally:
        raw.close()


def run(
    db: Database,
    setup: Setup,
    cases: Sequence[int],
    clock: VirtualClock,
    *,
    rounds: int,
    seconds: float,
    processes: Sequence[int] = (1, 2),
) -> list[Figure]:
    """The event figure on one database: service and floor alternating, round by round."""
    counted = statements_per_event(db, setup, cases[0], clock.advance())
    driver = "sqlite3" if db.kind == "sqlite" else "psycopg"
    label = f"the same {counted[1]} statements per event through {driver}, no ORM"
    figures = []
    for count in processes:
        mine: list[float] = []
        floor: list[float] = []
        for _ in range(rounds):
            params = Params(db, setup, cases, count, seconds, clock.advance())
            mine.append(measure(params, floor=False))
            floor.append(measure(params, floor=True))
        absolute = db.kind == "postgresql" and count == 2
        target = f">= {RATIO_TARGET}x" + (f", >= {PG_TARGET:,}/s" if absolute else "")

        def check(value: float, _floor: float, ratio: float, absolute: bool = absolute) -> bool:
            return ratio >= RATIO_TARGET and (not absolute or value >= PG_TARGET)

        note = ""
        if counted[0] != counted[1]:
            note = f"the service issued {counted[0]} statements, the floor {counted[1]}"
        figures.append(measured(
            "event", f"{db.kind}, {count} process{'es' if count > 1 else ''}", mine,
            "events/s", floor, label, target=target, check=check, note=note,
        ))
    return figures
