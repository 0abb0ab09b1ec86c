"""Figure 4, scale: does an event or a fired timer cost more when there are many cases?

One database grows from the smallest size to the largest with the bulk loader (each case
open, with its pending timer); at each size one process fires events at cases picked at
random over the whole population, and one worker ticks timers of cases picked the same
way. The figure is the cost per event and per timer at each larger size against the cost
at the smallest, measured in the same run: the ratio big/small. The raw-driver floors of
the event and tick figures are measured the same way, to tell the engine's growth from the
database's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from benchmarks import bulk, event, tick
from benchmarks.report import Figure, measured
from benchmarks.world import Database, VirtualClock, temporary_database

TARGET = 1.3
FULL_SIZES = (1_000, 100_000, 1_000_000)


Costs = dict[str, list[float]]
KINDS = ("event", "tick", "event floor", "tick floor")


def _costs(
    db: Database,
    setup: bulk.Setup,
    cases: Sequence[int],
    clock: VirtualClock,
    *,
    rounds: int,
    seconds: float,
    timers: int,
) -> Costs:
    """Microseconds per event and per fired timer, engine and raw floor, one per round."""
    costs: Costs = {kind: [] for kind in KINDS}
    for n in range(rounds):
        for floor in (False, True):
            suffix = " floor" if floor else ""
            rate = event.measure(
                event.Params(db, setup, cases, 1, seconds, clock.advance()), floor=floor
            )
            costs["event" + suffix].append(1e6 / rate)
            now = clock.advance()
            tick.make_due(db, cases, timers, now, seed=len(cases) * 2 + n * 2 + floor)
            rate = tick.measure(tick.Params(db, setup, 1, now), floor=floor)
            costs["tick" + suffix].append(1e6 / rate)
    return costs


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
    costs: dict[int, Costs] = {}
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
    for which in KINDS:
        unit = "us/event" if which.startswith("event") else "us/timer"
        engine = not which.endswith("floor")
        for size in sizes[1:]:
            figures.append(measured(
                "scale", f"{kind} {which}, {size:,} vs {small:,} cases", costs[size][which],
                unit, costs[small][which], f"the same cost at {small:,} open cases",
                target=f"<= {TARGET}x" if engine else "",
                check=(lambda v, f, r: r <= TARGET) if engine else None,
                note=note if engine else "the raw-driver floor's own growth, for comparison",
            ))
    return figures
