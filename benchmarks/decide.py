"""Figure 1, decide: the compiled machine answering one event, with no database.

``CompiledWorkflow.decide`` (role check, guard, requires and needs, the memoised outcome)
for a case bouncing on one trigger, against the floor: a long-lived plain `transitions`
model, built once, taking the same trigger (``model.hit()``) between the same states.
Two shapes: the flat benchmark workflow, and a trigger inside one track of a parallel
state (against a `transitions` HierarchicalMachine with the same parallel states).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transitions import Machine
from transitions.extensions import HierarchicalMachine

from benchmarks.report import Figure, measured
from benchmarks.world import BENCH_WORKFLOW, PARALLEL_WORKFLOW
from engine import clock
from engine.definitions.loader import load_definition
from engine.machine.compiled import CompiledWorkflow, compile_definition

TARGET = 1.5


def _per_event_us(step: Callable[[int], Any], events: int) -> float:
    """Microseconds per call of ``step`` over ``events`` calls."""
    start = clock.monotonic()
    for n in range(events):
        step(n)
    return (clock.monotonic() - start) / events * 1e6


def flat_engine() -> Callable[[int], Any]:
    compiled = compile_definition(load_definition(BENCH_WORKFLOW, "bench.yaml"))
    configs = (("ping",), ("pong",))
    data = {"count": 0, "note": "benchmark"}
    reached: frozenset[str] = frozenset()
    decide = compiled.decide

    def step(n: int) -> Any:
        return decide(configs[n & 1], "hit", "worker", data, reached)

    return step


class _Model:
    state: str


def flat_floor() -> Callable[[int], Any]:
    model = _Model()
    Machine(
        model=model,
        states=["ping", "pong", "done"],
        transitions=[
            {"trigger": "hit", "source": "ping", "dest": "pong"},
            {"trigger": "hit", "source": "pong", "dest": "ping"},
            {"trigger": "close", "source": ["ping", "pong"], "dest": "done"},
        ],
        initial="ping",
        auto_transitions=False,
    )
    hit = model.hit  # type: ignore[attr-defined]

    def step(n: int) -> Any:
        return hit()

    return step


def parallel_engine() -> Callable[[int], Any]:
    compiled: CompiledWorkflow = compile_definition(
        load_definition(PARALLEL_WORKFLOW, "tracks.yaml")
    )
    configs = (("work.left.a", "work.right.c"), ("work.left.b", "work.right.c"))
    data: dict[str, Any] = {}
    reached: frozenset[str] = frozenset()
    decide = compiled.decide

    def step(n: int) -> Any:
        return decide(configs[n & 1], "flip", "worker", data, reached)

    return step


def parallel_floor() -> Callable[[int], Any]:
    model = _Model()
    HierarchicalMachine(
        model=model,
        states=[
            "start",
            {
                "name": "work",
                "parallel": [
                    {"name": "left", "children": ["a", "b", {"name": "done", "final": True}],
                     "initial": "a"},
                    {"name": "right", "children": ["c", {"name": "done", "final": True}],
                     "initial": "c"},
                ],
            },
            {"name": "finished", "final": True},
        ],
        transitions=[
            {"trigger": "begin", "source": "start", "dest": "work"},
            {"trigger": "flip", "source": "work_left_a", "dest": "work_left_b"},
            {"trigger": "flip", "source": "work_left_b", "dest": "work_left_a"},
            {"trigger": "end_left", "source": "work_left_b", "dest": "work_left_done"},
            {"trigger": "end_right", "source": "work_right_c", "dest": "work_right_done"},
        ],
        initial="start",
        auto_transitions=False,
    )
    model.begin()  # type: ignore[attr-defined]
    flip = model.flip  # type: ignore[attr-defined]

    def step(n: int) -> Any:
        return flip()

    return step


def run(*, rounds: int, events: int) -> list[Figure]:
    figures = []
    shapes = (
        ("flat workflow", flat_engine, flat_floor, "plain transitions Machine, model.hit()"),
        ("parallel tracks", parallel_engine, parallel_floor,
         "plain transitions HierarchicalMachine, model.flip()"),
    )
    for variant, engine_step, floor_step, floor_label in shapes:
        ours, theirs = engine_step(), floor_step()
        _per_event_us(ours, events // 10)  # warm the memo and the caches
        _per_event_us(theirs, events // 10)
        mine: list[float] = []
        floor: list[float] = []
        for _ in range(rounds):
            mine.append(_per_event_us(ours, events))
            floor.append(_per_event_us(theirs, events))
        figures.append(
            measured(
                "decide", variant, mine, "us/event", floor, floor_label,
                target=f"<= {TARGET}x", check=lambda v, f, r: r <= TARGET,
            )
        )
    return figures
