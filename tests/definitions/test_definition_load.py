"""Valid definitions load into the right frozen Definition."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path

import pytest
from conftest import IN_CI
from defcases import BASE, CONTRACT_EXAMPLE, FIXTURES, variant

from engine.definitions.loader import load_definition, load_path
from engine.definitions.model import Definition, Duration, Mark
from engine.errors import DefinitionError

# CI lays shared/ beside the clone (../shared from the repository root).
CONTRACT_PAGE = Path(__file__).resolve().parents[3] / "shared" / "definition-language.md"


@pytest.fixture(scope="module")
def example() -> Definition:
    return load_path(FIXTURES / "contract_example.yaml")


def test_header_calendar_roles(example: Definition) -> None:
    assert example.key == ("community_panel", 1)
    assert example.title == "Community referral to a multi-agency panel"
    assert example.timezone == "Europe/London"
    assert example.calendar.country == "GB"
    assert example.calendar.subdivision == "ENG"
    assert example.calendar.workdays == frozenset({0, 1, 2, 3, 4})
    assert example.calendar.extra_holidays == frozenset({date(2026, 12, 24)})
    assert example.roles == ("referrer", "police", "police_supervisor", "coordinator", "chair",
                             "mentor", "therapist")
    assert example.content_hash == hashlib.sha256(CONTRACT_EXAMPLE.encode()).hexdigest()
    assert example.source == CONTRACT_EXAMPLE
    assert example.source_path.endswith("contract_example.yaml")


def test_states_kinds_and_tree(example: Definition) -> None:
    kinds = {path: s.kind for path, s in example.states.items()}
    assert kinds == {
        "referred": "atomic", "screening": "atomic", "panel": "atomic", "support": "parallel",
        "support.mentoring": "track", "support.mentoring.matching": "atomic",
        "support.mentoring.sessions": "atomic", "support.mentoring.done": "atomic",
        "support.therapy": "track", "support.therapy.intake": "atomic",
        "support.therapy.treatment": "atomic", "support.therapy.done": "atomic",
        "review": "atomic", "closed_no_concern": "atomic", "closed_completed": "atomic",
        "closed_withdrawn": "atomic",
    }
    assert example.initial_state == "referred"
    support = example.states["support"]
    assert support.join == "review"
    assert support.children == ("support.mentoring", "support.therapy")
    therapy = example.states["support.therapy"]
    assert therapy.parent == "support"
    assert therapy.initial_child == "support.therapy.intake"
    assert therapy.children == ("support.therapy.intake", "support.therapy.treatment",
                                "support.therapy.done")
    intake = example.states["support.therapy.intake"]
    assert (intake.parent, intake.name, intake.owner) == ("support.therapy", "intake",
                                                           "therapist")
    assert example.states["support.mentoring.done"].final
    finals = {p for p, s in example.states.items() if s.final}
    assert finals == {"support.mentoring.done", "support.therapy.done", "closed_no_concern",
                      "closed_completed", "closed_withdrawn"}
    assert [s.path for s in example.top_level()] == [
        "referred", "screening", "panel", "support", "review", "closed_no_concern",
        "closed_completed", "closed_withdrawn"]
    line = CONTRACT_EXAMPLE.splitlines().index("  screening: {owner: police}") + 1
    assert example.states["screening"].mark == Mark(line, 3)


def test_transitions_and_expanded_sources(example: Definition) -> None:
    by_trigger = {t.trigger: t for t in example.transitions}
    assert [t.index for t in example.transitions] == list(range(len(example.transitions)))
    withdraw = by_trigger["withdraw"]
    # "*": every non-final top-level state, a parallel state as a whole.
    assert withdraw.sources == ("referred", "screening", "panel", "support", "review")
    assert withdraw.dest == "closed_withdrawn"
    assert withdraw.by == frozenset({"coordinator"})
    assert by_trigger["accept"].by == frozenset({"coordinator", "police"})
    assert by_trigger["screen_out"].requires == ("screening_rationale",)
    assert by_trigger["close"].needs == ("exit_criteria_met",)
    assert by_trigger["adopt"].when == 'risk_level != "low" && consent'
    assert by_trigger["begin_sessions"].sources == ("support.mentoring.matching",)
    assert by_trigger["confirm_exit_criteria"].internal
    assert not by_trigger["close"].internal


def test_fields_and_visibility(example: Definition) -> None:
    risk = example.fields["risk_level"]
    assert (risk.type, risk.values, risk.default) == ("enum", ("low", "moderate", "high"), None)
    assert example.fields["consent"].default is False
    assert example.fields["therapy_notes"].visible_to == frozenset({"therapist"})
    assert example.fields["screening_rationale"].visible_to is None
    assert example.field_visible("therapy_notes", {"therapist"})
    assert not example.field_visible("therapy_notes", {"coordinator"})


def test_timers_and_durations(example: Definition) -> None:
    timers = {t.name: t for t in example.timers}
    deadline = timers["screening_deadline"]
    assert deadline.state == "screening"
    assert deadline.after == Duration(business_days=5, text="5 business days")
    assert deadline.remind == ("police",)
    assert [(s.after.business_days, s.notify) for s in deadline.escalate] == [
        (2, ("police_supervisor",)), (3, ("coordinator", "chair"))]
    heartbeat = timers["mentoring_heartbeat"]
    assert heartbeat.state == "support.mentoring.sessions"
    assert heartbeat.after.days == 21
    assert heartbeat.restart_on == frozenset({"log_session"})
    review = timers["review_due"]
    assert (review.after.months, review.fire, review.remind) == (6, "close", ())


def test_milestones(example: Definition) -> None:
    assert example.milestones["plan_agreed"].on_enter == "support"
    assert example.milestones["plan_agreed"].on == frozenset()
    assert example.milestones["therapy_engaged"].on == frozenset({"begin_treatment"})
    assert example.milestones["exit_criteria_met"].on == frozenset({"confirm_exit_criteria"})


def test_guards_are_compiled_and_evaluate(example: Definition) -> None:
    guard = example.guards['risk_level != "low" && consent']
    assert guard.evaluate({"risk_level": "high", "consent": True})
    assert not guard.evaluate({"risk_level": "low", "consent": True})
    assert not guard.evaluate({"risk_level": "moderate", "consent": False})
    # Missing fields take their default (consent: false) or zero value (risk_level: "").
    assert not guard.evaluate({"risk_level": "high"})
    assert guard.evaluate({"consent": True})
    assert list(example.guards) == ['risk_level != "low" && consent']


def test_the_verbatim_contract_example_loads() -> None:
    """The contract page's printed example is a valid definition as it stands."""
    if not CONTRACT_PAGE.exists():
        if IN_CI:
            pytest.fail(f"the shared contract page is missing in CI: {CONTRACT_PAGE}")
        pytest.skip("the shared contract page is not available (outside the workspace)")
    text = re.search(r"```yaml\n(.*?)```", CONTRACT_PAGE.read_text(encoding="utf-8"), re.S)
    assert text is not None
    defn = load_definition(text.group(1), path="definition-language.md")
    assert defn.workflow == "community_panel"
    assert "panel" in defn.states


