"""Figure 4, scale: does an event or a fired timer cost more when there are many cases?

One database grows from the smallest size to the largest with the bulk loader (each case
open, with its pending timer); at each size one process fires events at cases picked at
random over the whole population, and one worker ticks timers of cases picked the same
way. The figure is the cost per event and per timer at each larger size against the cost
at the smallest, measured in the same run: the ratio big/small.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from benchmarks import bulk, event, tick
from benchmarks.report import Figure, measured
from benchmarks.world import Database, VirtualClock, temporary_database

TARGET = 1.3
FULL_SIZES = (1_000, 100_000, 1_000_000)


def _costs(
    db: Database,
    setup: bulk.Setup,
    cases: Sequence[int],
    clock: VirtualClock,
    *,
    rounds: int,
    seconds: float,
    timers: int,
) -> tuple[list[float], list[float]]:
    """Microseconds per event and per fired timer, one value per round."""
    events: list[float] = []
    fired: list[float] = []
    for n in range(rounds):
        rate = event.measure(
            event.Params(db, setup, cases, 1, seconds, clock.advance()), floor=False
        )
        events.append(1e6 / rate)
        now = clock.advance()
        tick.make_due(db, cases, timers, now, seed=len(cases) + n)
        fired.append(1e6 / tick.measure(tick.Params(db, setup, 1, now), floor=False))
    return events, fired


def run(
    kind: str,
    folder: Path,
    *,
    sizes: Sequence[int],
    rounds: int,
    seconds: float,
    timers: int,
    quick: bool,
) -> list[Figure]:
    clock = VirtualClock()
    costs: dict[int, tuple[list[float], list[float]]] = {}
    loaded: list[int] = []
    with temporary_database(kind, folder) as db:
        setup = bulk.prepare(db)
        for size in sizes:
            loaded.extend(bulk.load_cases(db, setup, size - len(loaded)))
            costs[size] = _costs(
                db, setup, loaded, clock, rounds=rounds, seconds=seconds, timers=timers
            )
    small = sizes[0]
    note = "--quick sizes; the full run uses 1,000 / 100,000 / 1,000,000" if quick else ""
    figures = []
    for which, unit, index in (("event", "us/event", 0), ("tick", "us/timer", 1)):
        for size in sizes[1:]:
            figures.append(measured(
                "scale", f"{kind} {which}, {size:,} vs {small:,} cases", costs[size][index],
                unit, costs[small][index], f"the same {which} cost at {small:,} open cases",
                target=f"<= {TARGET}x", check=lambda v, f, r: r <= TARGET, note=note,
            ))
    return figures
