"""Figure 3, tick: due timers fired per second by 1 and 2 workers, against the floor.

The due timers are the population's own: the pending timers (a reminder or a ladder step
each) of cases picked at random over the whole population are brought to just before
``now``, and every worker calls ``engine.timers.tick.tick`` at ``now`` until a claim comes back
empty. Each fired timer writes its escalation, one notification per channel of the
recipient, an audit event and the next ladder step; a claimed batch fires in one
transaction, each table written by one bulk statement.

The floor does the same through the raw driver: the claim (one ``UPDATE ... RETURNING``,
``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and then, per batch, the statements
``engine.timers.batch.fire_batch`` issues, in its order, with the hash and the due time
computed by the same engine functions.
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
from benchmarks.raw import Raw, _convert
from benchmarks.report import Figure, measured
from benchmarks.world import WORKFLOW, Database, VirtualClock
from engine.cases.audit import event_hash
from engine.definitions.model import SYSTEM_ROLE, TimerDef
from engine.timers import tick as timers
from engine.timers.calendar import calendar_for

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

    def _member(self, column: str, ids: Sequence[int]) -> tuple[str, tuple[Any, ...]]:
        if self.raw.pg:
            return f"{column} = ANY(%s)", (list(ids),)
        return f"{column} IN ({', '.join(['%s'] * len(ids))})", tuple(ids)

    def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """One executemany, counted as one statement as SQLAlchemy's event counts it."""
        self.raw.statements += 1
        self.raw.cur.executemany(_convert(sql, self.raw.kind), rows)

    def _values(self, sql: str, rows: list[tuple[Any, ...]], marks: str) -> list[int]:
        """A multi-row INSERT ... RETURNING id; the ids in the rows' order."""
        text = sql + " VALUES " + ", ".join([marks] * len(rows)) + " RETURNING id"
        ids = [r[0] for r in self.raw.all(text, tuple(v for row in rows for v in row))]
        return sorted(ids)

    def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[int]:
        raw = self.raw
        raw.begin()
        lock = " FOR UPDATE SKIP LOCKED" if raw.pg else ""
        rows = raw.all(
            "UPDATE timers SET status = %s, claimed_until = %s WHERE timers.id IN ("
            "SELECT timers.id FROM timers WHERE timers.status = %s AND timers.due_at <= %s "
            "OR timers.status = %s AND timers.claimed_until < %s "
            "ORDER BY timers.due_at, timers.id LIMIT %s" + lock + ") "
            "RETURNING timers.id, timers.due_at",
            ("firing", raw.ts(lease_until), "pending", raw.ts(now), "firing", raw.ts(now),
             limit),
        )
        raw.commit()
        return [r[0] for r in sorted(rows, key=lambda r: (str(r[1]), r[0]))]

    def fire(self, ids: Sequence[int], now: datetime, lease_until: datetime) -> int:
        """Fire one claimed batch in one transaction; how many fired."""
        raw = self.raw
        raw.begin()
        try:
            fired = self._fire(ids, now, lease_until)
        except BaseException:
            raw.rollback()
            raise
        raw.commit()
        return fired

    def _fire(self, ids: Sequence[int], now: datetime, lease_until: datetime) -> int:
        raw = self.raw
        lock = " FOR UPDATE" if raw.pg else ""
        where, params = self._member("timers.id", ids)
        rows = raw.all(
            "SELECT timers.id, timers.case_id, timers.name, timers.state, timers.step, "
            "timers.due_at, timers.status, timers.claimed_until, cases.workflow_version_id, "
            "cases.workflow, cases.workflow_version, cases.state, cases.data, cases.revision, "
            "cases.last_event_hash, cases.last_event_seq FROM timers JOIN cases ON cases.id = "
            f"timers.case_id WHERE {where} ORDER BY cases.id, timers.id" + lock,
            params,
        )
        mine = [r for r in rows
                if r[6] == "firing" and raw.timestamp_value(r[7]) == lease_until]
        if not mine:
            return 0
        raw.one(
            "SELECT content_hash, workflow, version FROM workflow_versions WHERE id = %s",
            (mine[0][8],),
        )
        case_ids = sorted({r[1] for r in mine})
        where, params = self._member("case_id", case_ids)
        held: dict[int, dict[str, int]] = {c: {} for c in case_ids}
        for case_id, role, agency_id in raw.all(
            f"SELECT case_id, role, agency_id FROM case_assignments WHERE {where} "
            "ORDER BY case_id, role",
            params,
        ):
            held[case_id][role] = agency_id
        plans = []
        for r in mine:
            tdef = self.timers[r[2]]
            kind, roles = (
                ("reminder", list(tdef.remind)) if r[4] == 0
                else ("escalation", list(tdef.escalate[r[4] - 1].notify))
            )
            plans.append((r, tdef, kind, roles, sorted({held[r[1]][x] for x in roles})))
        wanted = sorted({a for p in plans for a in p[4]})
        where, params = self._member("id", wanted)
        agencies = {a[0]: a for a in raw.all(
            "SELECT id, webhook_url, webhook_secret, webhook_disabled_at, email FROM agencies "
            f"WHERE {where}", params,
        )}
        escalation_ids = self._values(
            "INSERT INTO escalations (case_id, timer_id, timer_name, step, roles, agency_ids, "
            "created_at, acknowledged_at, acknowledged_by)",
            [(r[1], r[0], r[2], r[4], raw.js(sorted(roles)), raw.js(agency_ids), raw.ts(now),
              None, None) for r, _t, _k, roles, agency_ids in plans],
            "(%s, %s, %s, %s, %j, %j, %s, %s, %s)",
        )
        heads: dict[int, list[Any]] = {}
        notifications, events, new_timers = [], [], []
        for (r, tdef, kind, roles, agency_ids), escalation_id in zip(
            plans, escalation_ids, strict=True
        ):
            case_id, name, step, state = r[1], r[2], r[4], raw.json_value(r[11])
            due_at = raw.timestamp_value(r[5])
            head = heads.setdefault(case_id, [r[13], r[14], r[15], 0])
            messages = []
            for agency_id in agency_ids:
                agency = agencies[agency_id]
                payload = {
                    "type": kind, "case_id": case_id, "workflow": WORKFLOW,
                    "version": self.defn.version, "state": state, "timer": name, "step": step,
                    "escalation_id": escalation_id, "timer_state": r[3],
                    "due_at": due_at.isoformat(),
                    "roles": [x for x in roles if held[case_id][x] == agency_id],
                    "fields": raw.json_value(r[12]),
                }
                channel = "webhook" if agency[1] else "email" if agency[4] else "log"
                message_id = f"msg_{uuid.uuid4().hex}"
                messages.append(message_id)
                notifications.append((
                    message_id, case_id, agency_id, channel, kind,
                    raw.js({**payload, "message_id": message_id}), "pending", 0, raw.ts(now),
                    None, None, None, None, raw.ts(now),
                ))
            event_data = {
                "timer": name, "step": step, "escalation_id": escalation_id,
                "due_at": due_at.isoformat(), "roles": roles, "agency_ids": agency_ids,
                "messages": messages,
            }
            seq, prev_hash = head[2] + 1, head[1]
            digest = event_hash(
                case_id=case_id, seq=seq, at=now, kind=kind, agency_id=None, role=SYSTEM_ROLE,
                trigger=None, from_state=state, to_state=state, data=event_data,
                prev_hash=prev_hash,
            )
            head[1], head[2], head[3] = digest, seq, head[3] + 1
            events.append((case_id, seq, raw.ts(now), kind, None, SYSTEM_ROLE, None,
                           raw.js(state), raw.js(state), raw.js(event_data), prev_hash, digest))
            if step < len(tdef.escalate):
                due = self.calendar.add(due_at, tdef.escalate[step].after)
                new_timers.append((case_id, name, r[3], step + 1, raw.ts(due), "pending",
                                   None, None, raw.ts(now)))
        self._values(
            "INSERT INTO notifications (message_id, case_id, agency_id, channel, kind, "
            "payload, status, attempts, next_attempt_at, claimed_until, enqueued_at, "
            "delivered_at, last_error, created_at)",
            notifications, "(%s, %s, %s, %s, %s, %j, %s, %s, %s, %s, %s, %s, %s, %s)",
        )
        self._many(
            "INSERT INTO case_events (case_id, seq, at, kind, agency_id, role, \"trigger\", "
            "from_state, to_state, data, prev_hash, hash) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %j, %j, %j, %s, %s)",
            events,
        )
        self._many(
            "UPDATE cases SET revision = %s, last_event_hash = %s, last_event_seq = %s "
            "WHERE id = %s AND revision = %s",
            [(seen + n, digest, seq, case_id, seen)
             for case_id, (seen, digest, seq, n) in heads.items()],
        )
        where, params = self._member("id", [r[0] for r in mine])
        raw.execute(
            f"UPDATE timers SET status = %s, fired_at = %s, claimed_until = %s WHERE {where}",
            ("fired", raw.ts(now), None, *params),
        )
        if new_timers:
            self._many(
                "INSERT INTO timers (case_id, name, state, step, due_at, status, "
                "claimed_until, fired_at, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                new_timers,
            )
        return len(mine)


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
            fired += floor.fire(ids, params.now, lease_until)
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
            fired += floor.fire(ids, now, lease_until)
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
