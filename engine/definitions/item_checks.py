"""Checks of single transitions and timers: the names they use and where they may lead."""

from __future__ import annotations

from engine.definitions.checker import Checker
from engine.definitions.names import ANY_STATE, suggest
from engine.definitions.schema import TimerSpec, TransitionSpec
from engine.definitions.yamlsource import Path


def check_transition(c: Checker, t: TransitionSpec, loc: Path,
                     fired: set[str]) -> tuple[tuple[str, ...], str | None]:
    """Report the transition's problems; return its expanded sources and its target."""
    c.identifier("trigger", t.trigger, (*loc, "trigger"), key=False)
    sources = _sources(c, t, loc)
    dest = _dest(c, t, loc)
    if dest is None or not _check_boundaries(c, t.trigger, sources, dest, (*loc, "to")):
        c.graph_sound = False
    _check_firers(c, t, loc, fired)
    _check_preconditions(c, t, loc)
    c.guard(t, loc)
    return tuple(sources), dest


def _sources(c: Checker, t: TransitionSpec, loc: Path) -> list[str]:
    """The states named in ``from``, with "*" expanded, each once, in file order."""
    if not t.from_:
        c.error((*loc, "from"), "`from` must name at least one state (or \"*\")")
    sources: list[str] = []
    for i, name in enumerate(t.from_):
        iloc = (*loc, "from", i)
        if name == ANY_STATE:
            sources += [p for p, s in c.out.states.items() if s.parent is None and not s.final]
            continue
        path = c.state_ref(name, iloc, tracks=False)
        if path is None:
            c.graph_sound = False
            continue
        if c.out.states[path].final:
            c.error(iloc, f"final state '{path}' cannot have outgoing transitions",
                    f"remove `final: true` from '{path}' or remove this transition")
            continue
        sources.append(path)
    return list(dict.fromkeys(sources))


def _dest(c: Checker, t: TransitionSpec, loc: Path) -> str | None:
    if t.to == ANY_STATE:
        c.error((*loc, "to"), "`to` must name one state; \"*\" is only for `from`")
        return None
    return c.state_ref(t.to, (*loc, "to"), tracks=False)


def _check_firers(c: Checker, t: TransitionSpec, loc: Path, fired: set[str]) -> None:
    """Someone must be able to fire the transition: a role in ``by``, or a timer."""
    c.role_refs(t.by, (*loc, "by"))
    if not t.by and t.trigger not in fired:
        c.error((*loc, "by"), f"nobody may fire '{t.trigger}': `by` is empty and no timer "
                "fires it", "list the roles that may fire it")


def _check_preconditions(c: Checker, t: TransitionSpec, loc: Path) -> None:
    """The fields it ``requires`` and the milestones it ``needs`` are declared."""
    known_fields = set(c.spec.fields) | c.raw_fields
    for i, name in enumerate(t.requires):
        if name not in known_fields:
            c.unknown("field", name, known_fields, (*loc, "requires", i))
    for i, name in enumerate(t.needs):
        if name not in c.milestones:
            c.unknown("milestone", name, c.milestones, (*loc, "needs", i))


def track_of(c: Checker, path: str) -> str | None:
    """The track holding state ``path``, or None for a top-level state."""
    parent = c.out.states[path].parent
    return parent if parent is not None and c.out.states[parent].kind == "track" else None


def _check_boundaries(c: Checker, trigger: str, sources: list[str], dest: str,
                      loc: Path) -> bool:
    """A transition inside a parallel state stays in its track; entering or leaving a
    parallel state goes through the parallel state itself (every track at once)."""
    dest_track = track_of(c, dest)
    for source in sources:
        source_track = track_of(c, source)
        if source_track == dest_track:
            continue
        if source_track is not None:
            parallel = c.out.states[source_track].parent
            c.error(loc, f"transition '{trigger}' from '{source}' leaves its track "
                    f"'{source_track}': a transition inside a parallel state stays in its "
                    "track", f"to leave every track at once, use `from: {parallel}`")
        else:
            assert dest_track is not None
            parallel = c.out.states[dest_track].parent
            c.error(loc, f"transition '{trigger}' enters '{dest}' inside track "
                    f"'{dest_track}' from outside it", f"go to '{parallel}' instead: every "
                    "track then starts at its `initial` state")
        return False
    return True


