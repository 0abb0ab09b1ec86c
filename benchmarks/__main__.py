"""``python -m benchmarks [--quick] [--db sqlite|postgresql] [--json] [--only FIGURE,...]``.

Runs every figure (see ``benchmarks/README.md``) and prints the table; with ``--json`` the
JSON report goes to stdout and the table to stderr. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks import bulk, decide, event, latency, matching, scale, simulate, tick
from benchmarks.report import FIGURES, Figure, Report, skipped, table
from benchmarks.world import VirtualClock, postgres_available, temporary_database
from engine import clock

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Plan:
    """How much of everything: the full run, or the quick one CI and impatient people use."""

    rounds: int
    decide_events: int
    event_seconds: float
    population: int
    tick_timers: int
    scale_sizes: tuple[int, ...]
    scale_rounds: int
    scale_seconds: float
    scale_timers: int
    latency_timers: int
    latency_window: float
    simulate_rounds: int


FULL = Plan(
    rounds=5, decide_events=20_000, event_seconds=2.0, population=20_000, tick_timers=1_000,
    scale_sizes=scale.FULL_SIZES, scale_rounds=5, scale_seconds=1.5, scale_timers=300,
    latency_timers=300, latency_window=30.0, simulate_rounds=5,
)
QUICK = Plan(
    rounds=3, decide_events=5_000, event_seconds=0.5, population=2_000, tick_timers=200,
    scale_sizes=(1_000, 10_000, 50_000), scale_rounds=3, scale_seconds=0.4, scale_timers=100,
    latency_timers=60, latency_window=5.0, simulate_rounds=3,
)


def say(message: str) -> None:
    print(f"[{clock.utcnow():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def commit() -> str:
    try:
        found = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=7"], cwd=REPO,
            capture_output=True, text=True, timeout=10, check=True,
        )
        return found.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine(pg_version: str | None) -> str:
    parts = [
        f"{os.cpu_count()} cores",
        platform.machine(),
        f"Python {platform.python_version()}",
        f"SQLite {sqlite3.sqlite_version}",
    ]
    if pg_version:
        parts.append(f"PostgreSQL {pg_version}")
    return ", ".join(parts)


def _pg_version() -> str | None:
    try:
        import psycopg

        from benchmarks.world import PG_ADMIN_DSN

        with psycopg.connect(PG_ADMIN_DSN) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]).split()[0] if row else None
    except Exception:
        return None


def throughput(kind: str, folder: Path, plan: Plan, wanted: set[str]) -> list[Figure]:
    """The event and tick figures on one database holding ``plan.population`` cases."""
    figures: list[Figure] = []
    clock_ = VirtualClock()
    with temporary_database(kind, folder) as db:
        setup = bulk.prepare(db)
        cases = list(bulk.load_cases(db, setup, plan.population))
        if "event" in wanted:
            say(f"event on {kind}: {plan.population:,} open cases")
            figures += event.run(db, setup, cases, clock_, rounds=plan.rounds,
                                 seconds=plan.event_seconds)
        if "tick" in wanted:
            say(f"tick on {kind}")
            figures += tick.run(db, setup, cases, clock_, rounds=plan.rounds,
                                count=plan.tick_timers)
    return figures


@dataclass(frozen=True, slots=True)
class Run:
    """What this run measures and where, from the command line and the PostgreSQL probe."""

    plan: Plan
    wanted: frozenset[str]
    kinds: tuple[str, ...]
    # Why PostgreSQL cannot be used, or None when it can (or was not asked for).
    pg_problem: str | None
    quick: bool


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, frozenset[str]]:
    """The options, and the figures asked for (the parser exits on an unknown one)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds, smaller sizes")
    parser.add_argument("--db", choices=("sqlite", "postgresql"),
                        help="one database only (default: both)")
    parser.add_argument("--json", action="store_true", help="JSON report on stdout")
    parser.add_argument("--only", default=",".join(FIGURES),
                        help=f"comma-separated figures (default: all of {','.join(FIGURES)})")
    args = parser.parse_args(argv)
    wanted = frozenset(name.strip() for name in args.only.split(",") if name.strip())
    unknown = wanted - set(FIGURES)
    if unknown:
        parser.error(f"unknown figure(s): {', '.join(sorted(unknown))}")
    return args, wanted


