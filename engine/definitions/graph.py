"""Whole-graph checks: reachability, paths to a final state, joins, ambiguous triggers.

They run only on a schema-complete document whose transitions all name real states:
otherwise a dropped or mistyped transition would show up again as "unreachable".
Ambiguity and parallel-exit checks need only resolved sources, so they always run then.
"""

from __future__ import annotations

from collections import defaultdict, deque

from engine.definitions.checker import Checker
from engine.definitions.model import StateDef
from engine.definitions.yamlsource import Path


def check_graph(c: Checker) -> None:
    _check_ambiguity(c)
    _check_parallel_exits(c)
    if c.graph_sound and not _has_initial_problem(c):
        reachable = _check_reachable(c)
        _check_top_level_finals(c, reachable)
        _check_tracks(c, reachable)


def _edges(c: Checker) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for sources, dest in zip(c.out.sources, c.out.dests, strict=True):
        if dest is not None:
            for source in sources:
                edges[source].add(dest)
    for path, state in c.out.states.items():
        if state.kind == "parallel" and state.join in c.out.states:
            edges[path].add(state.join)
    return edges


def _has_initial_problem(c: Checker) -> bool:
    top_initial = [s for s in c.out.states.values() if s.parent is None and s.initial]
    tracks_ok = all(s.initial_child for s in c.out.states.values() if s.kind == "track")
    return len(top_initial) != 1 or not tracks_ok


def _check_reachable(c: Checker) -> set[str]:
    """Report unreachable states, only the first of each unreachable region: a state
    that only unreachable states lead to is named in that state's hint instead."""
    states = c.out.states
    edges = _edges(c)
    start = next(p for p, s in states.items() if s.parent is None and s.initial)
    seen = _reach(states, edges, [start])

    def shown(path: str) -> bool:
        state = states[path]
        # States of an unreachable parallel state are covered by reporting it.
        return state.kind != "track" and (state.parent is None or
                                          states[state.parent].parent in seen)

    unreached = [p for p in states if p not in seen and shown(p)]
    fed = {d for p in unreached for d in edges.get(p, ()) if d != p}
    covered: set[str] = set()
    for path in [p for p in unreached if p not in fed] + unreached:
        if path in covered:
            continue
        behind = [p for p in _reach(states, edges, [path]) - seen - {path}
                  if shown(p) or states[p].parent is None]
        covered |= {path, *behind}
        hint = "add a transition to it, or remove it"
        later = [p for p in unreached if p in behind]
        if later:
            hint += f" ({_names(later)} {'is' if len(later) == 1 else 'are'} unreachable " \
                    "only because of it)"
        _error_at_state(c, path, f"state '{path}' is unreachable: no transition leads to it "
                        f"from the initial state '{start}'", hint)
    return seen


def _reach(states: dict[str, StateDef], edges: dict[str, set[str]],
           starts: list[str]) -> set[str]:
    seen: set[str] = set()
    queue = deque(starts)
    while queue:
        path = queue.popleft()
        if path in seen:
            continue
        seen.add(path)
        state = states[path]
        if state.kind == "parallel":
            # Entering a parallel state enters every track at its initial state.
            for track in state.children:
                seen.add(track)
                initial = states[track].initial_child
                if initial is not None:
                    queue.append(initial)
        queue.extend(edges.get(path, ()))
    return seen


def _names(paths: list[str]) -> str:
    quoted = [f"'{p}'" for p in paths]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _check_top_level_finals(c: Checker, reachable: set[str]) -> None:
    states = c.out.states
    top = {p: s for p, s in states.items() if s.parent is None}
    finals = [p for p, s in top.items() if s.final]
    if not finals:
        if top:
            c.error(("states",), "no final state: mark at least one top-level state "
                    "`final: true`, so cases can close", key=True)
        return
    closing = _backwards(finals, _reverse_edges(c, set(top)))
    stuck = _stuck_parallels(c)
    for path, state in top.items():
        if path in stuck:
            continue  # already reported: a parallel state with no way out
        if not state.final and path in reachable and path not in closing:
            _error_at_state(c, path, f"state '{path}' has no path to a final state: a case "
                            "that gets here can never close",
                            "add a transition from it that leads towards a final state")


