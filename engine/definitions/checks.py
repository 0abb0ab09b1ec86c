"""Name and reference checks over a schema-valid (or partly valid) workflow document.

``run_checks`` is the orchestrator: it runs every check in order on one
:class:`~engine.definitions.checker.Checker`, which carries the findings and reports the
problems. Everything that can be told by looking names up: identifier syntax, the state
tree and its initial states (here), fields and their defaults (``field_checks``),
transitions and timers (``item_checks``), CEL guards, unknown states/roles/fields/
triggers/milestones referenced anywhere. Whole-graph checks (reachability, paths to a
final state, joins, ambiguous triggers) live in ``graph.py`` and run only on a complete
document, where a dropped item cannot fake an unreachable state.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.definitions.calendar_checks import check_calendar, check_timezone
from engine.definitions.checker import Analysis, Checker, raw_keys
from engine.definitions.field_checks import check_field
from engine.definitions.graph import check_graph
from engine.definitions.item_checks import check_timer, check_transition
from engine.definitions.model import SYSTEM_ROLE, StateDef, StateKind
from engine.definitions.names import CEL_RESERVED, suggest
from engine.definitions.outcome_checks import check_outcomes
from engine.definitions.schema import SchemaResult, StateSpec, TrackSpec
from engine.definitions.yamlsource import Document, Path


def run_checks(doc: Document, result: SchemaResult) -> Analysis:
    """Every name and reference check (and, on a complete document, the graph checks)."""
    c = Checker(doc, result)
    spec = c.spec
    if spec.workflow is not None:
        c.identifier("workflow", spec.workflow, ("workflow",), key=False)
    if spec.title is not None and not spec.title.strip():
        c.error(("title",), "title must not be empty")
    if spec.timezone is not None:
        c.out.problems += check_timezone(c.doc, spec.timezone)
    if spec.calendar is not None:
        c.out.problems += check_calendar(c.doc, spec.calendar)
    _check_roles(c)
    _check_fields(c)
    _check_states(c)
    _check_joins(c)
    _check_transitions(c)
    _check_milestones(c)
    _check_timers(c)
    if c.result.complete:
        check_graph(c)
    check_outcomes(c)
    return c.out


def _check_roles(c: Checker) -> None:
    for name in c.spec.roles:
        loc = ("roles", name)
        if name == SYSTEM_ROLE:
            c.error(loc, "'system' is reserved for the engine's own timers and cannot be "
                    "declared as a role", "rename the role", key=True)
        else:
            c.identifier("role", name, loc)


def _check_fields(c: Checker) -> None:
    for name, fspec in c.spec.fields.items():
        loc = ("fields", name)
        if c.identifier("field", name, loc) and name in CEL_RESERVED:
            c.error(loc, f"field name '{name}' is a reserved word in CEL conditions",
                    "rename the field", key=True)
        for role_i, role in enumerate(fspec.visible_to or ()):
            if role not in c.roles and role != SYSTEM_ROLE:
                c.unknown("role", role, c.roles, (*loc, "visible_to", role_i))
        built = check_field(c, name, fspec, loc)
        if built is not None:
            c.out.fields[name] = built


# -- states ----------------------------------------------------------------------------
def _check_states(c: Checker) -> None:
    states = c.spec.states
    initial: list[str] = []
    for name, sspec in states.items():
        loc = ("states", name)
        c.identifier("state", name, loc)
        if sspec.initial:
            initial.append(name)
        _add_state(c, name, name, None, sspec, loc)
    # A state that failed the schema may be the one marked initial.
    all_valid = raw_keys(c.doc.data.get("states")) <= set(states)
    if not initial and states and all_valid:
        c.error(("states",), "no initial state: mark exactly one top-level state "
                "with `initial: true`", key=True)
    for extra in initial[1:]:
        c.error(("states", extra, "initial"),
                f"more than one initial state: '{initial[0]}' and '{extra}'",
                f"keep `initial: true` on one of them (the first is '{initial[0]}')",
                key=True)
    for name in initial[:1]:
        if states[name].final:
            c.error(("states", name, "final"), f"the initial state '{name}' cannot be "
                    "final", key=True)


def _add_state(c: Checker, path: str, name: str, parent: str | None, sspec: StateSpec,
               loc: Path) -> None:
    in_track = parent is not None
    _check_state_spec(c, path, sspec, loc, in_track=in_track)
    tracks = [] if sspec.parallel is None else _add_tracks(
        c, path, sspec.parallel, loc, final=sspec.final, in_track=in_track)
    _record_state(c, path, name, parent, sspec, loc, tracks)


def _check_state_spec(c: Checker, path: str, sspec: StateSpec, loc: Path, *,
                      in_track: bool) -> None:
    """The problems of a state's own keys, whatever its kind."""
    if sspec.owner is not None and sspec.owner not in c.roles:
        c.unknown("role", sspec.owner, c.roles, (*loc, "owner"))
    if sspec.join is not None and sspec.parallel is None:
        c.error((*loc, "join"), f"`join` is only for parallel states, and '{path}' has "
                "no `parallel`", key=True)
    if in_track and sspec.initial:
        c.error((*loc, "initial"), f"state '{path}' is inside a track: name the "
                "track's first state with the track's `initial` instead", key=True)