def test_yaml_11_booleans_stay_names() -> None:
    text = variant(
        ("  chair: {}\n", "  chair: {}\n  on: {}\n  no: {}\n"),
        ("  closed: {final: true}\n", "  closed: {final: true}\n  off: {final: true}\n"),
        ("{type: text}", "{type: enum, values: [yes, no, y, n, on, off]}"),
    ) + "  - {trigger: switch_off, from: screening, to: off, by: [on, no]}\n"
    defn = load_definition(text)
    assert "on" in defn.roles and "no" in defn.roles
    assert defn.states["off"].final
    assert defn.fields["notes"].values == ("yes", "no", "y", "n", "on", "off")
    assert defn.transitions[-1].by == frozenset({"on", "no"})


def test_optional_sections_and_defaults() -> None:
    text = variant(
        ("  police: {}\n", "  police:\n"),
        ("  screening: {owner: police}\n", "  screening:\n"),
        ("  - {trigger: accept, from: new, to: screening, by: [police]}",
         "  - {trigger: accept, from: [new], to: screening, by: police}"),
    )
    defn = load_definition(text)
    assert defn.calendar.workdays == frozenset(range(5)) and defn.calendar.country is None
    assert defn.timers == () and dict(defn.milestones) == {}
    assert defn.transitions[0].by == frozenset({"police"})
    assert defn.states["screening"].owner is None


def test_typed_defaults_are_json_ready() -> None:
    text = variant(("  notes: {type: text}\n", """\
  notes: {type: text, default: none yet}
  count: {type: int, default: 3}
  since: {type: date, default: 2026-01-31}
  at: {type: datetime, default: "2026-01-31T09:00:00Z"}
  tags: {type: list, default: [a, b]}
"""))
    fields = load_definition(text).fields
    assert [fields[n].default for n in ("notes", "count", "since", "at", "tags")] == [
        "none yet", 3, "2026-01-31", "2026-01-31T09:00:00Z", ("a", "b")]


def test_same_trigger_with_when_or_other_sources_is_not_ambiguous() -> None:
    text = BASE + (
        "  - {trigger: escalate, from: screening, to: closed, by: [chair], "
        "when: 'risk == \"high\"'}\n"
        "  - {trigger: escalate, from: screening, to: new, by: [chair]}\n"
        "  - {trigger: accept, from: screening, to: new, by: [police]}\n"
    )
    defn = load_definition(text)
    assert [t.trigger for t in defn.transitions].count("escalate") == 2


def test_load_path_reports_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError) as info:
        load_path(tmp_path / "missing.yaml")
    assert info.value.problems[0].message.startswith("cannot read the file")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DefinitionError) as info:
        load_path(binary)
    assert "not UTF-8" in info.value.problems[0].message
    assert info.value.problems[0].path == str(binary)


def test_shipped_workflows_load() -> None:
    shipped = sorted((Path(__file__).parents[2] / "workflows").glob("*.yaml"))
    assert shipped
    for path in shipped:
        assert load_path(path).version >= 1
