"""Where two ways of writing remain on purpose, they write the same rows.

- The fast path against plain ``Connection.execute``: a whole case (open, fire, assign,
  reminders and ladder steps, a ``fire:`` timer, an acknowledgement) run once on the fast
  path and once with every prepared statement sent through ``Connection.execute``; every
  table's rows compared, and every prepared statement of the engine run on the way.
- A batch tick of N timers against N single fires (batches of one), every row compared.

Both on SQLite and PostgreSQL. Message ids are random, so they (and the hashes that
cover them) are compared by position; every other column, ids included, must match.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker
from support_servers import ENTER, STEP1_AT, STEP2_AT, TimerWorld, make_timer_world

import engine
from engine.cases import service
from engine.cases.audit import verify
from engine.errors import AckRejected
from engine.store import writers
from engine.store.db import make_engine, session_factory, upgrade
from engine.store.fastpath import Cursor, Prepared, PreparedInsert
from engine.store.tables import Base
from engine.timers import tick as timers
from engine.timers.escalations import acknowledge

Scenario = Callable[[TimerWorld], None]


@pytest.fixture
def fresh(db_url: str, tmp_path: Path) -> Iterator[Callable[[], sessionmaker[Session]]]:
    """Empty, migrated databases of the test's backend, one after another."""
    engines: list[Engine] = []

    def make() -> sessionmaker[Session]:
        if db_url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path / f'parity{len(engines)}.db'}"
            engine_ = make_engine(url)
            upgrade(engine_)
        else:
            engine_ = make_engine(db_url)
            names = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
            with engine_.begin() as conn:
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        engines.append(engine_)
        return session_factory(engine_)

    yield make
    for engine_ in engines:
        engine_.dispose()


# Secrets and the hashes that cover random message ids: compared by being present only.
_UNCOMPARED = ("hash", "prev_hash", "last_event_hash", "token_hash", "webhook_secret")