def _reverse_edges(c: Checker, within: set[str]) -> dict[str, set[str]]:
    """dest -> sources, for the transitions between states of ``within`` only."""
    reverse: dict[str, set[str]] = defaultdict(set)
    for source, dests in _edges(c).items():
        for dest in dests:
            if source in within and dest in within:
                reverse[dest].add(source)
    return reverse


def _check_tracks(c: Checker, reachable: set[str]) -> None:
    """A ``join`` waits for every track to be final: each track must be able to get there."""
    states = c.out.states
    exits = _exits(c)
    for path, state in states.items():
        if state.kind != "parallel" or state.join is None or path not in reachable:
            continue
        for track in state.children:
            children = states[track].children
            finals = [s for s in children if states[s].final]
            if not finals:
                _error_at_state(c, track, f"track '{track}' has no final state, so "
                                f"'{path}' can never join into '{state.join}'",
                                "mark the track's last state `final: true`")
                continue
            if path in exits:
                continue  # a case stuck in a track can still leave the parallel state
            done = _backwards(finals, _reverse_edges(c, set(children)))
            for child in children:
                if child in reachable and not states[child].final and child not in done:
                    _error_at_state(c, child, f"state '{child}' has no path to a final state "
                                    f"of track '{track}', and '{path}' has no transition out "
                                    "of it, so a case that gets here can never move on",
                                    "add a transition towards the track's final state")


def _stuck_parallels(c: Checker) -> list[str]:
    exits = _exits(c)
    return [path for path, state in c.out.states.items()
            if state.kind == "parallel" and state.join is None and path not in exits]


def _check_parallel_exits(c: Checker) -> None:
    for path in _stuck_parallels(c):
        _error_at_state(c, path, f"parallel state '{path}' has neither `join` nor a "
                            "transition out of it, so a case can never leave it",
                            f"add `join: <state>` or a transition `from: {path}`")


def _check_ambiguity(c: Checker) -> None:
    """Same trigger, overlapping sources and roles: the first transition in file order wins
    unless its ``when`` fails, so a later one is dead where the earlier one has no ``when``
    (or the very same one) and could be fired by the same role."""
    specs = c.spec.transitions
    for j, later in enumerate(specs):
        for i in range(j):
            earlier = specs[i]
            if earlier.trigger != later.trigger:
                continue
            common = [s for s in c.out.sources[j] if s in c.out.sources[i]]
            roles_overlap = bool(set(earlier.by) & set(later.by)) or not (earlier.by or later.by)
            if not common or not roles_overlap:
                continue
            if earlier.when is not None and earlier.when != later.when:
                continue
            first = c.doc.mark(_loc(c, i))
            why = "no `when`" if earlier.when is None else "the same `when`"
            c.error((*_loc(c, j), "trigger"),
                    f"ambiguous trigger '{later.trigger}': this transition can never fire from "
                    f"'{common[0]}', because the one at line {first.line} has the same "
                    f"trigger, source and roles and {why}, so it always wins",
                    "give the earlier transition a `when`, or use different `from` states")
            break


def _exits(c: Checker) -> set[str]:
    """Parallel states that some transition leaves as a whole."""
    return {s for sources in c.out.sources for s in sources
            if c.out.states[s].kind == "parallel"}


def _backwards(targets: list[str], reverse: dict[str, set[str]]) -> set[str]:
    seen = set(targets)
    queue = deque(targets)
    while queue:
        for source in reverse.get(queue.popleft(), ()):
            if source not in seen:
                seen.add(source)
                queue.append(source)
    return seen


def _loc(c: Checker, position: int) -> Path:
    return ("transitions", c.result.transition_index[position])


def _error_at_state(c: Checker, path: str, message: str, hint: str) -> None:
    c.error(c.out.state_locs[path], message, hint, key=True)
