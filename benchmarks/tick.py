"""Figure 3, tick: due timers fired per second by 1 and 2 workers, against the floor.

The due timers are the population's own: the pending timers (a reminder or a ladder step
each) of cases picked at random over the whole population are brought to just before
``now``, and every worker calls ``engine.timers.tick`` at ``now`` until a claim comes back
empty. Each fired timer
writes its escalation, one notification per channel of the recipient, an audit event and
the next ladder step, in a transaction of its own.

The floor does the same through the raw driver: the batch claim (``FOR UPDATE SKIP LOCKED``
on PostgreSQL) and then, per timer, the statements ``fire_one`` issues, in its order, with
the hash and the due time computed by the same engine functions.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event as sa_event

from benchmarks import procs
from benchmarks.bulk import Setup
from benchmarks.raw import Raw
from benchmarks.report import Figure, measured
from benchmarks.world import WORKFLOW, Database, VirtualClock
from engine import timers
from engine.audit import event_hash
from engine.calendar import calendar_for
from engine.definitions.model import SYSTEM_ROLE, TimerDef

BATCH = 100
PG_TARGET = 2000
LEASE = timedelta(seconds=120)


@dataclass(frozen=True, slots=True)
class Params:
    db: Database
    setup: Setup
    workers: int
    now: datetime
    batch: int = BATCH


def make_due(db: Database, cases: Sequence[int], count: int, now: datetime, seed: int) -> int:
    """Bring the pending timers of ``count`` cases picked at random to one minute before
    ``now`` (as if their time had come); how many timers that made due."""
    picked = random.Random(seed).sample(list(cases), min(count, len(cases)))
    raw = Raw(db)
    try:
        raw.begin()
        made = 0
        for start in range(0, len(picked), 500):
            chunk = picked[start : start + 500]
            marks = ", ".join(["%s"] * len(chunk))
            made += raw.execute(
                f"UPDATE timers SET due_at = %s WHERE status = %s AND case_id IN ({marks})",
                (raw.ts(now - timedelta(minutes=1)), "pending", *chunk),
            ).rowcount
        raw.commit()
    finally:
        raw.close()
    return made


def service_work(index: int, params: Params, ready: Callable[[], None]) -> int:
    engine, factory = params.db.factory()
    try:
        with engine.connect():
            pass
        ready()
        fired = 0
        while True:
            result = timers.tick(
                factory, now=params.now, batch_size=params.batch,
                lease_seconds=int(LEASE.total_seconds()),
            )
            if result.errors:
                raise RuntimeError(f"tick failed: {result.errors[0]}")
            fired += len(result.fired)
            if result.claimed == 0:
                return fired
    finally:
        engine.dispose()


class FloorTick:
    """The tick's statements for the benchmark workflow, straight through the driver."""

    def __init__(self, raw: Raw, setup: Setup) -> None:
        self.raw = raw
        self.setup = setup
        self.defn = setup.definition
        self.calendar = calendar_for(self.defn)
        self.timers: dict[str, TimerDef] = {t.name: t for t in self.defn.timers}
        self.agencies: dict[int, Any] = {}

    def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[int]:
        raw = self.raw
        raw.begin()
        lock = " FOR UPDATE SKIP LOCKED" if raw.pg else ""
        ids = [
            row[0]
            for row in raw.all(
                "SELECT id FROM timers WHERE status = %s AND due_at <= %s OR status = %s "
                "AND claimed_until < %s ORDER BY due_at, id LIMIT %s OFFSET %s" + lock,
                ("pending", raw.ts(now), "firing", raw.ts(now), limit, 0),
            )
        ]
        if ids:
            marks = ", ".join(["%s"] * len(ids))
            raw.execute(
                f"UPDATE timers SET status = %s, claimed_until = %s WHERE id IN ({marks})",
                ("firing", raw.ts(lease_until), *ids),
            )
        raw.commit()
        return ids

    def fire(self, timer_id: int, now: datetime, lease_until: datetime) -> bool:
        raw = self.raw
        raw.begin()
        try:
            fired = self._fire(timer_id, now, lease_until)
        except BaseException:
            raw.rollback()
            raise
        raw.commit()
        return fired

    def _fire(self, timer_id: int, now: datetime, lease_until: datetime) -> bool:
        raw = self.raw
        lock = " FOR UPDATE" if raw.pg else ""
        columns = ("SELECT id, case_id, name, state, step, due_at, status, claimed_until, "
                   "fired_at, created_at FROM timers WHERE id = %s")
        found = raw.one(columns, (timer_id,))
        case = raw.one(
            "SELECT id, workflow_version_id, workflow, workflow_version, state, data, "
            "milestones, revision, opened_at, closed_at, last_event_hash, last_event_seq "
            "FROM cases WHERE id = %s" + lock,
            (found[1],),
        )
        timer = raw.one(columns + lock, (timer_id,))
        if timer[6] != "firing" or raw.timestamp_value(timer[7]) != lease_until:
            return False
        raw.one(
            "SELECT content_hash, workflow, version FROM workflow_versions WHERE id = %s",
            (case[1],),
        )
        case_id, name, step = case[0], timer[2], timer[4]
        due_at = raw.timestamp_value(timer[5])
        state, data = raw.json_value(case[4]), raw.json_value(case[5])
        if timer[3] not in state:
            raise RuntimeError(f"the floor expects case {case_id} in {timer[3]}")
        seen, prev_hash, seq = case[7], case[10], case[11] + 1
        cur = raw.execute(
            "UPDATE cases SET revision = %s WHERE id = %s AND revision = %s",
            (seen + 1, case_id, seen),
        )
        if cur.rowcount != 1:
            raise RuntimeError(f"case {case_id} changed under the floor")
        tdef = self.timers[name]
        kind, roles = (
            ("reminder", list(tdef.remind)) if step == 0
            else ("escalation", list(tdef.escalate[step - 1].notify))
        )
        held = dict(raw.all(
            "SELECT role, agency_id FROM case_assignments WHERE case_id = %s ORDER BY role",
            (case_id,),
        ))
        agency_ids = sorted({held[r] for r in roles})
        escalation_id = raw.insert(
            "INSERT INTO escalations (case_id, timer_id, timer_name, step, roles, agency_ids, "
            "created_at, acknowledged_at, acknowledged_by) "
            "VALUES (%s, %s, %s, %s, %j, %j, %s, %s, %s)",
            (case_id, timer_id, name, step, raw.js(sorted(roles)), raw.js(agency_ids),
             raw.ts(now), None, None),
        )
        held = dict(raw.all(
            "SELECT role, agency_id FROM case_assignments WHERE case_id = %s ORDER BY role",
            (case_id,),
        ))
        marks = ", ".join(["%s"] * len(agency_ids))
        agencies = raw.all(
            "SELECT id, name, token_hash, webhook_url, webhook_secret, webhook_disabled_at, "
            f"email, created_at FROM agencies WHERE id IN ({marks})",
            tuple(agency_ids),
        )
        messages = []
        for agency in agencies:
            mine = [r for r in roles if held[r] == agency[0]]
            payload = {
                "type": kind, "case_id": case_id, "workflow": WORKFLOW,
                "version": self.defn.version, "state": state, "timer": name, "step": step,
                "escalation_id": escalation_id, "timer_state": timer[3],
                "due_at": due_at.isoformat(), "roles": mine, "fields": data,
            }
            channel = "webhook" if agency[3] else "email" if agency[6] else "log"
            message_id = f"msg_{uuid.uuid4().hex}"
            messages.append(message_id)
            raw.insert(
                "INSERT INTO notifications (message_id, case_id, agency_id, channel, kind, "
                "payload, status, attempts, next_attempt_at, claimed_until, enqueued_at, "
                "delivered_at, last_error, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %j, %s, %s, %s, %s, %s, %s, %s, %s)",
                (message_id, case_id, agency[0], channel, kind,
                 raw.js({**payload, "message_id": message_id}), "pending", 0, raw.ts(now),
                 None, None, None, None, raw.ts(now)),
            )
        event_data = {
            "timer": name, "step": step, "escalation_id": escalation_id,
            "due_at": due_at.isoformat(), "roles": roles, "agency_ids": agency_ids,
            "messages": messages,
        }
        digest = event_hash(
            case_id=case_id, seq=seq, at=now, kind=kind, agency_id=None, role=SYSTEM_ROLE,
            trigger=None, from_state=state, to_state=state, data=event_data,
            prev_hash=prev_hash,
        )
        raw.execute(
            "UPDATE cases SET last_event_hash = %s, last_event_seq = %s WHERE id = %s",
            (digest, seq, case_id),
        )
        raw.execute(
            "INSERT INTO case_events (case_id, seq, at, kind, agency_id, role, \"trigger\", "
            "from_state, to_state, data, prev_hash, hash) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %j, %j, %j, %s, %s)",
            (case_id, seq, raw.ts(now), kind, None, SYSTEM_ROLE, None, raw.js(state),
             raw.js(state), raw.js(event_data), prev_hash, digest),
        )
        raw.execute(
            "UPDATE timers SET status = %s, claimed_until = %s, fired_at = %s WHERE id = %s",
            ("fired", None, raw.ts(now), timer_id),
        )
        if step < len(tdef.escalate):
            due = self.calendar.add(due_at, tdef.escalate[step].after)
            raw.insert(
                "INSERT INTO timers (case_id, name, state, step, due_at, status, "
                "claimed_until, fired_at, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (case_id, name, timer[3], step + 1, raw.ts(due), "pending", None, None,
                 raw.ts(now)),
            )
        return True


