"""Outcomes in the language: ``set:`` constants, ``outcome_field`` and the load-time check
that no way of closing a case leaves the outcome unset; notices and repeating reminders
as the loader checks them."""

from __future__ import annotations

from pathlib import Path

import pytest
from defcases import BASE, problems_of, variant

from engine.definitions.loader import load_definition, load_path

WORKFLOWS = sorted((Path(__file__).parents[2] / "workflows").glob("*.yaml"))

OUTCOME = variant(
    ("  notes: {type: text}\n", "  notes: {type: text}\n"
     "  outcome: {type: enum, values: [open, no_concern, withdrawn], default: open}\n"),
    ("roles:\n", "outcome_field: outcome\nroles:\n"),
)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_every_shipped_workflow_names_its_outcome_and_sets_it_on_every_close(
    path: Path,
) -> None:
    defn = load_path(path)
    assert defn.outcome_field == "outcome"
    for state in defn.top_level():
        if state.final:
            assert dict(state.sets).get("outcome") not in (None, "open"), state.path


def test_a_close_without_the_outcome_is_reported_with_the_way_there() -> None:
    problems = problems_of(OUTCOME)
    assert len(problems) == 1, [p.format() for p in problems]
    problem = problems[0]
    assert problem.line == OUTCOME.splitlines().index("  closed: {final: true}") + 1
    assert "final state 'closed'" in problem.message
    assert "close from screening" in problem.message
    assert problem.hint is not None and "set: {outcome: ...}" in problem.hint


def test_a_set_on_the_transition_or_on_the_final_state_satisfies_the_check() -> None:
    on_transition = variant(("by: [chair]}", "by: [chair], set: {outcome: no_concern}}"),
                            base=OUTCOME)
    assert dict(load_definition(on_transition).transitions[1].sets) == {
        "outcome": "no_concern"}
    on_state = variant(("closed: {final: true}", "closed: {final: true, set: {outcome: "
                        "no_concern}}"), base=OUTCOME)
    assert dict(load_definition(on_state).states["closed"].sets) == {"outcome": "no_concern"}


def test_one_closing_path_that_sets_it_does_not_hide_another_that_does_not() -> None:
    text = variant(
        ("by: [chair]}", "by: [chair], set: {outcome: no_concern}}"),
        append="  - {trigger: withdraw, from: new, to: closed, by: [chair]}\n", base=OUTCOME,
    )
    [problem] = problems_of(text)
    assert "withdraw from new" in problem.message
    assert "close from screening" not in problem.message


def test_an_outcome_set_before_the_close_counts() -> None:
    text = variant(("to: screening, by: [police]}",
                    "to: screening, by: [police], set: {outcome: no_concern}}"), base=OUTCOME)
    load_definition(text)


def test_set_constants_are_checked_against_the_field_types() -> None:
    text = variant(("by: [chair]}", "by: [chair], set: {outcome: nope, risk: low, "
                    "notes: 3, nothing: x}}"), base=OUTCOME)
    messages = [p.message for p in problems_of(text)]
    assert any("field 'outcome': expected one of open, no_concern, withdrawn" in m
               for m in messages)
    assert any("field 'notes': expected a string" in m for m in messages)
    assert any("unknown field 'nothing'" in m for m in messages)
    assert not any("'risk'" in m for m in messages)


def test_unknown_outcome_field_and_referrer_role_are_named() -> None:
    text = variant(("roles:\n", "outcome_field: outcom\nreferrer_role: polic\nroles:\n"))
    messages = sorted(p.message for p in problems_of(text))
    assert messages == ["unknown field 'outcom'", "unknown role 'polic'"]


def test_notices_name_declared_roles_and_one_line_of_words() -> None:
    text = variant(("screening: {owner: police}", "screening: {owner: police, notify: "
                    "{to: [polise, system], subject: '', text: Waiting for you.}}"))
    messages = [p.message for p in problems_of(text)]
    assert messages.count("unknown role 'polise'") == 1
    assert messages.count("unknown role 'system'") == 1
    assert any("a notice's subject must be one line" in m for m in messages)


def test_notices_on_states_and_transitions_are_loaded() -> None:
    text = variant(
        ("screening: {owner: police}", "screening: {owner: police, notify: {to: police, "
         "subject: New work, text: A case waits for screening.}}"),
        ("by: [chair]}", "by: [chair], notify: [{to: [police, chair], subject: Closed, "
         "text: The case is closed.}]}"),
    )
    defn = load_definition(text)
    [entry] = defn.states["screening"].notices
    assert (entry.to, entry.subject, entry.text) == (
        ("police",), "New work", "A case waits for screening.")
    assert defn.transitions[1].notices[0].to == ("police", "chair")


def test_every_repeats_only_a_reminder() -> None:
    timer = ("timers:\n  - {name: t, in: screening, after: 2 days, every: 5 business days, "
             "at_most: 3, %s}\n")
    defn = load_definition(BASE + timer % "remind: [police]")
    assert defn.timers[0].every is not None and defn.timers[0].every.business_days == 5
    assert defn.timers[0].at_most == 3
    [problem] = problems_of(BASE + timer % "fire: close")
    assert "'every' repeats a reminder" in problem.message
    capped = "timers:\n  - {name: t, in: screening, after: 2 days, remind: police, at_most: %s}\n"
    assert any("positive" in p.message for p in problems_of(BASE + capped % 0))
    [problem] = problems_of(BASE + capped % 2)
    assert "'at_most' caps a repeating reminder" in problem.message


def test_the_diagram_shows_a_repeating_reminder_and_its_cap() -> None:
    from engine.definitions.diagram import to_mermaid

    timer = ("timers:\n  - {name: t, in: screening, after: 2 days, remind: [police], "
             "every: 5 business days, at_most: 3}\n")
    text = to_mermaid(load_definition(BASE + timer))
    assert "remind police" in text
    assert "again every 5 business days, 3 in all" in text
