"""Diagrams: the Mermaid output is parsed back and checked state by state, edge by edge."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.definitions.diagram import mermaid_ids, to_dot, to_mermaid
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
    edges: set[tuple[str, str, str | None, str | None]] = field(default_factory=set)
    notes: dict[str, list[str]] = field(default_factory=dict)
    descriptions: dict[str, list[str]] = field(default_factory=dict)

    def edges_without_scope(self) -> set[tuple[str, str, str | None]]:
        return {(a, b, label) for a, b, label, _ in self.edges}


def parse_mermaid(text: str) -> Parsed:
    """A small line parser for the subset of ``stateDiagram-v2`` the engine writes.

    A state's path is rebuilt from the labels of the composites around it, so the check
    does not depend on how ids are spelled. Any line it does not understand fails the test.
    """
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    parsed = Parsed()
    raw_edges: list[tuple[str, str, str | None, str | None]] = []
    raw_notes: list[tuple[str, list[str]]] = []
    raw_descriptions: list[tuple[str, str]] = []
    stack = [Frame(None)]
    note: tuple[str, list[str]] | None = None

    def declare(label: str, sid: str) -> str:
        assert MERMAID_ID.match(sid), f"invalid Mermaid id {sid!r}"
        assert sid not in parsed.paths, f"id {sid!r} declared twice"
        parent = stack[-1].path
        path = f"{parent}.{label}" if parent else label
        parsed.paths[sid] = path
        stack[-1].regions[-1].append(path)
        return path

    for number, line in enumerate(lines[1:], start=2):
        s = line.strip()
        if note is not None:
            if s == "end note":
                raw_notes.append(note)
                note = None
            else:
                note[1].append(s)
            continue
        if not s or s.startswith("%%"):
            continue
        if m := re.fullmatch(r'state "([^"]+)" as (\S+) \{', s):
            path = declare(m[1], m[2])
            parsed.composites.add(path)
            stack.append(Frame(path))
        elif m := re.fullmatch(r'state "([^"]+)" as (\S+)', s):
            declare(m[1], m[2])
        elif s == "}":
            frame = stack.pop()
            assert frame.path is not None, f"line {number}: unbalanced '}}'"
            parsed.regions[frame.path] = frame.regions
        elif s == "--":
            stack[-1].regions.append([])
        elif m := re.fullmatch(r"(\S+) --> (\S+)(?: : ([^:;]+))?", s):
            raw_edges.append((m[1], m[2], m[3], stack[-1].path))
        elif m := re.fullmatch(r"note right of (\S+)", s):
            note = (m[1], [])
        elif m := re.fullmatch(r"(\w+) : ([^:;]+)", s):
            raw_descriptions.append((m[1], m[2]))
        else:
            pytest.fail(f"line {number}: not understood: {line!r}")
    assert len(stack) == 1, "unclosed composite state"
    assert note is None, "unclosed note"

    def resolve(sid: str) -> str:
        if sid == START:
            return START
        assert sid in parsed.paths, f"edge to undeclared state {sid!r}"
        return parsed.paths[sid]

    parsed.edges = {(resolve(a), resolve(b), label, scope) for a, b, label, scope in raw_edges}
    for sid, texts in raw_notes:
        parsed.notes.setdefault(resolve(sid), []).extend(texts)
    for sid, description in raw_descriptions:
        parsed.descriptions.setdefault(resolve(sid), []).append(description)
    return parsed


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
    assert set(mermaid.paths.values()) == STATES
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
    withdraw = {
        (s, "closed_withdrawn", "withdraw")
        for s in ("referred", "screening", "panel", "support", "review")
    }
    assert mermaid.edges_without_scope() == {
        (START, "referred", None),
        ("referred", "screening", "accept"),
        ("screening", "closed_no_concern", "screen_out"),
        ("screening", "panel", "refer_to_panel"),
        ("panel", "support", "adopt"),
        (START, "support.mentoring.matching", None),
        ("support.mentoring.matching", "support.mentoring.sessions", "begin_sessions"),
        ("support.mentoring.sessions", "support.mentoring.sessions", "log_session"),
        ("support.mentoring.sessions", "support.mentoring.done", "finish_mentoring"),
        ("support.mentoring.done", START, None),
        (START, "support.therapy.intake", None),
        ("support.therapy.intake", "support.therapy.treatment", "begin_treatment"),
        ("support.therapy.treatment", "support.therapy.done", "finish_therapy"),
        ("support.therapy.done", START, None),
        ("support", "review", "join"),
        ("review", "review", "confirm_exit_criteria"),
        ("review", "closed_completed", "close"),
        ("closed_no_concern", START, None),
        ("closed_completed", START, None),
        ("closed_withdrawn", START, None),
        *withdraw,
    }


def test_edges_inside_a_track_are_drawn_inside_it(mermaid: Parsed) -> None:
    scopes = {(a, b): scope for a, b, _, scope in mermaid.edges}
    assert scopes[("support.therapy.intake", "support.therapy.treatment")] == "support.therapy"
    assert scopes[(START, "support.mentoring.matching")] == "support.mentoring"
    assert scopes[("support", "review")] is None
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
    assert ("a", "done", "join") in parsed.edges_without_scope()
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
