"""Draw a definition: Mermaid ``stateDiagram-v2`` and Graphviz DOT.

Both renderings show every state (parallel states as composites whose tracks are concurrent
regions), every transition labelled with its trigger, final states, the automatic join of a
parallel state, and every timer with its reminder, fire or escalation ladder.

A ``from: "*"`` transition arrives here already expanded by the loader, so it is drawn from
each state it applies to: that is exactly where the trigger may fire, and nothing on the
diagram needs a legend.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from engine.definitions.model import Definition, StateDef, TimerDef

__all__ = ["mermaid_ids", "to_dot", "to_mermaid"]

INDENT = "    "
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


def _edges(defn: Definition) -> list[tuple[str, str, str]]:
    """(source, dest, trigger) for every transition source, in file order, deduplicated."""
    seen: set[tuple[str, str, str]] = set()
    edges: list[tuple[str, str, str]] = []
    for t in sorted(defn.transitions, key=lambda t: t.index):
        for source in t.sources:
            edge = (source, t.dest, t.trigger)
            if edge not in seen:
                seen.add(edge)
                edges.append(edge)
    return edges


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


def to_mermaid(defn: Definition) -> str:
    """The definition as a Mermaid ``stateDiagram-v2``."""
    ids = mermaid_ids(defn)
    edges_in: dict[str | None, list[tuple[str, str, str]]] = {}
    for edge in _edges(defn):
        edges_in.setdefault(_scope(defn, edge[0], edge[1]), []).append(edge)
    timers = _timers_by_state(defn)
    lines = [
        "stateDiagram-v2",
        f"{INDENT}%% {defn.workflow} v{defn.version}: {_comment(defn.title)}",
    ]
    lines.append(f"{INDENT}[*] --> {ids[defn.initial_state]}")
    lines.extend(_mermaid_block(defn, ids, None, defn.top_level(), edges_in, timers, 1))
    for state in defn.top_level():
        if state.join:
            lines.append(f"{INDENT}{ids[state.path]} --> {ids[state.join]} : join")
    return "\n".join(lines) + "\n"


def _mermaid_block(
    defn: Definition,
    ids: dict[str, str],
    scope: str | None,
    states: list[StateDef],
    edges_in: dict[str | None, list[tuple[str, str, str]]],
    timers: dict[str, list[TimerDef]],
    depth: int,
) -> Iterator[str]:
    pad = INDENT * depth
    for state in states:
        yield from _mermaid_state(defn, ids, state, edges_in, timers, depth)
    for source, dest, trigger in edges_in.get(scope, []):
        yield f"{pad}{ids[source]} --> {ids[dest]} : {trigger}"
    for state in states:
        if state.final:
            yield f"{pad}{ids[state.path]} --> [*]"
    for state in states:
        if state.path in timers:
            yield f"{pad}note right of {ids[state.path]}"
            for timer in timers[state.path]:
                for line in _timer_lines(timer):
                    yield f"{pad}{INDENT}{line}"
            yield f"{pad}end note"


def _mermaid_state(
    defn: Definition,
    ids: dict[str, str],
    state: StateDef,
    edges_in: dict[str | None, list[tuple[str, str, str]]],
    timers: dict[str, list[TimerDef]],
    depth: int,
) -> Iterator[str]:
    pad = INDENT * depth
    sid = ids[state.path]
    if not state.children:
        yield f'{pad}state "{state.name}" as {sid}'
        if state.owner:
            yield f"{pad}{sid} : owner {state.owner}"
        return
    yield f'{pad}state "{state.name}" as {sid} {{'
    children = [defn.states[c] for c in state.children]
    if state.kind == "parallel":
        # Each track is a concurrent region holding one composite named after the track.
        for i, track in enumerate(children):
            if i:
                yield f"{pad}{INDENT}--"
            yield from _mermaid_state(defn, ids, track, edges_in, timers, depth + 1)
        yield from _mermaid_block(defn, ids, state.path, [], edges_in, timers, depth + 1)
    else:
        initial = state.initial_child or next((c.path for c in children if c.initial), None)
        if initial:
            yield f"{pad}{INDENT}[*] --> {ids[initial]}"
        yield from _mermaid_block(defn, ids, state.path, children, edges_in, timers, depth + 1)
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
    for state in defn.top_level():
        lines.extend(_dot_state(defn, state, 1))
    for source, dest, trigger in _edges(defn):
        lines.append(f"{INDENT}{_dot_edge(defn, source, dest, trigger)}")
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


def _dot_state(defn: Definition, state: StateDef, depth: int) -> Iterator[str]:
    pad = INDENT * depth
    if not state.children:
        label = state.name + (f"\nowner: {state.owner}" if state.owner else "")
        attrs = [f"label={_q(label)}"]
        if state.final:
            attrs.append("peripheries=2")
        yield f"{pad}{_q(state.path)} [{', '.join(attrs)}];"
        return
    kind = " (parallel)" if state.kind == "parallel" else ""
    yield f"{pad}subgraph {_q('cluster_' + state.path)} {{"
    yield f"{pad}{INDENT}label={_q(state.name + kind)};"
    yield f"{pad}{INDENT}style={'dashed' if state.kind == 'parallel' else 'rounded'};"
    if state.kind != "parallel" and state.initial_child:
        start = _q(f"{state.path}.[*]")
        yield f'{pad}{INDENT}{start} [shape=point, width=0.15, label=""];'
        yield f"{pad}{INDENT}{start} -> {_q(_first_in(defn, state.initial_child))};"
    for child in state.children:
        yield from _dot_state(defn, defn.states[child], depth + 1)
    yield f"{pad}}}"


def _dot_edge(defn: Definition, source: str, dest: str, label: str, style: str = "") -> str:
    """An edge; a composite end is drawn to its cluster's border (``ltail``/``lhead``)."""
    tail, head = _first_in(defn, source), _first_in(defn, dest)
    attrs = [f"label={_q(label)}"]
    if tail != source:
        attrs.append(f"ltail={_q('cluster_' + source)}")
    if head != dest:
        attrs.append(f"lhead={_q('cluster_' + dest)}")
    if style:
        attrs.append(f"style={style}")
    return f"{_q(tail)} -> {_q(head)} [{', '.join(attrs)}];"
