"""The `transitions` hierarchical machine built from a definition, and how it is driven.

One :class:`SharedMachine` exists per compiled definition version and serves every case.
It holds no case: a run binds one reusable slotted :class:`_Scratch` model to the case's
configuration, fires exactly one chosen transition (then any automatic joins), reads the
structural outcome back and unbinds it. Callbacks only record into the scratch model:
no I/O, nothing that could half-fail after the state changed.

The machine's state object (``transitions`` keeps ``HierarchicalMachine.scoped`` and a
scope stack on the machine while it processes an event) is not thread-safe, so runs are
serialised by a lock; the compiled workflow memoises outcomes, so runs are rare.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from transitions.extensions import HierarchicalMachine
from transitions.extensions.nesting import NestedState

from engine.definitions.model import Definition, Guard, StateDef, TransitionDef

# Never a valid trigger name (those are identifiers), so it cannot collide.
JOIN_PREFIX = "join:"


class _DotState(NestedState):
    # Our names are [a-z][a-z0-9_]*, so "_" (the library default) would split them.
    separator = "."


class _DotMachine(HierarchicalMachine):
    state_cls = _DotState


class _Scratch:
    """The model bound to the shared machine for one run."""

    __slots__ = ("chosen", "data", "entered", "exited", "fired", "state")

    def __init__(self) -> None:
        self.state: Any = None
        self.data: Mapping[str, Any] = {}
        self.chosen: TransitionDef | None = None
        self.fired = False
        self.entered: list[str] = []
        self.exited: list[str] = []


class _Record:
    """on_enter/on_exit callback: note the state path in the scratch model."""

    __slots__ = ("attr", "path")

    def __init__(self, path: str, attr: str) -> None:
        self.path = path
        self.attr = attr

    def __call__(self, event_data: Any) -> None:
        getattr(event_data.model, self.attr).append(self.path)


class _Condition:
    """A transition's condition: it is the one chosen for this run, and its guard holds.

    The definition's first-match-in-file-order rule is applied before the run (it needs
    rejection reasons anyway); the chosen check keeps the library from also firing a
    sibling transition in another parallel track, or the same one twice.
    """

    __slots__ = ("guard", "tdef")

    def __init__(self, tdef: TransitionDef, guard: Guard | None) -> None:
        self.tdef = tdef
        self.guard = guard

    def __call__(self, event_data: Any) -> bool:
        model: _Scratch = event_data.model
        if model.fired or model.chosen is not self.tdef:
            return False
        if self.guard is not None and not self.guard.evaluate(model.data):
            return False
        model.fired = True
        return True


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one transition does to one configuration (independent of the case data)."""

    target: tuple[str, ...]
    exited: tuple[str, ...]
    entered: tuple[str, ...]
    joined: str | None


def to_machine_state(config: tuple[str, ...]) -> str | list[str]:
    """Our sorted leaf tuple as the library's model state (a list when parallel)."""
    return config[0] if len(config) == 1 else list(config)


def from_machine_state(state: Any) -> tuple[str, ...]:
    """The library's (possibly nested) list of leaves back to a sorted leaf tuple."""
    if isinstance(state, str):
        return (state,)
    leaves: list[str] = []
    stack = [state]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            leaves.append(item)
        else:
            stack.extend(item)
    return tuple(sorted(leaves))