def _add_tracks(c: Checker, path: str, parallel: Mapping[str, TrackSpec], loc: Path, *,
                final: bool, in_track: bool) -> list[str]:
    """Check and add the tracks of parallel state ``path``; return their paths."""
    if in_track:
        c.error((*loc, "parallel"), f"parallel states cannot be nested: '{path}' "
                "is already inside a track", key=True)
    if final:
        c.error((*loc, "final"), f"parallel state '{path}' cannot be final",
                key=True)
    if not parallel:
        c.error((*loc, "parallel"), f"parallel state '{path}' has no tracks",
                key=True)
    tracks: list[str] = []
    for track, tspec in parallel.items():
        tloc = (*loc, "parallel", track)
        tpath = f"{path}.{track}"
        c.identifier("track", track, tloc)
        tracks.append(tpath)
        _add_track(c, tpath, track, path, tspec.initial, tspec.states, tloc)
    return tracks


def _record_state(c: Checker, path: str, name: str, parent: str | None, sspec: StateSpec,
                  loc: Path, tracks: list[str]) -> None:
    """Add the state itself, after its ``tracks`` (already added, with their states)."""
    kind: StateKind = "parallel" if sspec.parallel is not None else "atomic"
    c.out.states[path] = StateDef(
        path=path, name=name, kind=kind, parent=parent,
        initial=sspec.initial and parent is None, final=sspec.final, owner=sspec.owner,
        join=sspec.join, children=tuple(tracks), mark=c.doc.key_mark(loc))
    c.out.state_locs[path] = loc
    # Keep parents before children in the table, so iteration order is file order.
    for tpath in tracks:
        c.out.states[tpath] = c.out.states.pop(tpath)
        for child in c.out.states[tpath].children:
            c.out.states[child] = c.out.states.pop(child)


def _add_track(c: Checker, path: str, name: str, parent: str, initial: str | None,
               states: Mapping[str, StateSpec], loc: Path) -> None:
    flagged = [s for s, sp in states.items() if sp.initial]
    first = initial
    if not states:
        c.error((*loc, "states"), f"track '{path}' has no states", key=True)
    elif initial is not None and initial not in states:
        c.error((*loc, "initial"), f"unknown state '{initial}' in track '{path}'",
                suggest(initial, states))
        first = None
    elif initial is None and not flagged:
        c.error(loc, f"track '{path}' has no initial state",
                f"add `initial: {next(iter(states))}` to the track", key=True)
    elif initial is None:
        first = flagged[0]
    children = []
    for child, cspec in states.items():
        cloc = (*loc, "states", child)
        c.identifier("state", child, cloc)
        children.append(f"{path}.{child}")
        _add_state(c, f"{path}.{child}", child, path, cspec, cloc)
    c.out.states[path] = StateDef(
        path=path, name=name, kind="track", parent=parent, children=tuple(children),
        initial_child=f"{path}.{first}" if first else None, mark=c.doc.key_mark(loc))
    c.out.state_locs[path] = loc


def _check_joins(c: Checker) -> None:
    for path, state in list(c.out.states.items()):
        if state.kind != "parallel" or state.join is None:
            continue
        loc = (*c.out.state_locs[path], "join")
        target = c.state_ref(state.join, loc, tracks=False)
        if target is None:
            c.graph_sound = False
        elif target == path or c.out.states[target].parent is not None:
            c.error(loc, f"`join` of '{path}' must name a top-level state outside it, "
                    f"not '{target}'")
            c.graph_sound = False


def _check_transitions(c: Checker) -> None:
    fired = {t.fire for t in c.spec.timers if t.fire}
    for pos, tspec in enumerate(c.spec.transitions):
        loc: Path = ("transitions", c.result.transition_index[pos])
        sources, dest = check_transition(c, tspec, loc, fired)
        c.out.sources.append(sources)
        c.out.dests.append(dest)


def _check_milestones(c: Checker) -> None:
    for name, mspec in c.spec.milestones.items():
        loc = ("milestones", name)
        c.identifier("milestone", name, loc)
        if not mspec.on and mspec.on_enter is None:
            c.error(loc, f"milestone '{name}' is never reached: give it `on` (triggers) "
                    "or `on_enter` (a state)", key=True)
        for i, trigger in enumerate(mspec.on or ()):
            if trigger not in c.triggers:
                c.unknown("trigger", trigger, c.triggers, (*loc, "on", i))
        if mspec.on_enter is not None:
            c.state_ref(mspec.on_enter, (*loc, "on_enter"))


def _check_timers(c: Checker) -> None:
    seen: dict[str, Path] = {}
    for pos, tspec in enumerate(c.spec.timers):
        loc: Path = ("timers", c.result.timer_index[pos])
        check_timer(c, tspec, loc, seen)
