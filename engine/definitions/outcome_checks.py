"""Checks of what a workflow says and tells: ``set:`` constants, ``notify:`` notices,
repeating reminders, and that every way to close a case sets its outcome field.

They run after the name and graph checks (:mod:`engine.definitions.checks`) on what those
learnt, and only add problems; :func:`state_specs` also serves the loader, which builds
each state's notices and constants from the same walk.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any

from engine.definitions.checker import Checker
from engine.definitions.model import SYSTEM_ROLE, FieldDef, StateDef
from engine.definitions.names import suggest
from engine.definitions.notice_spec import NoticeSpec
from engine.definitions.schema import StateSpec, WorkflowSpec


def state_specs(spec: WorkflowSpec) -> Iterator[tuple[str, StateSpec, tuple[Any, ...]]]:
    """Every state's spec with its dotted path and its place in the document."""
    pending: list[tuple[str, StateSpec, tuple[Any, ...]]] = [
        (name, state, ("states", name)) for name, state in (spec.states or {}).items()
    ]
    while pending:
        path, state, loc = pending.pop(0)
        yield path, state, loc
        for track, track_spec in (state.parallel or {}).items():
            for child, child_spec in track_spec.states.items():
                pending.append((f"{path}.{track}.{child}", child_spec,
                                (*loc, "parallel", track, "states", child)))


def check_outcomes(c: Checker) -> None:
    """Everything this module checks, reported on the checker."""
    spec = c.spec
    fields = c.out.fields
    for i, t in zip(c.result.transition_index, spec.transitions, strict=False):
        _check_sets(c, t.set_, fields, ("transitions", i, "set"))
        _check_notices(c, t.notify, ("transitions", i, "notify"))
    for _path, state, loc in state_specs(spec):
        _check_sets(c, state.set_, fields, (*loc, "set"))
        _check_notices(c, state.notify, (*loc, "notify"))
    for i, timer in zip(c.result.timer_index, spec.timers, strict=False):
        if timer.every is not None and (timer.escalate or timer.fire or not timer.remind):
            c.error(("timers", i, "every"), "'every' repeats a reminder: it needs 'remind' "
                    "and cannot be combined with 'fire' or 'escalate'")
        if timer.at_most is not None and timer.every is None:
            c.error(("timers", i, "at_most"), "'at_most' caps a repeating reminder: "
                    "it needs 'every'")
    _check_named(c, spec.referrer_role, c.roles - {SYSTEM_ROLE}, "role", "referrer_role")
    _check_named(c, spec.outcome_field, set(fields), "field", "outcome_field")
    if c.result.complete and c.graph_sound and spec.outcome_field in fields:
        _check_closing_paths(c, spec.outcome_field)


def _check_named(c: Checker, name: str | None, known: set[str], what: str, key: str) -> None:
    if name is not None and name not in known:
        c.unknown(what, name, known, (key,))


def _check_notices(c: Checker, notices: list[NoticeSpec], loc: tuple[Any, ...]) -> None:
    for n, notice in enumerate(notices):
        for role in notice.to:
            if role == SYSTEM_ROLE or role not in c.roles:
                c.unknown("role", role, c.roles - {SYSTEM_ROLE}, (*loc, n, "to"))
        for key in ("subject", "text"):
            value: str = getattr(notice, key)
            if not value.strip() or "\n" in value.strip() or len(value) > 300:
                c.error((*loc, n, key), f"a notice's {key} must be one line of 1 to 300 "
                        "characters")


def _check_sets(
    c: Checker, sets: Mapping[str, Any], fields: Mapping[str, FieldDef], loc: tuple[Any, ...]
) -> None:
    for name, value in sets.items():
        spec = fields.get(name)
        if spec is None:
            if name not in c.raw_fields:
                c.error((*loc, name), f"unknown field '{name}'", suggest(name, fields),
                        key=True)
            continue
        problem = constant_problem(spec, value)
        if problem is not None:
            c.error((*loc, name), f"field '{name}': {problem}")


def constant_problem(spec: FieldDef, value: Any) -> str | None:
    """Why ``value`` cannot be a constant of the field's type, or None."""
    kind = spec.type
    if value is None:
        return "a constant cannot be empty"
    if kind == "enum":
        return None if value in spec.values else f"expected one of {', '.join(spec.values)}"
    if kind == "bool":
        return None if isinstance(value, bool) else "expected true or false"
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "expected an integer"
    if kind == "list":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return None if ok else "expected a list of strings"
    if not isinstance(value, str):
        return "expected a string"
    parse = {"date": date.fromisoformat, "datetime": datetime.fromisoformat}.get(kind)
    try:
        if parse is not None:
            parse(value)
    except ValueError:
        return f"expected a {kind} in ISO 8601"
    return None


def _top(path: str) -> str:
    return path.split(".", 1)[0]


Edge = tuple[str, bool, str]  # (top-level destination, sets the outcome, trigger)


def _check_closing_paths(c: Checker, outcome: str) -> None:
    """Every top-level final state must be unreachable with the outcome still unset.

    A search over (top-level state, outcome set yet): a transition sets it with
    ``set:``, entering a state with the state's ``set:``. Transitions inside a parallel
    state count only when they leave it: a track's step may be skipped, so it proves
    nothing about the case as a whole.
    """
    states = c.out.states
    sets_on_entry = {p for p, s, _ in state_specs(c.spec) if outcome in s.set_}
    edges = _edges(c, outcome, sets_on_entry)
    start = next(p for p, s in states.items() if s.parent is None and s.initial)
    unset_by: dict[str, list[str]] = {}
    seen = {(start, start in sets_on_entry)}
    queue = deque(seen)
    while queue:
        here, done = queue.popleft()
        for dest, sets, trigger in edges.get(here, []):
            after = done or sets
            if not after and states[dest].final:
                unset_by.setdefault(dest, []).append(f"{trigger} from {here}")
            if (dest, after) not in seen:
                seen.add((dest, after))
                queue.append((dest, after))
    _report_unset(c, outcome, states, unset_by)


def _edges(c: Checker, outcome: str, sets_on_entry: set[str]) -> dict[str, list[Edge]]:
    """Moves between top-level states, each with whether it sets the outcome."""
    edges: dict[str, list[Edge]] = {}
    for t, sources, dest in zip(c.spec.transitions, c.out.sources, c.out.dests, strict=True):
        if dest is None:
            continue
        sets = outcome in t.set_ or _top(dest) in sets_on_entry or dest in sets_on_entry
        for source in sources:
            if _top(source) != _top(dest):
                edges.setdefault(_top(source), []).append((_top(dest), sets, t.trigger))
    for path, state in c.out.states.items():
        if state.kind == "parallel" and state.join in c.out.states and state.parent is None:
            join = str(state.join)
            edges.setdefault(path, []).append((join, join in sets_on_entry, "join"))
    return edges


def _report_unset(
    c: Checker, outcome: str, states: Mapping[str, StateDef], unset_by: dict[str, list[str]]
) -> None:
    for dest in sorted(unset_by, key=lambda p: states[p].mark.line):
        ways = ", ".join(dict.fromkeys(unset_by[dest]))
        c.error(c.out.state_locs[dest],
                f"final state '{dest}' can be reached without setting the outcome field "
                f"'{outcome}' (by {ways})",
                f"add 'set: {{{outcome}: ...}}' to those transitions or to the state",
                key=True)
