"""Figure 7, matching: candidate quality on the shipped evaluation set, and search speed.

Quality: precision and recall of candidate search (blocking and scoring) at the default
``REFERRAL_MATCH_THRESHOLD`` on ``engine.subjects.evaluation``'s labelled pairs, beside a
floor matcher: rapidfuzz's token-sort ratio of the plain names at 90 or more, with the
same birth year when both are known.

Speed: the p95 of ``search`` (the blocks read, then scored) for re-referral probes, on a
population of subjects (``benchmarks/people.py``) loaded with COPY on PostgreSQL and
``executemany`` on SQLite, at a small and a large size of the same database; the floor
of each is the p95 of one primary-key lookup on the same connection. The growth line
divides the large size's p95 by the small one's: blocking keeps the rows read per search
near constant, so the cost grows with the depth of the indexes only.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateIndex

from benchmarks.people import POOL, person, probe, recorded
from benchmarks.raw import Raw
from benchmarks.report import Figure, measured
from benchmarks.world import Database
from engine import clock
from engine.settings import Settings
from engine.subjects.details import SubjectDetails
from engine.subjects.evaluation import evaluate, labelled_pairs
from engine.subjects.names import plain
from engine.subjects.search import search
from engine.subjects.store import key_rows
from engine.subjects.tables import Subject, SubjectKey, SubjectName

QUALITY_TARGET = 0.95
P95_TARGET_MS = 50.0
GROWTH_TARGET = 2.0
CHUNK = 50_000
PROBES = 200
_NOW = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
# Dropped for the COPY and built again after it, as the tables declare them.
_INDEXES = [*SubjectKey.__table__.indexes, *SubjectName.__table__.indexes]  # type: ignore[attr-defined]


def _floor_match(a: SubjectDetails, b: SubjectDetails) -> bool:
    names = fuzz.token_sort_ratio(plain(f"{a.names[0].given} {a.names[0].family}"),
                                  plain(f"{b.names[0].given} {b.names[0].family}"))
    years = a.born is None or b.born is None or a.born.year == b.born.year
    return names >= 90 and years


def _floor_quality() -> tuple[float, float]:
    tp = fp = fn = 0
    for pair in labelled_pairs():
        found = _floor_match(pair.b, pair.a)
        tp += found and pair.same
        fp += found and not pair.same
        fn += (not found) and pair.same
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1)


def quality() -> list[Figure]:
    threshold = Settings().match_threshold
    got = evaluate(threshold)
    floor_p, floor_r = _floor_quality()
    variant = f"threshold {threshold}, {got.pairs:,} labelled pairs"
    label = "rapidfuzz token_sort_ratio >= 90 on plain names, same birth year"
    note = (f"{got.true_positives} found, {got.false_positives} wrongly, "
            f"{got.false_negatives} missed")
    return [
        measured("matching", f"precision, {variant}", [got.precision], "", [floor_p], label,
                 target=f">= {QUALITY_TARGET}", check=lambda v, f, r: v >= QUALITY_TARGET,
                 note=note),
        measured("matching", f"recall, {variant}", [got.recall], "", [floor_r], label,
                 target=f">= {QUALITY_TARGET}", check=lambda v, f, r: v >= QUALITY_TARGET,
                 note=note),
    ]


def _rows(first: int, last: int, ts: Any) -> tuple[list[tuple[Any, ...]], ...]:
    subjects: list[tuple[Any, ...]] = []
    names: list[tuple[Any, ...]] = []
    keys: list[tuple[Any, ...]] = []
    for i in range(first, last):
        sid = i + 1
        d = recorded(person(i))
        born = d.born
        assert born is not None
        subjects.append((sid, POOL, born.year, born.month, born.day, d.locality, "{}", ts, ts))
        names.extend((sid, sid, n.kind, n.given, n.family) for n in d.names)
        keys.extend((row["subject_id"], row["key"], row["birth_year"], row["born"])
                    for row in key_rows(sid, POOL, d, d.forms()))
    return subjects, names, keys


_TABLES = {
    "subjects": "id, pool, birth_year, birth_month, birth_day, locality, identifiers, "
                "recorded_at, updated_at",
    "subject_names": "id, subject_id, kind, given, family",
    "subject_keys": "subject_id, key, birth_year, born",
}


def load(db: Database, first: int, last: int) -> None:
    """Subjects ``first`` to ``last - 1`` of the population, with the rows the engine's
    ``store.write_subject`` writes (names and keys from the same functions)."""
    raw = Raw(db)
    try:
        raw.begin()
        if raw.pg:
            # Index and foreign-key upkeep row by row would cost more than the COPY itself.
            raw.execute("SET session_replication_role = replica")
            for index in _INDEXES:
                raw.execute(f"DROP INDEX IF EXISTS {index.name}")
        ts = raw.ts(_NOW)
        for start in range(first, last, CHUNK):
            for table, rows in zip(_TABLES, _rows(start, min(start + CHUNK, last), ts),
                                   strict=True):
                raw.bulk_insert(table, _TABLES[table], rows)
        if raw.pg:
            raw.execute("SET maintenance_work_mem = '256MB'")
            for index in _INDEXES:
                raw.execute(str(CreateIndex(index).compile(dialect=postgresql.dialect())))
        raw.commit()
        if raw.pg:
            raw.conn.autocommit = True
            raw.execute("VACUUM ANALYZE subjects, subject_names, subject_keys")
        else:
            raw.execute("PRAGMA optimize")
    finally:
        raw.close()


def _p95(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=20)[18]


def _timed(session: Session, probes: list[SubjectDetails], threshold: float) -> tuple[
        float, float, int]:
    """p95 of search and of the primary-key floor over ``probes``, and matches found."""
    spent: list[float] = []
    floor: list[float] = []
    found = 0
    for n, details in enumerate(probes):
        start = clock.monotonic()
        found += bool(search(session, POOL, details, threshold=threshold))
        spent.append((clock.monotonic() - start) * 1000)
        session.rollback()
        start = clock.monotonic()
        session.execute(select(Subject.id).where(Subject.id == n + 1)).all()
        floor.append((clock.monotonic() - start) * 1000)
        session.rollback()
    return _p95(spent), _p95(floor), found


def _probes(size: int) -> list[SubjectDetails]:
    """Re-referrals of people on file (three in four) and of people who are not."""
    step = max(size // PROBES, 1)
    known = [probe(person(i)) for i in range(0, size, step)][: PROBES * 3 // 4]
    unknown = [probe(person(size + i)) for i in range(PROBES - len(known))]
    return known + unknown


def _measure(db: Database, size: int, rounds: int) -> tuple[list[float], list[float], int]:
    engine, factory = db.factory()
    threshold = Settings().match_threshold
    probes = _probes(size)
    searches: list[float] = []
    floors: list[float] = []
    found = 0
    try:
        with factory() as session:
            session.execute(text("SELECT 1"))
            _timed(session, probes[:20], threshold)  # warm caches and compiled statements
            for _ in range(rounds):
                p95, floor, found = _timed(session, probes, threshold)
                searches.append(p95)
                floors.append(floor)
    finally:
        engine.dispose()
    return searches, floors, found


def speed(db: Database, sizes: tuple[int, int], rounds: int, quick: bool) -> list[Figure]:
    figures: list[Figure] = []
    loaded = 0
    per_size: dict[int, list[float]] = {}
    for size in sizes:
        load(db, loaded, size)
        loaded = size
        searches, floors, found = _measure(db, size, rounds)
        per_size[size] = searches
        large_pg = db.kind == "postgresql" and size >= 1_000_000
        figures.append(measured(
            "matching", f"search p95, {db.kind}, {size:,} subjects", searches, "ms", floors,
            "p95 of one primary-key lookup on the same connection",
            target=f"< {P95_TARGET_MS:.0f} ms" if large_pg else "",
            check=(lambda v, f, r: v < P95_TARGET_MS) if large_pg else None,
            note=f"{PROBES} probes a round (3 in 4 re-referrals of people on file; "
                 f"{found} with a candidate at the threshold)",
        ))
    small, large = sizes
    growth_target = db.kind == "postgresql" and not quick
    figures.append(measured(
        "matching", f"search p95 growth, {db.kind}, {small:,} to {large:,}",
        per_size[large], "ms", per_size[small], f"search p95 at {small:,} subjects",
        target=f"<= {GROWTH_TARGET:.0f}x" if growth_target else "",
        check=(lambda v, f, r: r <= GROWTH_TARGET) if growth_target else None,
    ))
    return figures


FULL_SIZES = (10_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000)


def run(kinds: Sequence[str], folder: Any, *, quick: bool,
        pg_problem: str | None) -> list[Figure]:
    """Every matching line: quality once, speed on each database asked for."""
    from benchmarks.report import skipped
    from benchmarks.world import temporary_database

    figures = quality()
    sizes = QUICK_SIZES if quick else FULL_SIZES
    for kind in kinds:
        if kind == "postgresql" and pg_problem is not None:
            figures.append(skipped("matching", kind, "ms",
                                   f"no PostgreSQL on 127.0.0.1:5432 ({pg_problem})"))
            continue
        with temporary_database(kind, folder) as db:
            figures += speed(db, sizes, rounds=2 if quick else 3, quick=quick)
    return figures
