"""A definition compiled for running cases: which triggers may fire now, and what they do.

``compile_definition`` builds one :class:`CompiledWorkflow` per (workflow, version,
content hash), shared by every case of that version. It owns the version's single
`transitions` hierarchical machine (:mod:`engine.machine.hsm`) and answers, without a
database, for a case's configuration and data:

- ``allowed``: the triggers that could fire now, for which roles, and where they lead;
- ``decide``: the transition one event takes (first match in file order whose guard holds),
  or a :class:`TransitionRejected` naming the reason and what is allowed instead.

What a transition does to a configuration (exits, entries, joins) does not depend on the
case data, so the machine runs each (configuration, transition) pair once and the result
is memoised; a decision is then a few set and dict look-ups plus the guard.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.definitions.model import SYSTEM_ROLE, Definition, Guard, TransitionDef
from engine.errors import InvalidInput
from engine.machine.hsm import SharedMachine, ancestors, entry_leaves
from engine.machine.reject import Candidate, rejection

__all__ = ["Allowed", "CompiledWorkflow", "Decision", "compile_definition"]


@dataclass(frozen=True, slots=True)
class Allowed:
    """A trigger that could fire now, where it leads, and the roles that may fire it."""

    trigger: str
    dest: str
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one accepted event.

    ``source``/``target`` are configurations before and after (after any automatic join).
    ``exited``/``entered`` list state paths in the order the machine left and entered them,
    ancestors included. A state passed through (a track's final state just before its
    join) is in both; only states in ``active_states(target)`` are occupied afterwards.
    ``joined`` is the parallel state whose join fired, or None.
    """

    transition: TransitionDef
    source: tuple[str, ...]
    target: tuple[str, ...]
    exited: tuple[str, ...]
    entered: tuple[str, ...]
    joined: str | None

    @property
    def trigger(self) -> str:
        return self.transition.trigger

    @property
    def internal(self) -> bool:
        """Nothing was left or entered: the event is recorded in the same state."""
        return not self.exited and not self.entered


