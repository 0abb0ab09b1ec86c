"""Draw a definition: Mermaid ``stateDiagram-v2`` and Graphviz DOT.

Both renderings show every state (parallel states as composites whose tracks are concurrent
regions), every transition labelled with its trigger, final states, the automatic join of a
parallel state, and every timer with its reminder, fire or escalation ladder.

Three choices keep the shipped workflows readable:

- A ``from: "*"`` transition arrives here expanded by the loader into every non-final
  top-level state; drawn that way, ten ``withdraw`` edges tangle the diagram. A
  transition leaving every one of those states is drawn once, from a single "any open
  state" node.
- Transitions between the same two states share one edge whose label lists every
  trigger, so several triggers do not stack their labels on each other. In Mermaid a
  loop (a trigger that stays in its state) is written on the state itself (``↻
  log_session``), or in a note beside a composite: Mermaid lays loop labels over the
  labels of the state's other edges.
- In DOT, a loop on a composite state (``review_plan`` on ``support``) cannot be an edge:
  Graphviz drops ``ltail``/``lhead`` naming the cluster the edge is inside, which would
  draw it as a loop on the first state of one track. It is listed in the cluster's
  label instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from engine.definitions.model import Definition, StateDef, TimerDef

__all__ = ["ANY_LABEL", "mermaid_ids", "to_dot", "to_mermaid"]

INDENT = "    "
ANY_LABEL = "any open state"
# DOT's name for the "any open state" node: brackets keep it apart from state paths.
_DOT_ANY = "[any]"
# Mermaid's lexer reads these words as keywords at the start of a statement ("default" even
# as a prefix), so a state id beginning with one is prefixed to stay an id.
_MERMAID_KEYWORDS = re.compile(r"^(default|state|note|class|scale|direction|hide|end|acc)", re.I)


# -- shared structure -----------------------------------------------------------------------


def _parent_chain(defn: Definition, path: str) -> list[str]:
    """Ancestors of ``path``, outermost first, itself excluded."""
    chain: list[str] = []
    parent = defn.states[path].parent
    while parent is not None:
        chain.append(parent)
        parent = defn.states[parent].parent
    return chain[::-1]


def _scope(defn: Definition, a: str, b: str) -> str | None:
    """The innermost composite holding both states (None: the top level).

    Edges are written inside it, because Mermaid draws an edge in the block it appears in.
    """
    common: str | None = None
    for x, y in zip(_parent_chain(defn, a), _parent_chain(defn, b), strict=False):
        if x != y:
            break
        common = x
    return common


Edge = tuple[str, str, tuple[str, ...]]


def _open_top_level(defn: Definition) -> frozenset[str]:
    """The states ``from: "*"`` expands to: every non-final top-level state."""
    return frozenset(s.path for s in defn.top_level() if not s.final)


def _edges(defn: Definition) -> tuple[list[Edge], list[Edge]]:
    """(edges between states, edges from "any open state" with source ""), in file order.

    Each edge carries every trigger between its two ends, deduplicated.
    """
    anywhere = _open_top_level(defn)
    merged: dict[tuple[str, str], list[str]] = {}
    for t in sorted(defn.transitions, key=lambda t: t.index):
        sources: tuple[str, ...] = t.sources
        if len(anywhere) > 1 and anywhere <= set(sources):
            merged.setdefault(("", t.dest), []).append(t.trigger)
            sources = tuple(s for s in sources if s not in anywhere)
        for source in sources:
            merged.setdefault((source, t.dest), []).append(t.trigger)
    edges = [(a, b, tuple(dict.fromkeys(triggers))) for (a, b), triggers in merged.items()]
    return [e for e in edges if e[0]], [e for e in edges if not e[0]]


def _one_line(text: object) -> str:
    """Free text (a title, a duration as written) squeezed onto one line."""
    return " ".join(str(text).split())


def _comment(text: str) -> str:
    """Text safe in a Mermaid ``%%`` comment: its lexer matches ``direction LR`` anywhere."""
    return re.sub(r"(?i)(direction)\s+(?=(tb|bt|rl|lr)\b)", r"\1 - ", _one_line(text))


def _timer_lines(timer: TimerDef) -> list[str]:
    lines = [f"timer {timer.name}: after {_one_line(timer.after)}"]
    if timer.remind:
        lines.append(f"remind {', '.join(timer.remind)}")
    if timer.every is not None:
        cap = f", {timer.at_most} in all" if timer.at_most else ""
        lines.append(f"again every {_one_line(timer.every)}{cap}")
    if timer.fire:
        lines.append(f"fire {timer.fire}")
    for step in timer.escalate:
        lines.append(f"escalate after {_one_line(step.after)} to {', '.join(step.notify)}")
    if timer.restart_on:
        lines.append(f"restart on {', '.join(sorted(timer.restart_on))}")
    return lines


def _timers_by_state(defn: Definition) -> dict[str, list[TimerDef]]:
    by_state: dict[str, list[TimerDef]] = {}
    for timer in defn.timers:
        by_state.setdefault(timer.state, []).append(timer)
    return by_state


def _first_in(defn: Definition, path: str) -> str:
    """The state first entered inside ``path`` (for DOT edges that meet a cluster)."""
    state = defn.states[path]
    while state.children:
        child = state.initial_child if state.kind == "track" else state.children[0]
        state = defn.states[child or state.children[0]]
    return state.path


# -- Mermaid --------------------------------------------------------------------------------


def mermaid_ids(defn: Definition) -> dict[str, str]:
    """A valid, unique, stable Mermaid id for every state path (dots become ``__``)."""
    ids: dict[str, str] = {}
    used: set[str] = set()
    for path in defn.states:
        base = path.replace(".", "__")
        if _MERMAID_KEYWORDS.match(base):
            base = f"s_{base}"
        candidate, n = base, 1
        while candidate in used:
            n += 1
            candidate = f"{base}_{n}"
        used.add(candidate)
        ids[path] = candidate
    return ids


def _mermaid_label(triggers: tuple[str, ...]) -> str:
    # <br/> stacks several triggers of one edge; Mermaid renders it as a line break.
    return "<br/>".join(triggers)


def _free_id(ids: dict[str, str], base: str) -> str:
    """``base``, or ``base_2``, ... : an id no state uses."""
    candidate, n = base, 1
    while candidate in ids.values():
        n += 1
        candidate = f"{base}_{n}"
    return candidate


@dataclass(frozen=True)
class _Mermaid:
    """What every block of one Mermaid rendering needs."""

    defn: Definition
    ids: dict[str, str]
    # Edges by the composite they are written in (None: the top level), loops excluded.
    edges_in: dict[str | None, list[Edge]]
    # Triggers that leave a state where it is: written on the state, not as loop edges,
    # whose labels Mermaid lays over the labels of the state's other edges.
    loops: dict[str, tuple[str, ...]]
    timers: dict[str, list[TimerDef]]


def to_mermaid(defn: Definition) -> str:
    """The definition as a Mermaid ``stateDiagram-v2``."""
    ids = mermaid_ids(defn)
    edges, from_any = _edges(defn)
    edges_in: dict[str | None, list[Edge]] = {}
    for edge in edges:
        if edge[0] != edge[1]:
            edges_in.setdefault(_scope(defn, edge[0], edge[1]), []).append(edge)
    loops = {a: triggers for a, b, triggers in edges if a == b}
    m = _Mermaid(defn, ids, edges_in, loops, _timers_by_state(defn))
    lines = [
        "stateDiagram-v2",
        f"{INDENT}%% {defn.workflow} v{defn.version}: {_comment(defn.title)}",
    ]
    lines.append(f"{INDENT}[*] --> {ids[defn.initial_state]}")
    lines.extend(_mermaid_block(m, None, defn.top_level(), 1))
    for state in defn.top_level():
        if state.join:
            # UML's join bar: its own node keeps the edge apart from a transition between
            # the same two states (Mermaid would draw both labels on one spot).
            bar = _free_id(ids, f"{ids[state.path]}_join")
            lines.append(f"{INDENT}state {bar} <<join>>")
            lines.append(f"{INDENT}{ids[state.path]} --> {bar}")
            lines.append(f"{INDENT}{bar} --> {ids[state.join]}")
    if from_any:
        any_id = _free_id(ids, "any_open_state")
        lines.append(f'{INDENT}state "{ANY_LABEL}" as {any_id}')
        for _, dest, triggers in from_any:
            lines.append(f"{INDENT}{any_id} --> {ids[dest]} : {_mermaid_label(triggers)}")
    return "\n".join(lines) + "\n"


def _loop_text(triggers: tuple[str, ...]) -> str:
    return "↻ " + ", ".join(triggers)


def _mermaid_block(
    m: _Mermaid, scope: str | None, states: list[StateDef], depth: int
) -> Iterator[str]:
    pad = INDENT * depth
    for state in states:
        yield from _mermaid_state(m, state, depth)
    for source, dest, triggers in m.edges_in.get(scope, []):
        yield f"{pad}{m.ids[source]} --> {m.ids[dest]} : {_mermaid_label(triggers)}"
    for state in states:
        if state.final:
            yield f"{pad}{m.ids[state.path]} --> [*]"
    for state in states:
        if state.children and state.path in m.loops:
            # A composite has no description lines: its loops go in a note beside it.
            yield f"{pad}note left of {m.ids[state.path]}"
            yield f"{pad}{INDENT}{_loop_text(m.loops[state.path])}"
            yield f"{pad}end note"
        if state.path in m.timers:
            yield f"{pad}note right of {m.ids[state.path]}"
            for timer in m.timers[state.path]:
                for line in _timer_lines(timer):
                    yield f"{pad}{INDENT}{line}"
            yield f"{pad}end note"


def _mermaid_state(m: _Mermaid, state: StateDef, depth: int) -> Iterator[str]:
    pad = INDENT * depth
    sid = m.ids[state.path]
    if not state.children:
        yield f'{pad}state "{state.name}" as {sid}'
        if state.owner:
            yield f"{pad}{sid} : owner {state.owner}"
        if state.path in m.loops:
            yield f"{pad}{sid} : {_loop_text(m.loops[state.path])}"
        return
    yield f'{pad}state "{state.name}" as {sid} {{'
    children = [m.defn.states[c] for c in state.children]
    if state.kind == "parallel":
        # Each track is a concurrent region holding one composite named after the track.
        for i, track in enumerate(children):
            if i:
                yield f"{pad}{INDENT}--"
            yield from _mermaid_state(m, track, depth + 1)
        yield from _mermaid_block(m, state.path, [], depth + 1)
    else:
        initial = state.initial_child or next((c.path for c in children if c.initial), None)
        if initial:
            yield f"{pad}{INDENT}[*] --> {m.ids[initial]}"
        yield from _mermaid_block(m, state.path, children, depth + 1)
    yield f"{pad}}}"


# -- Graphviz DOT ---------------------------------------------------------------------------


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(defn: Definition) -> str:
    """The definition as a Graphviz digraph (clusters for parallel states and tracks)."""
    lines = [
        f"digraph {_q(f'{defn.workflow} v{defn.version}')} {{",
        f"{INDENT}label={_q(defn.title)};",
        f"{INDENT}labelloc=t;",
        f"{INDENT}compound=true;",
        f"{INDENT}node [shape=box, style=rounded];",
        f"{INDENT}{_q('[*]')} [shape=point, width=0.2];",
        f"{INDENT}{_q('[*]')} -> {_q(_first_in(defn, defn.initial_state))};",
    ]
    edges, from_any = _edges(defn)
    loops = {a: triggers for a, b, triggers in edges if a == b and defn.states[a].children}
    for state in defn.top_level():
        lines.extend(_dot_state(defn, state, 1, loops))
    for source, dest, triggers in edges:
        if source not in loops or source != dest:
            lines.append(f"{INDENT}{_dot_edge(defn, source, dest, chr(10).join(triggers))}")
    if from_any:
        lines.append(f"{INDENT}{_q(_DOT_ANY)} [label={_q(ANY_LABEL)}, style=\"rounded,dashed\"];")
    for _, dest, triggers in from_any:
        lines.append(f"{INDENT}{_dot_edge(defn, _DOT_ANY, dest, chr(10).join(triggers))}")
    for state in defn.top_level():
        if state.join:
            lines.append(f"{INDENT}{_dot_edge(defn, state.path, state.join, 'join', 'bold')}")
    for timer in defn.timers:
        note = f"timer:{timer.name}"
        # "\\l" ends a left-justified line in a DOT label.
        text = '"' + "".join(_q(line)[1:-1] + "\\l" for line in _timer_lines(timer)) + '"'
        lines.append(f"{INDENT}{_q(note)} [shape=note, fontsize=10, label={text}];")
        target = _first_in(defn, timer.state)
        attrs = "style=dashed, arrowhead=none"
        if target != timer.state:
            attrs += f", lhead={_q('cluster_' + timer.state)}"
        lines.append(f"{INDENT}{_q(note)} -> {_q(target)} [{attrs}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_state(
    defn: Definition, state: StateDef, depth: int, loops: dict[str, tuple[str, ...]]
) -> Iterator[str]:
    pad = INDENT * depth
    if not state.children:
        label = state.name + (f"\nowner: {state.owner}" if state.owner else "")
        attrs = [f"label={_q(label)}"]
        if state.final:
            attrs.append("peripheries=2")
        yield f"{pad}{_q(state.path)} [{', '.join(attrs)}];"
        return
    kind = " (parallel)" if state.kind == "parallel" else ""
    label = state.name + kind
    if state.path in loops:
        label += "\n↻ " + ", ".join(loops[state.path])
    yield f"{pad}subgraph {_q('cluster_' + state.path)} {{"
    yield f"{pad}{INDENT}label={_q(label)};"
    yield f"{pad}{INDENT}style={'dashed' if state.kind == 'parallel' else 'rounded'};"
    if state.kind != "parallel" and state.initial_child:
        start = _q(f"{state.path}.[*]")
        yield f'{pad}{INDENT}{start} [shape=point, width=0.15, label=""];'
        yield f"{pad}{INDENT}{start} -> {_q(_first_in(defn, state.initial_child))};"
    for child in state.children:
        yield from _dot_state(defn, defn.states[child], depth + 1, loops)
    yield f"{pad}}}"


def _dot_edge(defn: Definition, source: str, dest: str, label: str, style: str = "") -> str:
    """An edge; a composite end is drawn to its cluster's border (``ltail``/``lhead``)."""
    tail = source if source == _DOT_ANY else _first_in(defn, source)
    head = _first_in(defn, dest)
    attrs = [f"label={_q(label)}"]
    if tail != source:
        attrs.append(f"ltail={_q('cluster_' + source)}")
    if head != dest:
        attrs.append(f"lhead={_q('cluster_' + dest)}")
    if style:
        attrs.append(f"style={style}")
    return f"{_q(tail)} -> {_q(head)} [{', '.join(attrs)}];"