def floor_work(index: int, params: Params, ready: Callable[[], None]) -> int:
    raw = Raw(params.db)
    floor = FloorTick(raw, params.setup)
    lease_until = params.now + LEASE
    try:
        ready()
        fired = 0
        while True:
            ids = floor.claim(params.now, lease_until, params.batch)
            if not ids:
                return fired
            fired += sum(floor.fire(timer_id, params.now, lease_until) for timer_id in ids)
    finally:
        raw.close()


def measure(params: Params, *, floor: bool) -> float:
    """Timers fired per second in one round (all workers together)."""
    work = floor_work if floor else service_work
    return procs.run(work, params, params.workers).rate  # type: ignore[arg-type]


def statements_per_timer(
    db: Database, setup: Setup, cases: Sequence[int], now: datetime
) -> tuple[float, float]:
    """(tick, floor) statements per fired timer over a few timers each, claims included."""
    engine, factory = db.factory()
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.startswith(("BEGIN", "COMMIT")):
            seen.append(statement)

    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        make_due(db, cases, 5, now, seed=1)
        result = timers.tick(factory, now=now, batch_size=BATCH)
        tick_rate = len(seen) / max(1, len(result.fired))
    finally:
        engine.dispose()
    make_due(db, cases, 5, now, seed=2)
    raw = Raw(db)
    try:
        floor = FloorTick(raw, setup)
        lease_until = now + LEASE
        fired = 0
        while ids := floor.claim(now, lease_until, BATCH):
            fired += sum(floor.fire(i, now, lease_until) for i in ids)
        return tick_rate, raw.statements / max(1, fired)
    finally:
        raw.close()


