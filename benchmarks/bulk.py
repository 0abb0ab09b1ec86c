"""The fast bulk loader: open cases by the hundred thousand, as ``open_case`` would.

The benchmark workflow is deployed and the agencies created through the engine; the cases
themselves are written straight to the tables (``executemany`` on SQLite, ``COPY`` on
PostgreSQL) with exactly the rows ``service.open_case`` writes for a case opened by the
system: the case in ``ping``, both role assignments, the ``opened`` audit event with its
hash (so ``referral audit verify`` passes) and the pending ``ping_due`` timer.
``tests/test_benchmarks_smoke.py`` checks the rows against a case opened by the service.

Each case's timer is due at a pseudo-random point of a window, the same window whatever
the size, so a database grown from 1,000 to 1,000,000 cases keeps due times spread over
every case, old and new.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from benchmarks.raw import Raw
from benchmarks.world import BENCH_WORKFLOW, EPOCH, WORKFLOW, Database
from engine.agencies import add_agency
from engine.cases import data as casedata
from engine.cases.audit import event_hash
from engine.definitions.model import SYSTEM_ROLE, Definition
from engine.machine.deploy import compiled_by_id, deploy, version_id

CHUNK = 20_000
# Fractional part of i * golden ratio: well spread, deterministic, no generator state.
_PHI = 0.6180339887498949
NOTE = "Referred by the benchmark"


@dataclass(frozen=True, slots=True)
class Setup:
    """What the loader and the figures need to know about the prepared database."""

    version_id: int
    definition: Definition
    # Agencies holding the worker role (webhook) and the coordinator role (email).
    workers: tuple[int, ...]
    coordinators: tuple[int, ...]
    window_start: datetime
    window: timedelta


def prepare(
    db: Database,
    *,
    agencies: int = 20,
    webhook_url: str = "http://127.0.0.1:9/hook",
    window_start: datetime = EPOCH + timedelta(days=30),
    window: timedelta = timedelta(days=300),
) -> Setup:
    """Deploy the benchmark workflow and create agencies through the engine."""
    engine, factory = db.factory()
    try:
        with factory() as session, session.begin():
            done = deploy(session, BENCH_WORKFLOW, "benchmarks/bench.yaml", now=EPOCH)
            row_id = version_id(session, WORKFLOW, done.version)
            defn = compiled_by_id(session, row_id).definition
            workers = tuple(
                add_agency(session, name=f"Worker agency {i}", webhook=f"{webhook_url}/{i}",
                           now=EPOCH).agency.id
                for i in range(agencies)
            )
            coordinators = tuple(
                add_agency(session, name=f"Coordinating agency {i}",
                           email=f"coordinator{i}@council.example", now=EPOCH).agency.id
                for i in range(max(1, agencies // 4))
            )
    finally:
        engine.dispose()
    return Setup(row_id, defn, workers, coordinators, window_start, window)


def due_time(setup: Setup, case_id: int) -> datetime:
    """Where in the window the case's ``ping_due`` timer falls due."""
    frac = (case_id * _PHI) % 1.0
    return setup.window_start + timedelta(seconds=round(setup.window.total_seconds() * frac))


def initial_data(defn: Definition) -> dict[str, Any]:
    return {**casedata.defaults(defn), "note": NOTE}


def _rows(
    setup: Setup, first_id: int, count: int, opened_at: datetime, raw: Raw
) -> Iterator[tuple[list[tuple[Any, ...]], ...]]:
    """Rows of cases, assignments, events and timers, ``CHUNK`` cases at a time."""
    defn = setup.definition
    data = initial_data(defn)
    data_json = raw.js(data)
    state_json = raw.js(["ping"])
    opened = raw.ts(opened_at)
    workers, coordinators = setup.workers, setup.coordinators
    for start in range(first_id, first_id + count, CHUNK):
        cases, assignments, events, timers = [], [], [], []
        for case_id in range(start, min(first_id + count, start + CHUNK)):
            worker = workers[case_id % len(workers)]
            coordinator = coordinators[case_id % len(coordinators)]
            event_data = {
                "changes": data,
                "assignments": {"coordinator": coordinator, "worker": worker},
                "timers_started": ["ping_due"],
                "timers_cancelled": [],
                "milestones": [],
            }
            digest = event_hash(
                case_id=case_id, seq=1, at=opened_at, kind="opened", agency_id=None,
                role=SYSTEM_ROLE, trigger=None, from_state=[], to_state=["ping"],
                data=event_data, prev_hash="",
            )
            cases.append((case_id, setup.version_id, WORKFLOW, defn.version, state_json,
                          data_json, "{}", 1, opened, None, digest, 1))
            assignments.append((case_id, "worker", worker))
            assignments.append((case_id, "coordinator", coordinator))
            events.append((case_id, 1, opened, "opened", None, SYSTEM_ROLE, None, "[]",
                           state_json, raw.js(event_data), "", digest))
            timers.append((case_id, "ping_due", "ping", 0, raw.ts(due_time(setup, case_id)),
                           "pending", None, None, opened))
        yield cases, assignments, events, timers


_COLUMNS = {
    "cases": "id, workflow_version_id, workflow, workflow_version, state, data, milestones, "
    "revision, opened_at, closed_at, last_event_hash, last_event_seq",
    "case_assignments": "case_id, role, agency_id",
    "case_events": 'case_id, seq, at, kind, agency_id, role, "trigger", from_state, to_state, '
    "data, prev_hash, hash",
    "timers": "case_id, name, state, step, due_at, status, claimed_until, fired_at, created_at",
}


def load_cases(db: Database, setup: Setup, count: int, *, opened_at: datetime = EPOCH) -> range:
    """Open ``count`` more cases in ``ping``, each with its pending timer; their ids."""
    raw = Raw(db)
    try:
        # The rows are consistent by construction: skip the per-row foreign-key checks
        # (PostgreSQL runs them as triggers, which would dominate the load).
        if raw.pg:
            raw.execute("SET session_replication_role = replica")
            raw.execute("SET synchronous_commit = off")
        else:
            raw.execute("PRAGMA foreign_keys=OFF")
        raw.begin()
        first_id = int(raw.one("SELECT COALESCE(MAX(id), 0) FROM cases")[0]) + 1
        for chunk in _rows(setup, first_id, count, opened_at, raw):
            for table, rows in zip(_COLUMNS, chunk, strict=True):
                _write(raw, table, rows)
        if raw.pg:
            for table in ("cases", "case_events", "timers"):
                raw.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT MAX(id) FROM {table}))"
                )
        raw.commit()
        if raw.pg:
            # Fresh statistics, so the planner sees the table as it now is.
            raw.conn.autocommit = True
            # Vacuumed now, so autovacuum does not wake up in the middle of a measurement.
            raw.execute("VACUUM ANALYZE cases, case_assignments, case_events, timers")
        else:
            raw.execute("PRAGMA optimize")
    finally:
        raw.close()
    return range(first_id, first_id + count)


def _write(raw: Raw, table: str, rows: list[tuple[Any, ...]]) -> None:
    raw.bulk_insert(table, _COLUMNS[table], rows)