# Per trigger with a transition from an active state: those transitions (file order)
# and every role that may fire one of them (sorted).
_Menu = tuple[tuple[str, tuple[Candidate, ...], tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class _Config:
    """A validated configuration with what depends only on it, computed once."""

    key: tuple[str, ...]
    active: frozenset[str]
    menu: _Menu


class CompiledWorkflow:
    """One definition version, compiled; shared by all of its cases and threads."""

    def __init__(self, definition: Definition) -> None:
        self.definition = definition
        guards = {t.index: _guard(definition, t) for t in definition.transitions}
        fired_by_timers = {t.fire for t in definition.timers if t.fire}
        by_trigger: dict[str, list[Candidate]] = {}
        for tdef in sorted(definition.transitions, key=lambda t: t.index):
            roles = tdef.by | {SYSTEM_ROLE} if tdef.trigger in fired_by_timers else tdef.by
            by_trigger.setdefault(tdef.trigger, []).append(
                Candidate(tdef, frozenset(tdef.sources), frozenset(roles), guards[tdef.index])
            )
        # Dict order is file order of each trigger's first transition.
        self._by_trigger = {k: tuple(v) for k, v in by_trigger.items()}
        self._machine = SharedMachine(definition, guards)
        self._initial = entry_leaves(definition, definition.initial_state)
        self._final_configs = frozenset(
            (s.path,) for s in definition.top_level() if s.final and s.kind == "atomic"
        )
        self._configs: dict[tuple[str, ...], _Config] = {}
        self._decisions: dict[tuple[tuple[str, ...], int], Decision] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<CompiledWorkflow {self.definition.workflow} v{self.definition.version}>"

    @property
    def machine(self) -> Any:
        """The shared `transitions` HierarchicalMachine (read-only use, e.g. diagrams)."""
        return self._machine.machine

    def initial_configuration(self) -> tuple[str, ...]:
        return self._initial

    def is_final(self, config: Sequence[str]) -> bool:
        """The case has ended: it rests in a top-level final state."""
        return self._config(config).key in self._final_configs

    def active_states(self, config: Sequence[str]) -> set[str]:
        """The configuration's leaves and all of their ancestors."""
        return set(self._config(config).active)

    def triggers(self) -> list[str]:
        """Every trigger of the definition, in file order."""
        return list(self._by_trigger)

    def allowed(
        self,
        config: Sequence[str],
        data: Mapping[str, Any],
        milestones: Iterable[str],
        roles: Iterable[str] | None = None,
    ) -> list[Allowed]:
        """Triggers that could fire now (guard and needs honoured; requires are not, since
        the event's own data may supply them), one entry per destination."""
        wanted = None if roles is None else frozenset(roles)
        reached = milestones if isinstance(milestones, (set, frozenset)) else set(milestones)
        result: list[Allowed] = []
        for trigger, here, pool in self._config(config).menu:
            if len(here) == 1:  # the common case: one transition per trigger and state
                c = here[0]
                who = pool if wanted is None else tuple(r for r in pool if r in wanted)
                if who and c.holds(data) and all(m in reached for m in c.tdef.needs):
                    result.append(Allowed(trigger, c.tdef.dest, who))
                continue
            chosen = _roles_per_transition(here, pool, wanted, data, reached)
            result += [Allowed(trigger, c.tdef.dest, tuple(chosen[c.tdef.index]))
                       for c in here if c.tdef.index in chosen]
        return result

    def decide(
        self,
        config: Sequence[str],
        trigger: str,
        role: str,
        data: Mapping[str, Any],
        milestones: Iterable[str],
        case_id: int | None = None,
    ) -> Decision:
        """The transition ``trigger`` takes for ``role``, or TransitionRejected.

        ``data`` is the case data after this event's data is applied; ``milestones`` the
        names reached so far. Checks, in order: unknown trigger, not in state, role,
        guard, required fields, needed milestones.
        """
        info = self._config(config)
        candidates = self._by_trigger.get(trigger)
        if candidates is None:
            raise self._reject(info, trigger, role, data, milestones, case_id, "unknown_trigger")
        # The choice stays inline, not in a helper: this loop is the hot path of every
        # event, and a call per decision would cost more than the loop itself.
        active = info.active
        chosen = None
        in_state = role_ok = False
        for c in candidates:
            if c.sources.isdisjoint(active):
                continue
            in_state = True
            if role not in c.roles:
                continue
            role_ok = True
            if c.guard is None or c.holds(data):
                chosen = c
                break
        if chosen is None:
            reason = (
                "guard_failed" if role_ok else "role_not_allowed" if in_state else "not_in_state"
            )
            raise self._reject(info, trigger, role, data, milestones, case_id, reason)
        tdef = chosen.tdef
        if tdef.requires or tdef.needs:
            self._check_preconditions(info, tdef, role, data, milestones, case_id)
        decision = self._decisions.get((info.key, tdef.index))
        return decision if decision is not None else self._run(info, tdef, data)

    def _check_preconditions(
        self,
        info: _Config,
        tdef: TransitionDef,
        role: str,
        data: Mapping[str, Any],
        milestones: Iterable[str],
        case_id: int | None,
    ) -> None:
        """Reject the chosen transition if a required field is empty or a needed
        milestone not reached, in that order."""
        trigger = tdef.trigger
        if tdef.requires and any(_empty(data.get(f)) for f in tdef.requires):
            missing = [f for f in tdef.requires if _empty(data.get(f))]
            raise self._reject(
                info, trigger, role, data, milestones, case_id, "missing_required", missing
            )
        if tdef.needs:
            reached = milestones if isinstance(milestones, (set, frozenset)) else set(milestones)
            missing = [m for m in tdef.needs if m not in reached]
            if missing:
                raise self._reject(
                    info, trigger, role, data, reached, case_id, "milestones_missing", missing
                )

    def _run(self, info: _Config, tdef: TransitionDef, data: Mapping[str, Any]) -> Decision:
        outcome = self._machine.run(info.key, tdef, data)
        decision = Decision(
            tdef, info.key, outcome.target, outcome.exited, outcome.entered, outcome.joined
        )
        with self._lock:
            return self._decisions.setdefault((info.key, tdef.index), decision)

    def _reject(
        self,
        info: _Config,
        trigger: str,
        role: str,
        data: Mapping[str, Any],
        milestones: Iterable[str],
        case_id: int | None,
        reason: str,
        missing: list[str] | None = None,
    ) -> Exception:
        reached = milestones if isinstance(milestones, (set, frozenset)) else set(milestones)
        allowed_now = list(
            dict.fromkeys(a.trigger for a in self.allowed(info.key, data, reached, [role]))
        )
        return rejection(
            self.definition,
            self._by_trigger.get(trigger, ()),
            config=info.key,
            active=info.active,
            trigger=trigger,
            role=role,
            data=data,
            case_id=case_id,
            reason=reason,
            allowed=allowed_now,
            missing=missing or [],
            known_triggers=list(self._by_trigger),
        )

    def _config(self, config: Sequence[str]) -> _Config:
        key = config if type(config) is tuple else tuple(config)
        info = self._configs.get(key)
        if info is None:
            info = self._check_config(key)
            with self._lock:
                info = self._configs.setdefault(key, info)
        return info

    def _check_config(self, config: tuple[str, ...]) -> _Config:
        """Validate a stored configuration once; it must be one the machine can be in."""
        defn = self.definition
        key = tuple(sorted(config))
        problem = None
        if not key or len(set(key)) != len(key):
            problem = "it must list each active state once"
        elif any(p not in defn.states or defn.states[p].children for p in key):
            problem = "it names a state that is not a leaf of this workflow"
        active = frozenset(a for leaf in key if leaf in defn.states for a in ancestors(defn, leaf))
        if problem is None:
            problem = _shape_problem(defn, active)
        if problem is not None:
            raise InvalidInput(
                f"state configuration {list(config)} does not fit workflow "
                f"{defn.workflow} v{defn.version}: {problem}",
                state=list(config),
                workflow=defn.workflow,
                version=defn.version,
            )
        menu = []
        for trigger, candidates in self._by_trigger.items():
            here = tuple(c for c in candidates if not c.sources.isdisjoint(active))
            if here:
                menu.append((trigger, here, tuple(sorted(set().union(*(c.roles for c in here))))))
        return _Config(key, active, tuple(menu))


def _roles_per_transition(
    here: tuple[Candidate, ...],
    pool: tuple[str, ...],
    wanted: frozenset[str] | None,
    data: Mapping[str, Any],
    reached: Iterable[str],
) -> dict[int, list[str]]:
    """For several transitions of one trigger: by transition index, the roles (of
    ``wanted``) for which it is the one ``decide`` would take.

    A role gets the first transition of ``here`` it may fire whose guard holds, and is
    listed only if that one's milestones are reached: decide would not fall through to a
    later transition. Each guard is evaluated at most once.
    """
    chosen: dict[int, list[str]] = {}
    verdicts: dict[int, bool] = {}
    for role in pool:
        if wanted is not None and role not in wanted:
            continue
        for c in here:
            if role not in c.roles:
                continue
            index = c.tdef.index
            if index not in verdicts:
                verdicts[index] = c.holds(data)
            if verdicts[index]:
                if all(m in reached for m in c.tdef.needs):
                    chosen.setdefault(index, []).append(role)
                break
    return chosen


def _shape_problem(defn: Definition, active: frozenset[str]) -> str | None:
    if sum(1 for s in defn.top_level() if s.path in active) != 1:
        return "exactly one top-level state must be active"
    for path in active:
        state = defn.states[path]
        inside = [c for c in state.children if c in active]
        if state.kind == "parallel" and len(inside) != len(state.children):
            return f"every track of {path} must be active"
        if state.kind == "track" and len(inside) != 1:
            return f"exactly one state of track {path} must be active"
    return None


def _guard(defn: Definition, tdef: TransitionDef) -> Guard | None:
    if tdef.when is None:
        return None
    guard = defn.guards.get(tdef.when)
    if guard is None:
        raise ValueError(f"{defn.workflow}: guard {tdef.when!r} was not compiled by the loader")
    return guard


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, (list, tuple)) and not value)


_cache: dict[tuple[str, int, str], CompiledWorkflow] = {}
_cache_lock = threading.Lock()


def compile_definition(defn: Definition) -> CompiledWorkflow:
    """The shared compiled form of ``defn`` (one per workflow, version and content hash)."""
    key = (defn.workflow, defn.version, defn.content_hash)
    hit = _cache.get(key)
    if hit is not None and _same(hit.definition, defn):
        return hit
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and _same(hit.definition, defn):
            return hit
        compiled = CompiledWorkflow(defn)
        _cache[key] = compiled
        return compiled


def _same(cached: Definition, defn: Definition) -> bool:
    # Loaded definitions carry the source's sha256; hand-built ones (tests, tools) may not,
    # so without a hash compare the content itself.
    return cached is defn or bool(defn.content_hash) or cached == defn
