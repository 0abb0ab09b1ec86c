"""Name and reference checks over a schema-valid (or partly valid) workflow document.

Everything that can be told by looking names up: identifier syntax, the state tree and its
initial states, unknown states/roles/fields/triggers/milestones referenced anywhere,
timers, fields and their defaults, CEL guards. Whole-graph checks (reachability, paths to a
final state, joins, ambiguous triggers) live in ``graph.py`` and run only on a complete
document, where a dropped item cannot fake an unreachable state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.definitions.calendar_checks import check_calendar, check_timezone
from engine.definitions.field_checks import check_field
from engine.definitions.graph import check_graph
from engine.definitions.guards import GuardError, check_guard
from engine.definitions.item_checks import check_timer, check_transition
from engine.definitions.model import SYSTEM_ROLE, FieldDef, Guard, StateDef, StateKind
from engine.definitions.names import CEL_RESERVED, IDENTIFIER, suggest, suggest_state
from engine.definitions.outcome_checks import check_outcomes
from engine.definitions.schema import SchemaResult, StateSpec, TransitionSpec
from engine.definitions.yamlsource import Document, Path, kind_of
from engine.errors import Problem


@dataclass
class Analysis:
    """What the checks learnt, for the loader to build a ``Definition`` from."""

    problems: list[Problem] = field(default_factory=list)
    states: dict[str, StateDef] = field(default_factory=dict)
    # Document path of each state's spec, for marks.
    state_locs: dict[str, Path] = field(default_factory=dict)
    fields: dict[str, FieldDef] = field(default_factory=dict)
    # Expanded source paths and resolved target per item of spec.transitions.
    sources: list[tuple[str, ...]] = field(default_factory=list)
    dests: list[str | None] = field(default_factory=list)
    guards: dict[str, Guard] = field(default_factory=dict)


class Checker:
    """Collects every problem instead of stopping at the first."""

    def __init__(self, doc: Document, result: SchemaResult) -> None:
        self.doc = doc
        self.spec = result.spec
        self.result = result
        self.out = Analysis()
        self.roles = set(self.spec.roles)
        self.triggers = {t.trigger for t in self.spec.transitions}
        self.milestones = set(self.spec.milestones)
        # Names present in the raw text count as declared even if their spec failed the
        # schema, so one typo is not reported again as 'unknown' everywhere it is used.
        raw: Any = doc.data
        self.roles |= _raw_keys(raw.get("roles"))
        self.milestones |= _raw_keys(raw.get("milestones"))
        self.triggers |= {t["trigger"] for t in _raw_list(raw.get("transitions"))
                          if isinstance(t, dict) and isinstance(t.get("trigger"), str)}
        self.raw_fields = _raw_keys(raw.get("fields"))
        # False once a transition names a state that does not exist: the graph is then
        # missing edges, and reachability errors would only echo that mistake.
        self.graph_sound = True

    # -- reporting ---------------------------------------------------------------------
    def error(self, loc: Path, message: str, hint: str | None = None, *,
              key: bool = False) -> None:
        self.out.problems.append(self.doc.problem(loc, message, hint, key=key))

    def unknown(self, what: str, name: str, known: Iterable[str], loc: Path) -> None:
        self.error(loc, f"unknown {what} '{name}'", suggest(name, known))

    def identifier(self, what: str, name: Any, loc: Path, *, key: bool = True) -> bool:
        # fullmatch: with match, ``$`` also accepts a trailing newline ("panel\n").
        if isinstance(name, str) and IDENTIFIER.fullmatch(name):
            return True
        shown = kind_of(name).removeprefix("string ") if isinstance(name, str) else repr(name)
        self.error(loc, f"{what} name {shown} is not a valid identifier",
                   "use lowercase letters, digits and '_', starting with a letter "
                   "(at most 64 characters)", key=key)
        return False

    # -- the checks ----------------------------------------------------------------------
    def run(self) -> Analysis:
        spec = self.spec
        if spec.workflow is not None:
            self.identifier("workflow", spec.workflow, ("workflow",), key=False)
        if spec.title is not None and not spec.title.strip():
            self.error(("title",), "title must not be empty")
        if spec.timezone is not None:
            self.out.problems += check_timezone(self.doc, spec.timezone)
        if spec.calendar is not None:
            self.out.problems += check_calendar(self.doc, spec.calendar)
        self.check_roles()
        self.check_fields()
        self.check_states()
        self.check_joins()
        self.check_transitions()
        self.check_milestones()
        self.check_timers()
        if self.result.complete:
            check_graph(self)
        check_outcomes(self)
        return self.out

    def check_roles(self) -> None:
        for name in self.spec.roles:
            loc = ("roles", name)
            if name == SYSTEM_ROLE:
                self.error(loc, "'system' is reserved for the engine's own timers and cannot be "
                           "declared as a role", "rename the role", key=True)
            else:
                self.identifier("role", name, loc)

    def check_fields(self) -> None:
        for name, fspec in self.spec.fields.items():
            loc = ("fields", name)
            if self.identifier("field", name, loc) and name in CEL_RESERVED:
                self.error(loc, f"field name '{name}' is a reserved word in CEL conditions",
                           "rename the field", key=True)
            for role_i, role in enumerate(fspec.visible_to or ()):
                if role not in self.roles and role != SYSTEM_ROLE:
                    self.unknown("role", role, self.roles, (*loc, "visible_to", role_i))
            built = check_field(self, name, fspec, loc)
            if built is not None:
                self.out.fields[name] = built

    # -- states ----------------------------------------------------------------------------
    def check_states(self) -> None:
        states = self.spec.states
        initial: list[str] = []
        for name, sspec in states.items():
            loc = ("states", name)
            self.identifier("state", name, loc)
            if sspec.initial:
                initial.append(name)
            self.add_state(name, name, None, sspec, loc)
        # A state that failed the schema may be the one marked initial.
        all_valid = _raw_keys(self.doc.data.get("states")) <= set(states)
        if not initial and states and all_valid:
            self.error(("states",), "no initial state: mark exactly one top-level state "
                       "with `initial: true`", key=True)
        for extra in initial[1:]:
            self.error(("states", extra, "initial"),
                       f"more than one initial state: '{initial[0]}' and '{extra}'",
                       f"keep `initial: true` on one of them (the first is '{initial[0]}')",
                       key=True)
        for name in initial[:1]:
            if states[name].final:
                self.error(("states", name, "final"), f"the initial state '{name}' cannot be "
                           "final", key=True)

    def add_state(self, path: str, name: str, parent: str | None, sspec: StateSpec,
                  loc: Path) -> None:
        in_track = parent is not None
        if sspec.owner is not None and sspec.owner not in self.roles:
            self.unknown("role", sspec.owner, self.roles, (*loc, "owner"))
        if sspec.join is not None and sspec.parallel is None:
            self.error((*loc, "join"), f"`join` is only for parallel states, and '{path}' has "
                       "no `parallel`", key=True)
        if in_track and sspec.initial:
            self.error((*loc, "initial"), f"state '{path}' is inside a track: name the "
                       "track's first state with the track's `initial` instead", key=True)
        tracks: list[str] = []
        if sspec.parallel is not None:
            if in_track:
                self.error((*loc, "parallel"), f"parallel states cannot be nested: '{path}' "
                           "is already inside a track", key=True)
            if sspec.final:
                self.error((*loc, "final"), f"parallel state '{path}' cannot be final",
                           key=True)
            if not sspec.parallel:
                self.error((*loc, "parallel"), f"parallel state '{path}' has no tracks",
                           key=True)
            for track, tspec in sspec.parallel.items():
                tloc = (*loc, "parallel", track)
                tpath = f"{path}.{track}"
                self.identifier("track", track, tloc)
                tracks.append(tpath)
                self.add_track(tpath, track, path, tspec.initial, tspec.states, tloc)
        kind: StateKind = "parallel" if sspec.parallel is not None else "atomic"
        self.out.states[path] = StateDef(
            path=path, name=name, kind=kind, parent=parent,
            initial=sspec.initial and not in_track, final=sspec.final, owner=sspec.owner,
            join=sspec.join, children=tuple(tracks), mark=self.doc.key_mark(loc))
        self.out.state_locs[path] = loc
        # Keep parents before children in the table, so iteration order is file order.
        for tpath in tracks:
            self.out.states[tpath] = self.out.states.pop(tpath)
            for child in self.out.states[tpath].children:
                self.out.states[child] = self.out.states.pop(child)

    def add_track(self, path: str, name: str, parent: str, initial: str | None,
                  states: Mapping[str, StateSpec], loc: Path) -> None:
        flagged = [s for s, sp in states.items() if sp.initial]
        first = initial
        if not states:
            self.error((*loc, "states"), f"track '{path}' has no states", key=True)
        elif initial is not None and initial not in states:
            self.error((*loc, "initial"), f"unknown state '{initial}' in track '{path}'",
                       suggest(initial, states))
            first = None
        elif initial is None and not flagged:
            self.error(loc, f"track '{path}' has no initial state",
                       f"add `initial: {next(iter(states))}` to the track", key=True)
        elif initial is None:
            first = flagged[0]
        children = []
        for child, cspec in states.items():
            cloc = (*loc, "states", child)
            self.identifier("state", child, cloc)
            children.append(f"{path}.{child}")
            self.add_state(f"{path}.{child}", child, path, cspec, cloc)
        self.out.states[path] = StateDef(
            path=path, name=name, kind="track", parent=parent, children=tuple(children),
            initial_child=f"{path}.{first}" if first else None, mark=self.doc.key_mark(loc))
        self.out.state_locs[path] = loc

    def check_joins(self) -> None:
        for path, state in list(self.out.states.items()):
            if state.kind != "parallel" or state.join is None:
                continue
            loc = (*self.out.state_locs[path], "join")
            target = self.state_ref(state.join, loc, tracks=False)
            if target is None:
                self.graph_sound = False
            elif target == path or self.out.states[target].parent is not None:
                self.error(loc, f"`join` of '{path}' must name a top-level state outside it, "
                           f"not '{target}'")
                self.graph_sound = False

    # -- references ------------------------------------------------------------------------
    def state_ref(self, name: str, loc: Path, *, what: str = "state",
                  tracks: bool = True) -> str | None:
        """Resolve a referenced state path; report and return None if it is not one."""
        state = self.out.states.get(name)
        if state is None:
            if not self.result.complete and self.raw_state_known(name):
                return None
            self.error(loc, f"unknown {what} '{name}'", suggest_state(name, self.out.states))
            return None
        if state.kind == "track" and not tracks:
            self.error(loc, f"'{name}' is a track of parallel state '{state.parent}', not a "
                       f"state a transition can use", f"use '{state.parent}' to leave every "
                       "track, or a state inside the track")
            return None
        return name

    def raw_state_known(self, path: str) -> bool:
        node: Any = self.doc.data.get("states")
        parts = path.split(".")
        for i, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
            if i + 1 < len(parts):
                key = "parallel" if i % 2 == 0 else "states"
                node = node.get(key) if isinstance(node, dict) else None
        return True

    def role_refs(self, names: Iterable[str], loc: Path, *, system_ok: bool = False) -> None:
        for i, role in enumerate(names):
            if role == SYSTEM_ROLE and not system_ok:
                self.error((*loc, i), "'system' is reserved for the engine's own timers",
                           "a timer's `fire` lets the system fire any trigger; list the "
                           "agencies' roles here")
            elif role not in self.roles and role != SYSTEM_ROLE:
                self.unknown("role", role, self.roles, (*loc, i))

    def check_transitions(self) -> None:
        fired = {t.fire for t in self.spec.timers if t.fire}
        for pos, tspec in enumerate(self.spec.transitions):
            loc: Path = ("transitions", self.result.transition_index[pos])
            sources, dest = check_transition(self, tspec, loc, fired)
            self.out.sources.append(sources)
            self.out.dests.append(dest)

    def guard(self, tspec: TransitionSpec, loc: Path) -> None:
        if tspec.when is None:
            return
        if tspec.when in self.out.guards:
            return
        # Fields whose spec failed a check are declared, but cannot type-check a guard.
        broken = (self.raw_fields | set(self.spec.fields)) - set(self.out.fields)
        try:
            guard = check_guard(tspec.when, self.out.fields, broken)
        except GuardError as exc:
            self.error((*loc, "when"), str(exc), exc.hint)
            return
        if guard is not None:
            self.out.guards[tspec.when] = guard

    def check_milestones(self) -> None:
        for name, mspec in self.spec.milestones.items():
            loc = ("milestones", name)
            self.identifier("milestone", name, loc)
            if not mspec.on and mspec.on_enter is None:
                self.error(loc, f"milestone '{name}' is never reached: give it `on` (triggers) "
                           "or `on_enter` (a state)", key=True)
            for i, trigger in enumerate(mspec.on or ()):
                if trigger not in self.triggers:
                    self.unknown("trigger", trigger, self.triggers, (*loc, "on", i))
            if mspec.on_enter is not None:
                self.state_ref(mspec.on_enter, (*loc, "on_enter"))

    def check_timers(self) -> None:
        seen: dict[str, Path] = {}
        for pos, tspec in enumerate(self.spec.timers):
            loc: Path = ("timers", self.result.timer_index[pos])
            check_timer(self, tspec, loc, seen)


def _raw_keys(value: Any) -> set[str]:
    return {k for k in value if isinstance(k, str)} if isinstance(value, dict) else set()


def _raw_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