def check_timer(c: Checker, t: TimerSpec, loc: Path, seen: dict[str, Path]) -> None:
    _check_timer_name(c, t, loc, seen)
    state = _timer_state(c, t, loc)
    _check_timer_action(c, t, loc)
    if t.fire is not None:
        _check_fire(c, t, t.fire, state, loc)
    _check_escalation(c, t, loc)
    _check_restart_on(c, t, state, loc)


def _check_timer_name(c: Checker, t: TimerSpec, loc: Path, seen: dict[str, Path]) -> None:
    """A valid name no earlier timer has; the first timer of each name goes in ``seen``."""
    c.identifier("timer", t.name, (*loc, "name"), key=False)
    if t.name in seen:
        first = c.doc.mark((*seen[t.name], "name"))
        c.error((*loc, "name"), f"duplicate timer name '{t.name}' (first at line {first.line})",
                "give every timer its own name")
    else:
        seen[t.name] = loc


def _timer_state(c: Checker, t: TimerSpec, loc: Path) -> str | None:
    """The state the timer runs in, or None if ``in`` names none."""
    state = c.state_ref(t.in_, (*loc, "in"))
    if state is not None and c.out.states[state].final:
        c.error((*loc, "in"), f"timer '{t.name}' is in final state '{state}', which a case "
                "never leaves, so it would run on a closed case")
    return state


def _check_timer_action(c: Checker, t: TimerSpec, loc: Path) -> None:
    """Exactly one of ``remind`` and ``fire``, or at least an ``escalate`` ladder."""
    c.role_refs(t.remind or (), (*loc, "remind"))
    if t.remind and t.fire is not None:
        c.error((*loc, "fire"), f"timer '{t.name}' has both `remind` and `fire`: give it one "
                "of them", "use `escalate` to notify people before firing", key=True)
    if not t.remind and t.fire is None and not t.escalate:
        c.error(loc, f"timer '{t.name}' does nothing: give it `remind`, `fire` or `escalate`")


def _check_fire(c: Checker, t: TimerSpec, fire: str, state: str | None, loc: Path) -> None:
    if fire not in c.triggers:
        c.unknown("trigger", fire, c.triggers, (*loc, "fire"))
    elif state is not None and c.result.complete and not _leaves(c, fire, state):
        c.error((*loc, "fire"), f"timer '{t.name}' fires '{fire}', but no '{fire}' "
                f"transition can fire in '{state}'",
                "add the state to that transition's `from`, or fire another trigger")


def _check_escalation(c: Checker, t: TimerSpec, loc: Path) -> None:
    for j, step in enumerate(t.escalate):
        sloc = (*loc, "escalate", j)
        if not step.notify:
            c.error((*sloc, "notify"), "an escalation step must notify at least one role")
        c.role_refs(step.notify, (*sloc, "notify"))


def _check_restart_on(c: Checker, t: TimerSpec, state: str | None, loc: Path) -> None:
    for i, trigger in enumerate(t.restart_on):
        if trigger not in c.triggers:
            c.error((*loc, "restart_on", i), f"unknown trigger '{trigger}'",
                    suggest(trigger, c.triggers) or f"a heartbeat needs a transition such as "
                    f"`{{trigger: {trigger}, from: {state}, to: {state}, by: [...]}}`")


def _leaves(c: Checker, trigger: str, state: str) -> bool:
    """Can a ``trigger`` transition fire while the case is in ``state``?

    True when one of its sources is the state, an ancestor of it (a transition from a
    parallel state applies in every track) or a descendant (a timer on a parallel state
    may fire a trigger of one of its tracks).
    """
    for spec, sources in zip(c.spec.transitions, c.out.sources, strict=True):
        if spec.trigger != trigger:
            continue
        for source in sources:
            if (source == state or state.startswith(source + ".")
                    or source.startswith(state + ".")):
                return True
    return False