def _scrubber() -> Callable[[Any], Any]:
    """Random message ids replaced by their order of appearance, wherever they stand."""
    names: dict[str, str] = {}

    def scrub(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("msg_"):
            return names.setdefault(value, f"msg#{len(names)}")
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return scrub


def dump(factory: sessionmaker[Session]) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in primary-key order, comparable across databases."""
    scrub = _scrubber()
    tables: dict[str, list[dict[str, Any]]] = {}
    with factory() as s:
        for table in Base.metadata.sorted_tables:
            rows = s.execute(select(table).order_by(*table.primary_key.columns)).mappings()
            tables[table.name] = [
                {k: scrub(v) for k, v in r.items() if k not in _UNCOMPARED} for r in rows
            ]
    return tables


def a_whole_ladder(world: TimerWorld) -> None:
    """Reminders, both ladder steps, an unassigned role redirected, a ``fire:`` timer
    that closes its case and one its guard refuses, a restart, an acknowledgement."""
    plain = [world.open_in_screening() for _ in range(3)]
    redirected = world.open_in_screening(roles=("referrer", "police", "coordinator", "chair"))
    closing = world.open_in_screening(data={"risk_level": "low"})
    refused = world.open_in_screening(data={"risk_level": "high"})
    for case in (closing, refused):
        world.fire(case, "refer_to_review", "police", at=ENTER + timedelta(hours=1))
    world.fire(plain[2], "log_contact", "police", at=ENTER + timedelta(days=1))
    timers.tick(world.factory, now=STEP1_AT, batch_size=100)
    with world.factory() as s:
        step1 = world.escalations(plain[0])[-1]
        assert step1.step == 1
        acknowledge(s, step1.id, agency_id=world.agencies["police_supervisor"], now=STEP1_AT)
        s.commit()
        with pytest.raises(AckRejected):  # names who acknowledged first
            acknowledge(s, step1.id, agency_id=world.agencies["police_supervisor"],
                        now=STEP1_AT)
        s.rollback()
        service.assign(s, plain[1], "chair", world.agencies["therapist"], now=STEP1_AT)
        s.commit()
    timers.tick(world.factory, now=STEP2_AT + timedelta(days=1), batch_size=100)
    world.fire(redirected, "refer_to_review", "police", at=STEP2_AT + timedelta(days=2))


def _through_core(monkeypatch: pytest.MonkeyPatch, ran: set[int]) -> None:
    """Send every prepared statement through ``Connection.execute`` instead."""

    def rows(self: Prepared, cur: Cursor, params: Any) -> list[Any]:
        ran.add(id(self))
        return [tuple(r) for r in cur.conn.execute(self.statement, dict(params))]

    def execute(self: Prepared, cur: Cursor, params: Any) -> int:
        ran.add(id(self))
        return int(cur.conn.execute(self.statement, dict(params)).rowcount)  # type: ignore[attr-defined]

    def execute_many(self: Prepared, cur: Cursor, params: Any) -> None:
        ran.add(id(self))
        if params:
            cur.conn.execute(self.statement, [dict(p) for p in params])

    def insert(self: PreparedInsert, cur: Cursor, params: Any) -> int:
        ran.add(id(self._plain))
        ran.add(id(self._returning))
        return int(cur.conn.execute(self._returning.statement, dict(params)).scalar_one())

    monkeypatch.setattr(Prepared, "rows", rows)
    monkeypatch.setattr(Prepared, "execute", execute)
    monkeypatch.setattr(Prepared, "execute_many", execute_many)
    monkeypatch.setattr(PreparedInsert, "insert", insert)


def _spy(monkeypatch: pytest.MonkeyPatch, ran: set[int]) -> None:
    """Record which prepared statements the fast path runs."""
    run = Prepared._run

    def spied(self: Prepared, cur: Cursor, params: Any, *, many: bool) -> Any:
        ran.add(id(self))
        return run(self, cur, params, many=many)

    monkeypatch.setattr(Prepared, "_run", spied)


def _every_prepared() -> dict[frozenset[int], str]:
    """Every prepared statement the engine's modules hold, by id, with where it lives."""
    found: dict[frozenset[int], str] = {}
    for info in pkgutil.walk_packages(engine.__path__, "engine."):
        if ".migrations" in info.name or info.name.startswith("engine.cli"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            holders = [value] if isinstance(value, Prepared | PreparedInsert) else []
            if isinstance(value, writers._Appender):
                holders = [value.one or value.plain]
            for held in holders:
                # An insert runs one of its two forms, by dialect.
                forms = [held._plain, held._returning] if isinstance(held, PreparedInsert) \
                    else [held]
                found[frozenset(id(f) for f in forms)] = f"{info.name}.{name}"
    return found


def test_fast_path_writes_what_connection_execute_writes(
    fresh: Callable[[], sessionmaker[Session]], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_ran: set[int] = set()
    with monkeypatch.context() as m:
        _spy(m, fast_ran)
        fast = make_timer_world(fresh())
        a_whole_ladder(fast)
    core_ran: set[int] = set()
    with monkeypatch.context() as m:
        _through_core(m, core_ran)
        core = make_timer_world(fresh())
        a_whole_ladder(core)
    assert dump(fast.factory) == dump(core.factory)
    for world in (fast, core):
        with world.factory() as s:
            assert verify(s) == []
    # The scenario ran every prepared statement of the write paths (a new one must be
    # added to it), except the reads only the other surfaces use.
    ran = fast_ran | core_ran
    unused = {where for forms, where in _every_prepared().items() if not forms & ran}
    # A lost race's re-read of the revision runs only under contention (tests/cases).
    assert unused == {"engine.store.caserow._REVISION"}


def test_a_batch_of_n_writes_what_n_single_fires_write(
    fresh: Callable[[], sessionmaker[Session]]
) -> None:
    def scenario(world: TimerWorld, batch_size: int) -> None:
        for _ in range(3):
            world.open_in_screening()
        world.open_in_screening(roles=("referrer", "police", "coordinator", "chair"))
        for risk in ("low", "high"):
            case = world.open_in_screening(data={"risk_level": risk})
            world.fire(case, "refer_to_review", "police", at=ENTER + timedelta(hours=1))
        result = timers.tick(world.factory, now=STEP2_AT, batch_size=batch_size,
                             max_batches=1000)
        assert result.errors == [] and len(result.fired) == 4 * 3 + 2

    batched = make_timer_world(fresh())
    scenario(batched, 100)
    single = make_timer_world(fresh())
    scenario(single, 1)
    assert dump(batched.factory) == dump(single.factory)
    with batched.factory() as s:
        assert verify(s) == []