def run(
    db: Database,
    setup: Setup,
    cases: Sequence[int],
    clock: VirtualClock,
    *,
    rounds: int,
    count: int,
    workers: Sequence[int] = (1, 2),
) -> list[Figure]:
    """The tick figure on one database: service and floor alternating, round by round."""
    counted = statements_per_timer(db, setup, cases, clock.advance())
    driver = "sqlite3" if db.kind == "sqlite" else "psycopg"
    label = (f"the same claims and ~{counted[1]:.0f} statements per timer through {driver}, "
             "no ORM")
    figures = []
    seed = 0
    for n in workers:
        mine: list[float] = []
        floor: list[float] = []
        for _ in range(rounds):
            for into, is_floor in ((mine, False), (floor, True)):
                now = clock.advance()
                seed += 1
                make_due(db, cases, count, now, seed)
                into.append(measure(Params(db, setup, n, now), floor=is_floor))
        absolute = db.kind == "postgresql" and n == 2
        figures.append(measured(
            "tick", f"{db.kind}, {n} worker{'s' if n > 1 else ''}", mine, "timers/s", floor,
            label,
            target=f">= {PG_TARGET:,}/s" if absolute else "",
            check=(lambda v, f, r: v >= PG_TARGET) if absolute else None,
            note=f"~{count} due timers per round, batches of {BATCH}",
        ))
    return figures