def new_report(run: Run) -> Report:
    pg_version = (_pg_version() if "postgresql" in run.kinds and run.pg_problem is None
                  else None)
    report = Report(
        quick=run.quick, databases=run.kinds, commit=commit(),
        date=clock.utcnow().strftime("%Y-%m-%d %H:%M UTC"), machine=machine(pg_version),
    )
    if run.quick:
        plan = run.plan
        report.notes.append(
            f"--quick: {plan.rounds} rounds, {plan.population:,} open cases, scale sizes "
            + " / ".join(f"{s:,}" for s in plan.scale_sizes)
            + f", latency over {plan.latency_timers} timers (the full run: 1,000 / 100,000 / "
            "1,000,000 and 300 timers)"
        )
    return report


def measure(run: Run, report: Report, folder: Path) -> None:
    """Every wanted figure into ``report``, in the order of the table."""
    plan, wanted = run.plan, run.wanted
    if "decide" in wanted:
        say("decide")
        report.add(decide.run(rounds=plan.rounds + 2, events=plan.decide_events))
    if "simulate" in wanted:
        say("simulate")
        report.add(simulate.run(rounds=plan.simulate_rounds))
    for kind in run.kinds:
        report.add(database_figures(run, kind, folder))
    if "latency" in wanted:
        kind = latency_database(run)
        say(f"latency on {kind}")
        report.add(latency.run(kind, folder, timers_count=plan.latency_timers,
                               window=plan.latency_window))
    if "matching" in wanted:
        say("matching: " + ", ".join(run.kinds))
        report.add(matching.run(list(run.kinds), folder, quick=run.quick,
                                pg_problem=run.pg_problem))


def database_figures(run: Run, kind: str, folder: Path) -> list[Figure]:
    """The event, tick and scale figures on one kind of database (skipped if unusable)."""
    plan, wanted = run.plan, run.wanted
    if kind == "postgresql" and run.pg_problem is not None:
        reason = f"no PostgreSQL on 127.0.0.1:5432 ({run.pg_problem})"
        return [skipped(name, kind, "", reason) for name in ("event", "tick", "scale")
                if name in wanted]
    figures: list[Figure] = []
    if wanted & {"event", "tick"}:
        figures += throughput(kind, folder, plan, set(wanted))
    if "scale" in wanted:
        say(f"scale on {kind}: " + " / ".join(f"{s:,}" for s in plan.scale_sizes))
        figures += scale.run(
            kind, folder, sizes=plan.scale_sizes, rounds=plan.scale_rounds,
            seconds=plan.scale_seconds, timers=plan.scale_timers, quick=run.quick,
        )
    return figures


def latency_database(run: Run) -> str:
    """PostgreSQL when it is asked for and usable, else the database asked for."""
    usable = [k for k in run.kinds if k != "postgresql" or run.pg_problem is None]
    return "postgresql" if "postgresql" in usable else usable[0] if usable else "sqlite"


def main(argv: list[str] | None = None) -> int:
    args, wanted = parse_args(argv)
    started = clock.monotonic()
    load_before = os.getloadavg()[0]
    kinds = (args.db,) if args.db else ("sqlite", "postgresql")
    run = Run(
        plan=QUICK if args.quick else FULL, wanted=wanted, kinds=kinds,
        pg_problem=postgres_available() if "postgresql" in kinds else None, quick=args.quick,
    )
    report = new_report(run)
    with tempfile.TemporaryDirectory(prefix="referral-bench-") as tmp:
        measure(run, report, Path(tmp))
    report.seconds = clock.monotonic() - started
    report.notes.append(
        f"load average (1 min) {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at "
        "the end: other work on the machine slows every figure"
    )
    text = table(report)
    if args.json:
        print(text, file=sys.stderr)
        print(report.to_json())
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
