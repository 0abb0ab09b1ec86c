"""What tracing costs the event path: off (the default) against untraced, and on.

``python -m benchmarks.tracing [--db sqlite|postgresql] [--rounds N] [--seconds S]``

Three variants of the event figure's work (one ``service.fire`` per transaction, one
process, cases picked at random), measured in the same process, round by round in turn
so that a change in the machine's load hits them alike:

- ``untraced``: the event as the engine ran it before tracing existed;
- ``off``: the same wrapped as the API edge wraps it (``tracing.span``), tracing off:
  the figure that must stay within 3% of ``untraced``;
- ``on``: tracing on with an SDK provider whose spans go nowhere, for what turning it
  on costs (a span per statement and per event, no export).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from benchmarks import bulk
from benchmarks.event import worker_of
from benchmarks.report import median
from benchmarks.world import VirtualClock, temporary_database
from engine import clock, tracing
from engine.cases import service

VARIANTS = ("untraced", "off", "on")
WARMUP = 50
OFF_TARGET = 0.97


def _rate(
    factory: sessionmaker[Session], one: Callable[[Session, int, int], None],
    cases: Sequence[int], seconds: float, seed: int,
) -> float:
    rng = random.Random(seed)
    for n in range(WARMUP):
        with factory() as session, session.begin():
            one(session, rng.choice(cases), n)
    done = 0
    started = clock.monotonic()
    deadline = started + seconds
    while clock.monotonic() < deadline:
        with factory() as session, session.begin():
            one(session, rng.choice(cases), done)
        done += 1
    return done / (clock.monotonic() - started)


def _events(setup: bulk.Setup, now: datetime) -> dict[str, Callable[[Session, int, int], None]]:
    def untraced(session: Session, case_id: int, n: int) -> None:
        service.fire(session, case_id, "hit", role="worker", agency_id=worker_of(setup, case_id),
                     data={"note": f"event {n}"}, now=now)

    def spanned(session: Session, case_id: int, n: int) -> None:
        with tracing.span("service.fire", {"referral.case_id": case_id,
                                           "referral.trigger": "hit"}):
            untraced(session, case_id, n)

    return {"untraced": untraced, "off": spanned, "on": spanned}


def _provider() -> object:
    from opentelemetry.sdk.trace import TracerProvider

    return TracerProvider()


def run(kind: str, *, rounds: int, seconds: float, population: int) -> dict[str, list[float]]:
    """Events per second of each variant, one entry per round."""
    rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="referral-bench-") as tmp, \
            temporary_database(kind, Path(tmp)) as db:
        setup = bulk.prepare(db)
        cases = list(bulk.load_cases(db, setup, population))
        virtual = VirtualClock()
        engine, factory = db.factory()
        try:
            for index in range(rounds):
                events = _events(setup, virtual.advance())
                # A different variant first in each round: none always gets the warm cache.
                shift = index % len(VARIANTS)
                for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                    if variant == "on":
                        tracing.use(_provider())
                    try:
                        rates[variant].append(
                            _rate(factory, events[variant], cases, seconds, seed=index)
                        )
                    finally:
                        tracing.stop()
        finally:
            engine.dispose()
    return rates


def report(kind: str, rates: dict[str, list[float]]) -> tuple[str, bool]:
    """The table; the ratio is the median of each round's own ratio, so that the load
    drifting between rounds (a shared machine) cancels out within a round."""
    base = rates["untraced"]
    lines = [f"tracing A/B on {kind}, events/s (median of {len(base)} rounds), "
             "ratio to untraced (median of the rounds' ratios)"]
    met = True
    for variant in VARIANTS:
        value = median(rates[variant])
        ratio = median([v / b for v, b in zip(rates[variant], base, strict=True) if b])
        verdict = ""
        if variant == "off":
            met = ratio >= OFF_TARGET
            verdict = f"  target >= {OFF_TARGET:.2f}x: {'met' if met else 'NOT met'}"
        rounds = ", ".join(f"{r:,.0f}" for r in rates[variant])
        lines.append(f"  {variant:9} {value:9,.0f}  {ratio:5.3f}x  [{rounds}]{verdict}")
    return "\n".join(lines), met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tracing", description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--population", type=int, default=2_000)
    args = parser.parse_args(argv)
    rates = run(args.db, rounds=args.rounds, seconds=args.seconds, population=args.population)
    text, _met = report(args.db, rates)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
