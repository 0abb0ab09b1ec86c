"""Diagrams: the Mermaid output is parsed back and checked state by state, edge by edge."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.definitions.diagram import ANY_LABEL, mermaid_ids, to_dot, to_mermaid
from engine.definitions.loader import load_definition
from engine.definitions.model import Definition

EXAMPLE = Path(__file__).parent.parent / "fixtures" / "diagram_example.yaml"
START = "[*]"
MERMAID_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Frame:
    path: str | None
    regions: list[list[str]] = field(default_factory=lambda: [[]])


@dataclass
class Parsed:
    """What a Mermaid state diagram says, with ids resolved to dotted state paths."""

    paths: dict[str, str] = field(default_factory=dict)  # id -> path
    composites: set[str] = field(default_factory=set)
    regions: dict[str, list[list[str]]] = field(default_factory=dict)
    # One edge per trigger of a label ("a<br/>b" is two), None for an unlabelled edge.
    edges: set[tuple[str, str, str | None, str | None]] = field(default_factory=set)
    notes: dict[str, list[str]] = field(default_factory=dict)
    descriptions: dict[str, list[str]] = field(default_factory=dict)
    # Join bars (``state x <<join>>``), by id.
    bars: set[str] = field(default_factory=set)

    def edges_without_scope(self) -> set[tuple[str, str, str | None]]:
        return {(a, b, label) for a, b, label, _ in self.edges}


class _MermaidReader:
    """A small line parser for the subset of ``stateDiagram-v2`` the engine writes.

    A state's path is rebuilt from the labels of the composites around it, so the check
    does not depend on how ids are spelled. Any line it does not understand fails the test.
    """

    def __init__(self) -> None:
        self.parsed = Parsed()
        self.raw_edges: list[tuple[str, str, str | None, str | None]] = []
        self.raw_notes: list[tuple[str, list[str]]] = []
        self.raw_descriptions: list[tuple[str, str]] = []
        self.stack = [Frame(None)]
        self.note: tuple[str, list[str]] | None = None

    def declare(self, label: str, sid: str) -> str:
        assert MERMAID_ID.match(sid), f"invalid Mermaid id {sid!r}"
        assert sid not in self.parsed.paths, f"id {sid!r} declared twice"
        parent = self.stack[-1].path
        path = f"{parent}.{label}" if parent else label
        self.parsed.paths[sid] = path
        self.stack[-1].regions[-1].append(path)
        return path

    def in_note(self, s: str) -> bool:
        if self.note is None:
            return False
        if s == "end note":
            self.raw_notes.append(self.note)
            self.note = None
        else:
            self.note[1].append(s)
        return True

    def structure(self, s: str, number: int) -> bool:
        """States, composites and regions; False if ``s`` is none of them."""
        if m := re.fullmatch(r'state "([^"]+)" as (\S+) \{', s):
            self.parsed.composites.add(self.declare(m[1], m[2]))
            self.stack.append(Frame(self.parsed.paths[m[2]]))
        elif m := re.fullmatch(r'state "([^"]+)" as (\S+)', s):
            self.declare(m[1], m[2])
        elif m := re.fullmatch(r"state (\w+) <<join>>", s):
            self.parsed.bars.add(m[1])
        elif s == "}":
            frame = self.stack.pop()
            assert frame.path is not None, f"line {number}: unbalanced '}}'"
            self.parsed.regions[frame.path] = frame.regions
        elif s == "--":
            self.stack[-1].regions.append([])
        else:
            return False
        return True

    def line(self, s: str, number: int) -> None:
        if self.in_note(s) or not s or s.startswith("%%") or self.structure(s, number):
            return
        if m := re.fullmatch(r"(\S+) --> (\S+)(?: : ([^:;]+))?", s):
            for label in m[3].split("<br/>") if m[3] else [None]:
                self.raw_edges.append((m[1], m[2], label, self.stack[-1].path))
        elif m := re.fullmatch(r"note (?:right|left) of (\S+)", s):
            self.note = (m[1], [])
        elif m := re.fullmatch(r"(\w+) : ([^:;]+)", s):
            self.raw_descriptions.append((m[1], m[2]))
        else:
            pytest.fail(f"line {number}: not understood: {s!r}")

    def resolve(self, sid: str) -> str:
        if sid == START or sid in self.parsed.bars:
            return sid
        assert sid in self.parsed.paths, f"edge to undeclared state {sid!r}"
        return self.parsed.paths[sid]

    def finish(self) -> Parsed:
        assert len(self.stack) == 1, "unclosed composite state"
        assert self.note is None, "unclosed note"
        parsed, resolve = self.parsed, self.resolve
        parsed.edges = {(resolve(a), resolve(b), lbl, sc) for a, b, lbl, sc in self.raw_edges}
        for sid, texts in self.raw_notes:
            parsed.notes.setdefault(resolve(sid), []).extend(texts)
        for sid, description in self.raw_descriptions:
            parsed.descriptions.setdefault(resolve(sid), []).append(description)
        return parsed


def parse_mermaid(text: str) -> Parsed:
    """The diagram ``text`` read back (see ``_MermaidReader``)."""
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    reader = _MermaidReader()
    for number, line in enumerate(lines[1:], start=2):
        reader.line(line.strip(), number)
    return reader.finish()


@pytest.fixture(scope="module")
def example() -> Definition:
    return load_definition(EXAMPLE.read_text(), str(EXAMPLE))


@pytest.fixture(scope="module")
def mermaid(example: Definition) -> Parsed:
    return parse_mermaid(to_mermaid(example))


STATES = {
    "referred",
    "screening",
    "panel",
    "support",
    "support.mentoring",
    "support.mentoring.matching",
    "support.mentoring.sessions",
    "support.mentoring.done",
    "support.therapy",
    "support.therapy.intake",
    "support.therapy.treatment",
    "support.therapy.done",
    "review",
    "closed_no_concern",
    "closed_completed",
    "closed_withdrawn",
}


def test_every_state_is_drawn_once_nested_where_it_belongs(mermaid: Parsed) -> None:
    assert set(mermaid.paths.values()) == STATES | {ANY_LABEL}
    assert mermaid.composites == {"support", "support.mentoring", "support.therapy"}


def test_parallel_tracks_are_concurrent_regions(mermaid: Parsed) -> None:
    assert mermaid.regions["support"] == [["support.mentoring"], ["support.therapy"]]
    assert mermaid.regions["support.mentoring"] == [
        ["support.mentoring.matching", "support.mentoring.sessions", "support.mentoring.done"]
    ]
    assert mermaid.regions["support.therapy"] == [
        ["support.therapy.intake", "support.therapy.treatment", "support.therapy.done"]
    ]


def test_every_transition_is_an_edge_labelled_with_its_trigger(mermaid: Parsed) -> None:
    [bar] = mermaid.bars
    assert mermaid.edges_without_scope() == {
        (START, "referred", None),
        ("referred", "screening", "accept"),
        ("screening", "closed_no_concern", "screen_out"),
        ("screening", "panel", "refer_to_panel"),
        ("panel", "support", "adopt"),
        (START, "support.mentoring.matching", None),
        ("support.mentoring.matching", "support.mentoring.sessions", "begin_sessions"),
        ("support.mentoring.sessions", "support.mentoring.done", "finish_mentoring"),
        ("support.mentoring.done", START, None),
        (START, "support.therapy.intake", None),
        ("support.therapy.intake", "support.therapy.treatment", "begin_treatment"),
        ("support.therapy.treatment", "support.therapy.done", "finish_therapy"),
        ("support.therapy.done", START, None),
        # The automatic join goes through a join bar of its own.
        ("support", bar, None),
        (bar, "review", None),
        ("review", "closed_completed", "close"),
        ("closed_no_concern", START, None),
        ("closed_completed", START, None),
        ("closed_withdrawn", START, None),
        # from: "*" is one edge from "any open state", not one per state.
        (ANY_LABEL, "closed_withdrawn", "withdraw"),
    }


def test_loops_are_written_on_their_state(mermaid: Parsed) -> None:
    assert "↻ log_session" in mermaid.descriptions["support.mentoring.sessions"]
    assert "↻ confirm_exit_criteria" in mermaid.descriptions["review"]


def test_edges_inside_a_track_are_drawn_inside_it(mermaid: Parsed) -> None:
    scopes = {(a, b): scope for a, b, _, scope in mermaid.edges}
    assert scopes[("support.therapy.intake", "support.therapy.treatment")] == "support.therapy"
    assert scopes[(START, "support.mentoring.matching")] == "support.mentoring"
    assert scopes[("support", next(iter(mermaid.bars)))] is None
    assert scopes[(START, "referred")] is None


def test_timers_are_notes_with_their_ladders(mermaid: Parsed) -> None:
    assert mermaid.notes == {
        "screening": [
            "timer screening_deadline: after 5 business days",
            "remind police",
            "escalate after 2 business days to police_supervisor",
            "escalate after 3 business days to coordinator, chair",
        ],
        "support.mentoring.sessions": [
            "timer mentoring_heartbeat: after 21 days",
            "remind mentor",
            "restart on log_session",
        ],
        "review": ["timer review_due: after 6 months", "fire close"],
    }


def test_owners_are_state_descriptions(mermaid: Parsed) -> None:
    assert mermaid.descriptions["screening"] == ["owner police"]
    assert mermaid.descriptions["support.therapy.intake"] == ["owner therapist"]
    assert "referred" not in mermaid.descriptions


TRICKY = """\
workflow: tricky
version: 1
title: |
  Names that look like Mermaid keywords,
  and a title on two lines, direction LR