class SharedMachine:
    """The one `transitions` machine of a definition version."""

    def __init__(self, defn: Definition, guards: Mapping[int, Guard | None]) -> None:
        self.definition = defn
        self._lock = threading.Lock()
        self._model = _Scratch()
        self.machine = _DotMachine(
            model=None,
            states=[_state_spec(defn, s) for s in defn.top_level()],
            initial=defn.initial_state,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
            queued=False,
        )
        for tdef in defn.transitions:
            condition = _Condition(tdef, guards.get(tdef.index))
            for source in tdef.sources:
                # to == from: an internal transition records the event, leaves nothing.
                dest = None if source == tdef.dest else tdef.dest
                self.machine.add_transition(tdef.trigger, source, dest, conditions=[condition])
        self.joins = {s.path: s.join for s in defn.states.values() if s.join}
        self._innermost_first = sorted(self.joins, key=lambda path: -path.count("."))
        for parallel, join in self.joins.items():
            self.machine.add_transition(JOIN_PREFIX + parallel, parallel, join)

    def run(self, config: tuple[str, ...], tdef: TransitionDef, data: Mapping[str, Any]) -> Outcome:
        """Fire ``tdef`` from ``config`` on the shared machine, then any joins it completes."""
        with self._lock:
            model = self._model
            model.state = to_machine_state(config)
            model.data = data
            model.chosen = tdef
            model.fired = False
            model.entered, model.exited = [], []
            try:
                # Not the return value: the library reports the last track it tried, so
                # a transition fired in one track reads False when another track did not.
                self.machine.trigger_event(model, tdef.trigger)
                if not model.fired:
                    raise RuntimeError(
                        f"{self.definition.workflow} v{self.definition.version}: the machine "
                        f"did not fire '{tdef.trigger}' from {list(config)}"
                    )
                joined = self._joins(model)
                return Outcome(
                    target=from_machine_state(model.state),
                    exited=tuple(model.exited),
                    entered=tuple(model.entered),
                    joined=joined,
                )
            finally:
                # Never keep a case's data alive between runs.
                model.data = {}
                model.chosen = None
                model.state = None

    def _joins(self, model: _Scratch) -> str | None:
        """Fire the joins whose tracks all became final; the last one joined is reported."""
        joined = None
        # Each join leaves its parallel state, so there are at most as many as those.
        for _ in range(len(self.joins) + 1):
            parallel = self._joinable(from_machine_state(model.state))
            if parallel is None:
                return joined
            self.machine.trigger_event(model, JOIN_PREFIX + parallel)
            joined = parallel
        raise RuntimeError(f"{self.definition.workflow}: joins do not settle")

    def _joinable(self, config: tuple[str, ...]) -> str | None:
        """The innermost parallel state with a join whose every track rests in a final state.

        Decided from the definition, not by the library's ``final`` states and ``on_final``
        callbacks: transitions 0.9.3 judges a compound state by its *last* child's
        finality only (so a step in one track while a later track was already final
        crashed it), and the fix would have to override its private ``_final_check``.
        """
        for parallel in self._innermost_first:
            inside = [leaf for leaf in config if leaf.startswith(parallel + ".")]
            if inside and all(self.definition.states[leaf].final for leaf in inside):
                return parallel
        return None


def _state_spec(defn: Definition, state: StateDef) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": state.name,
        "on_enter": [_Record(state.path, "entered")],
        "on_exit": [_Record(state.path, "exited")],
    }
    children = [_state_spec(defn, defn.states[c]) for c in state.children]
    # No ``final`` flags: which tracks are done is the definition's call (see _joinable).
    if state.kind == "parallel":
        spec["parallel"] = children
    elif state.kind == "track":
        spec["children"] = children
        spec["initial"] = defn.states[_required(state.initial_child, state)].name
    return spec


def _required(value: str | None, state: StateDef) -> str:
    if value is None:
        raise ValueError(f"track {state.path} has no initial state")
    return value


def entry_leaves(defn: Definition, path: str) -> tuple[str, ...]:
    """The leaves a case occupies right after entering ``path`` (parallel: every track)."""
    state = defn.states[path]
    if state.kind == "parallel":
        return tuple(sorted(leaf for c in state.children for leaf in entry_leaves(defn, c)))
    if state.kind == "track":
        return entry_leaves(defn, _required(state.initial_child, state))
    return (path,)


def ancestors(defn: Definition, path: str) -> Iterable[str]:
    """``path`` and every state above it."""
    current: str | None = path
    while current is not None:
        yield current
        current = defn.states[current].parent
