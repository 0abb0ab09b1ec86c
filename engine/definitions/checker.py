"""The shared state of one run of the definition checks, and how they report.

A :class:`Checker` holds the document, its schema result, the names declared in it and
the :class:`Analysis` being filled in; it reports problems and resolves references
(states, roles, guards) the same way for every check module. It imports none of them:
``checks`` (the orchestrator), ``field_checks``, ``item_checks`` and ``graph`` all build
on it, so the checks form a layer above it instead of a circle around it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.definitions.guards import GuardError, check_guard
from engine.definitions.model import SYSTEM_ROLE, FieldDef, Guard, StateDef
from engine.definitions.names import IDENTIFIER, suggest, suggest_state
from engine.definitions.schema import SchemaResult, TransitionSpec
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
        self.roles |= raw_keys(raw.get("roles"))
        self.milestones |= raw_keys(raw.get("milestones"))
        self.triggers |= {t["trigger"] for t in _raw_list(raw.get("transitions"))
                          if isinstance(t, dict) and isinstance(t.get("trigger"), str)}
        self.raw_fields = raw_keys(raw.get("fields"))
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


def raw_keys(value: Any) -> set[str]:
    """The string keys of a raw mapping from the document (none if it is not one)."""
    return {k for k in value if isinstance(k, str)} if isinstance(value, dict) else set()


def _raw_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