timezone: UTC
roles:
  worker: {}
states:
  note: {initial: true}
  default_case: {}
  state: {}
  a__b: {}
  a:
    parallel:
      b:
        initial: end
        states:
          end: {}
          class: {final: true}
      c:
        initial: x
        states:
          x: {final: true}
    join: done
  done: {final: true}
transitions:
  - {trigger: go, from: note, to: default_case, by: [worker]}
  - {trigger: go, from: default_case, to: state, by: [worker]}
  - {trigger: go, from: state, to: a__b, by: [worker]}
  - {trigger: go, from: a__b, to: a, by: [worker]}
  - {trigger: go, from: a.b.end, to: a.b.class, by: [worker]}
"""


def test_ids_stay_valid_and_unique_whatever_the_state_names() -> None:
    defn = load_definition(TRICKY, "tricky.yaml")
    ids = mermaid_ids(defn)
    assert len(set(ids.values())) == len(ids)
    assert ids["a.b"] != ids["a__b"]
    text = to_mermaid(defn)
    assert "\n    %% tricky v1: Names that look like Mermaid keywords, and a title on two" in text
    assert not re.search(r"direction\s+LR", text)  # Mermaid would read it as a directive
    parsed = parse_mermaid(text)
    assert set(parsed.paths.values()) == set(defn.states)
    assert ("a.b.end", "a.b.class", "go") in parsed.edges_without_scope()
    [bar] = parsed.bars
    assert {("a", bar, None), (bar, "done", None)} <= parsed.edges_without_scope()
    assert parsed.regions["a"] == [["a.b"], ["a.c"]]


def test_dot_has_clusters_labelled_edges_and_timer_notes(example: Definition) -> None:
    dot = to_dot(example)
    assert dot.startswith('digraph "community_panel v1" {')
    assert dot.rstrip().endswith("}")
    assert dot.count("{") == dot.count("}")
    for path in STATES - {"support", "support.mentoring", "support.therapy"}:
        assert f'"{path}" [label=' in dot
    for cluster in ("support", "support.mentoring", "support.therapy"):
        assert f'subgraph "cluster_{cluster}" {{' in dot
    for t in example.transitions:
        assert f'[label="{t.trigger}"' in dot
    assert 'ltail="cluster_support", lhead="cluster_review"' not in dot
    assert '"support.mentoring.matching" -> "review" [label="join", ltail="cluster_support"' in dot
    # from: "*": one edge from one node.
    assert dot.count('[label="withdraw"') == 1
    assert '"[any]" -> "closed_withdrawn" [label="withdraw"]' in dot
    for timer in example.timers:
        assert f'"timer:{timer.name}" [shape=note' in dot
    assert "escalate after 3 business days to coordinator, chair\\l" in dot


# -- the command line ---------------------------------------------------------------------

runner = CliRunner()


def test_cli_prints_mermaid_by_default_and_dot_on_request(example: Definition) -> None:
    result = runner.invoke(app, ["diagram", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert result.stdout == to_mermaid(example)
    result = runner.invoke(app, ["diagram", str(EXAMPLE), "--format", "dot"])
    assert result.exit_code == 0, result.output
    assert result.stdout == to_dot(example)


def test_cli_reports_the_loader_problems_of_an_invalid_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("to: closed_completed", "to: closed_complete"))
    result = runner.invoke(app, ["diagram", str(bad)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert re.search(rf"^{re.escape(str(bad))}:\d+:\d+: error: ", result.stderr, re.M)
    assert "Traceback" not in result.output


def test_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    assert runner.invoke(app, ["diagram"]).exit_code == 2
    assert runner.invoke(app, ["diagram", str(tmp_path / "missing.yaml")]).exit_code == 2
    assert runner.invoke(app, ["diagram", str(tmp_path)]).exit_code == 2
    assert runner.invoke(app, ["diagram", str(EXAMPLE), "--format", "png"]).exit_code == 2


def test_cli_refuses_an_undecodable_file(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00workflow")
    result = runner.invoke(app, ["diagram", str(binary)])
    assert result.exit_code == 1
    # The same located message as `referral validate` gives.
    assert result.stderr.startswith(f"{binary}:1:1: error: the file is not UTF-8 text")
