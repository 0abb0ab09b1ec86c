"""Running one measurement in N processes that start together.

Each process is forked, builds its own database connections (never its parent's), warms
up, then waits at a barrier; the parent times nothing itself. Every process reports the
monotonic instants (one system-wide clock) at which its timed part began and ended, and
the throughput is the work of all processes over the span from the first start to the
last end.
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from typing import Any

from engine import clock

# A process's timed work: (its index, the shared parameters, a callable that waits for
# every other process to be ready) -> its count of work done.
Work = Callable[[int, Any, Callable[[], None]], int]


@dataclass(frozen=True, slots=True)
class Span:
    count: int
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Outcome:
    spans: tuple[Span, ...]

    @property
    def count(self) -> int:
        return sum(s.count for s in self.spans)

    @property
    def seconds(self) -> float:
        return max(s.end for s in self.spans) - min(s.start for s in self.spans)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


def _child(work: Work, index: int, params: Any, barrier: Barrier, results: Any) -> None:
    start = 0.0

    def ready() -> None:
        nonlocal start
        barrier.wait(timeout=120)
        start = clock.monotonic()

    try:
        count = work(index, params, ready)
        results.put((index, count, start, clock.monotonic(), None))
    except BaseException:
        barrier.abort()
        results.put((index, 0, 0.0, 0.0, traceback.format_exc()))


def run(work: Work, params: Any, processes: int, *, timeout: float = 600.0) -> Outcome:
    """Run ``work`` in ``processes`` forked processes at once; their spans."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    children = [
        ctx.Process(target=_child, args=(work, i, params, barrier, results), daemon=True)
        for i in range(processes)
    ]
    for child in children:
        child.start()
    spans: list[Span] = []
    errors: list[str] = []
    try:
        for _ in children:
            _index, count, start, end, error = results.get(timeout=timeout)
            if error is not None:
                errors.append(error)
            else:
                spans.append(Span(count, start, end))
    finally:
        for child in children:
            child.join(timeout=30)
            if child.is_alive():
                child.kill()
                child.join()
    if errors:
        raise RuntimeError("a benchmark process failed:\n" + errors[0])
    return Outcome(tuple(spans))
