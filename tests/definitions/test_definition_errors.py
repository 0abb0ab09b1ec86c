"""Invalid definitions, one mistake each (plus a few with several): exact line and column."""

from __future__ import annotations

import pytest
from defcases import BASE, Case, Expect, assert_problems, problems_of, variant

from engine.definitions.loader import load_definition

TIMERS = """\
timers:
  - name: nudge
    in: screening
    after: 5 business days
    remind: [police]
"""
PARALLEL = """\
  support:
    parallel:
      left:
        initial: a
        states:
          a: {}
          done: {final: true}
      right:
        initial: b
        states:
          b: {}
          done: {final: true}
    join: closed
"""
# BASE with `support` (lines 14-26) between `screening` and `closed`, entered from screening.
WITH_PARALLEL = variant(
    ("  closed: {final: true}\n", PARALLEL + "  closed: {final: true}\n"),
    ("  - {trigger: close, from: screening, to: closed, by: [chair]}\n",
     "  - {trigger: close, from: screening, to: closed, by: [chair]}\n"
     "  - {trigger: adopt, from: screening, to: support, by: [chair]}\n"
     "  - {trigger: step_a, from: support.left.a, to: support.left.done, by: [chair]}\n"
     "  - {trigger: step_b, from: support.right.b, to: support.right.done, by: [chair]}\n"),
)

CASES = [
    # -- YAML ----------------------------------------------------------------------------
    Case("empty file", "", [Expect(1, "", r"the file is empty")]),
    Case("comment only", "# nothing\n", [Expect(1, "#", r"the file is empty")]),
    Case("two documents", BASE + "---\nworkflow: other\n",
         [Expect(18, "---", r"exactly one YAML document")]),
    Case("syntax error", variant(("  police: {}\n", "  police: {\n")),
         [Expect(8, "fields", r"YAML syntax error: expected ',' or '}'")]),
    Case("bad indentation", variant(("  chair: {}\n", " chair: {}\n")),
         [Expect(7, "chair", r"YAML syntax error")]),
    Case("top level is a list", "- workflow: demo\n",
         [Expect(1, "-", r"expected a mapping at the top level .*got a list")]),
    Case("duplicate key", variant(("  chair: {}\n", "  chair: {}\n  police: {}\n")),
         [Expect(8, "police", r"duplicate key 'police' \(first defined at line 6, column 3\)")]),
    Case("duplicate state", variant(("  closed: {final: true}\n",
                                     "  closed: {final: true}\n  new: {}\n")),
         [Expect(15, "new", r"duplicate key 'new' \(first defined at line 12")]),
    # -- schema --------------------------------------------------------------------------
    Case("unknown top-level key", BASE + "owner: police\n",
         [Expect(18, "owner", r"^unknown key 'owner'$")]),
    Case("misspelt state key", variant(("{owner: police}", "{ownr: police}")),
         [Expect(13, "ownr", r"unknown key 'ownr' in states\.screening", r"'owner'")]),
    Case("missing required key", variant(("from: screening, to: closed, ", "from: screening, ")),
         [Expect(17, "{", r"^transitions\[1\]: missing required key 'to'$")]),
    Case("missing top-level key", variant(("timezone: Europe/London\n", "")),
         [Expect(1, "workflow", r"^missing required key 'timezone'$")]),
    Case("version not an integer", variant(("version: 1", "version: one")),
         [Expect(2, "one", r"version: expected an integer, got string 'one'")]),
    Case("version zero", variant(("version: 1", "version: 0")),
         [Expect(2, "0", r"version: must be a positive integer")]),
    Case("version too large to store", variant(("version: 1", "version: 2147483648")),
         [Expect(2, "2147483648", r"version: must be at most 2147483647, got 2147483648")]),
    Case("yes is not a boolean", variant(("{initial: true}", "{initial: yes}")),
         [Expect(12, "yes", r"states\.new\.initial: expected true or false, got string 'yes'")]),
    Case("by is not a list", variant(("by: [chair]", "by: {chair: 1}")),
         [Expect(17, "{chair", r"transitions\[1\]\.by: expected a list, got a mapping")]),
    Case("unknown field type", variant(("{type: text}", "{type: txt}")),
         [Expect(10, "txt", r"fields\.notes\.type: expected one of .*'text'", r"'text'")]),
    Case("bad duration", BASE + TIMERS.replace("5 business days", "5 bizness days"),
         [Expect(21, "5 bizness", r"timers\[0\]\.after: not a duration: '5 bizness days'")]),
    Case("zero duration", BASE + TIMERS.replace("5 business days", "P0D"),
         [Expect(21, "P0D", r"a duration must be positive")]),
    Case("duration as a number", BASE + TIMERS.replace("5 business days", "5"),
         [Expect(21, "5", r"expected a duration such as .* got integer 5")]),
    Case("when is not a string", variant(("by: [chair]}", "by: [chair], when: true}")),
         [Expect(17, "true", r"when: expected a string, got boolean true")]),
    # -- names and references --------------------------------------------------------------
    Case("unknown source state", variant(("from: screening", "from: screning")),
         [Expect(17, "screning", r"^unknown state 'screning'$", r"did you mean 'screening'\?")]),
    Case("unknown target state", variant(("to: closed", "to: clsoed")),
         [Expect(17, "clsoed", r"^unknown state 'clsoed'$", r"'closed'")]),
    Case("unknown role in by", variant(("by: [chair]", "by: [chiar]")),
         [Expect(17, "chiar", r"^unknown role 'chiar'$", r"did you mean 'chair'\?")]),
    Case("system in by", variant(("by: [chair]", "by: [system]")),
         [Expect(17, "system", r"'system' is reserved")]),
    Case("system declared as a role", variant(("  chair: {}\n", "  chair: {}\n  system: {}\n")),
         [Expect(8, "system", r"'system' is reserved .* cannot be declared as a role")]),
    Case("unknown owner", variant(("{owner: police}", "{owner: polise}")),
         [Expect(13, "polise", r"unknown role 'polise'", r"'police'")]),
    Case("unknown required field", variant(("by: [chair]}", "by: [chair], requires: [note]}")),
         [Expect(17, "note]", r"^unknown field 'note'$", r"'notes'")]),
    Case("unknown milestone in needs", variant(("by: [chair]}", "by: [chair], needs: [agreed]}")),
         [Expect(17, "agreed", r"^unknown milestone 'agreed'$")]),
    Case("unknown role in visible_to",
         variant(("{type: text}", "{type: text, visible_to: [therapist]}")),
         [Expect(10, "therapist", r"unknown role 'therapist'")]),
    Case("state name not an identifier", variant(("  screening: {owner", "  Screening: {owner"),
                                                 ("to: screening", "to: Screening"),
                                                 ("from: screening", "from: Screening")),
         [Expect(13, "Screening", r"state name 'Screening' is not a valid identifier")]),
    Case("name with a trailing newline", variant(("  chair: {}\n", '  "chair\\n": {}\n')),
         [Expect(7, '"chair', r"role name 'chair\\n' is not a valid identifier"),
          Expect(17, "chair]", r"unknown role 'chair'$")]),
    Case("very long workflow name", variant(("workflow: demo", "workflow: " + "a" * 500)),
         [Expect(1, "aaa", r"workflow name '" + "a" * 37 + r"\.\.\.' is not a valid identifier$")]),
    Case("workflow name not an identifier", variant(("workflow: demo", "workflow: Demo Flow")),
         [Expect(1, "Demo", r"workflow name 'Demo Flow' is not a valid identifier")]),
    Case("field named like a CEL keyword", variant(("  notes: {type", "  in: {type")),
         [Expect(10, "in", r"reserved word in CEL")]),
    Case("nested state named by its short name", variant(
        ("from: support.left.a,", "from: a,"), base=WITH_PARALLEL),
         [Expect(32, "a, to", r"unknown state 'a'", r"did you mean 'support\.left\.a'\?")]),
    # -- states and graph -------------------------------------------------------------------
    Case("two initial states", variant(("{owner: police}", "{owner: police, initial: true}")),
         [Expect(13, "initial", r"more than one initial state: 'new' and 'screening'")]),
    Case("no initial state", variant(("{initial: true}", "{}")),
         [Expect(11, "states", r"no initial state")]),
    Case("unreachable state", variant(("  closed: {final", "  limbo: {}\n  closed: {final"),
                                      ("to: closed, by: [chair]}",
                                       "to: closed, by: [chair]}\n"
                                       "  - {trigger: back, from: limbo, to: new, by: [chair]}")),
         [Expect(14, "limbo", r"state 'limbo' is unreachable")]),
    Case("no path to a final state", variant(
        ("  closed: {final", "  limbo: {}\n  closed: {final"),
        ("to: closed, by: [chair]}",
         "to: closed, by: [chair]}\n  - {trigger: park, from: screening, to: limbo, by: [chair]}")),
         [Expect(14, "limbo", r"state 'limbo' has no path to a final state")]),
    Case("no final state at all", variant(("{final: true}", "{}")),
         [Expect(11, "states", r"no final state")]),
    Case("final state with outgoing transition", BASE +
         "  - {trigger: reopen, from: closed, to: new, by: [chair]}\n",
         [Expect(18, "closed", r"final state 'closed' cannot have outgoing transitions")]),
    Case("parallel without join or exit", variant(("    join: closed\n", ""),
                                                  base=WITH_PARALLEL),
         [Expect(14, "support", r"parallel state 'support' has neither `join` nor a "
                                r"transition out of it")]),
    Case("join names an unknown state", variant(("    join: closed\n", "    join: closd\n"),
                                                base=WITH_PARALLEL),
         [Expect(26, "closd", r"unknown state 'closd'", r"'closed'")]),
    Case("track initial unknown", variant(("        initial: b\n", "        initial: c\n"),
                                          base=WITH_PARALLEL),
         [Expect(22, "c", r"unknown state 'c' in track 'support\.right'")]),
    Case("track without a final state and a join", variant(
        ("          done: {final: true}\n    join", "          done: {}\n    join"),
        base=WITH_PARALLEL),
         [Expect(21, "right", r"track 'support\.right' has no final state")]),
    Case("transition across tracks", variant(
        ("to: support.right.done", "to: support.left.done"), base=WITH_PARALLEL),
         [Expect(33, "support.left.done", r"leaves its track 'support\.right'",
                 r"from: support")]),
    Case("transition into a track from outside", variant(
        ("to: support, by", "to: support.left.a, by"), base=WITH_PARALLEL),
         [Expect(31, "support.left.a", r"enters 'support\.left\.a' inside track")]),
    Case("transition to a track", variant(
        ("to: support, by", "to: support.left, by"), base=WITH_PARALLEL),
         [Expect(31, "support.left", r"'support\.left' is a track of parallel state")]),
    Case("ambiguous trigger", BASE +
         "  - {trigger: close, from: screening, to: new, by: [chair]}\n",
         [Expect(18, "close", r"ambiguous trigger 'close'.*line 17.*no `when`")]),
    # -- guards -----------------------------------------------------------------------------
    Case("invalid CEL", variant(("by: [chair]}", "by: [chair], when: 'risk == '}")),
         [Expect(17, "'risk", r"invalid CEL in `when`: syntax error at column")]),
    Case("CEL names an undeclared field",
         variant(("by: [chair]}", "by: [chair], when: 'rsik == \"high\"'}")),
         [Expect(17, "'rsik", r"undeclared field 'rsik'", r"did you mean 'risk'\?")]),
    Case("CEL is not boolean", variant(("by: [chair]}", "by: [chair], when: 'risk'}")),
         [Expect(17, "'risk'", r"must give true or false, but gives a string")]),
    Case("CEL type mismatch", variant(("by: [chair]}", "by: [chair], when: 'risk > 3'}")),
         [Expect(17, "'risk", r"does not fit the declared field types")]),
    # -- fields -----------------------------------------------------------------------------
    Case("enum without values", variant(("{type: enum, values: [low, high]}", "{type: enum}")),
         [Expect(9, "risk", r"enum field 'risk' needs a non-empty `values` list")]),
    Case("a broken field does not make its guard fail too",
         variant(("{type: enum, values: [low, high]}", "{type: enum}"),
                 ("by: [chair]}", "by: [chair], when: 'risk == \"high\"'}")),
         [Expect(9, "risk", r"enum field 'risk' needs a non-empty `values` list")]),
    Case("default of the wrong type", variant(("{type: text}", "{type: text, default: 3}")),
         [Expect(10, "3", r"default of text field 'notes': expected a string, got integer 3")]),
    Case("default not among enum values",
         variant(("values: [low, high]}", "values: [low, high], default: hihg}")),
         [Expect(9, "hihg", r"'hihg' is not one of its values", r"'high'")]),
    Case("values on a non-enum field", variant(("{type: text}", "{type: text, values: [a]}")),
         [Expect(10, "values", r"`values` is only for enum fields")]),
    # -- calendar ---------------------------------------------------------------------------
    Case("unknown time zone", variant(("Europe/London", "Europe/Londn")),
         [Expect(4, "Europe", r"unknown time zone 'Europe/Londn'", r"'Europe/London'")]),
    Case("unknown country", BASE + "calendar: {country: XX}\n",
         [Expect(18, "XX", r"unknown country 'XX'")]),
    Case("unknown subdivision", BASE + "calendar: {country: GB, subdivision: ENH}\n",
         [Expect(18, "ENH", r"unknown subdivision 'ENH' of GB", r"'ENG'")]),
    Case("no workdays", BASE + "calendar: {workdays: []}\n",
         [Expect(18, "[]", r"`workdays` must name at least one day")]),
    Case("bad holiday date", BASE + "calendar: {extra_holidays: [2026-13-01]}\n",
         [Expect(18, "2026", r"expected a date written YYYY-MM-DD")]),
    # -- timers and milestones ---------------------------------------------------------------
    Case("timer with remind and fire", BASE + TIMERS + "    fire: close\n",
         [Expect(23, "fire", r"timer 'nudge' has both `remind` and `fire`")]),
    Case("timer that does nothing", BASE + TIMERS.replace("    remind: [police]\n", ""),
         [Expect(19, "name", r"timer 'nudge' does nothing")]),
    Case("timer in an unknown state", BASE + TIMERS.replace("in: screening", "in: screen"),
         [Expect(20, "screen", r"unknown state 'screen'", r"'screening'")]),
    Case("timer fires an unknown trigger",
         BASE + TIMERS.replace("    remind: [police]\n", "    fire: clsoe\n"),
         [Expect(22, "clsoe", r"unknown trigger 'clsoe'", r"'close'")]),
    Case("timer fires a trigger that cannot fire in its state",
         BASE + TIMERS.replace("    remind: [police]\n", "    fire: accept\n"),
         [Expect(22, "accept", r"fires 'accept', but no 'accept' transition can fire in "
                               r"'screening'")]),
    Case("timer restarts on an unknown trigger", BASE + TIMERS + "    restart_on: [ping]\n",
         [Expect(23, "ping", r"unknown trigger 'ping'")]),
    Case("duplicate timer names", BASE + TIMERS + TIMERS.replace("timers:\n", ""),
         [Expect(23, "nudge", r"duplicate timer name 'nudge' \(first at line 19\)")]),
    Case("escalation to an unknown role", BASE + TIMERS +
         "    escalate:\n      - {after: 2 days, notify: [boss]}\n",
         [Expect(24, "boss", r"unknown role 'boss'")]),
    Case("milestone on an unknown trigger", BASE + "milestones:\n  done: {on: [clos]}\n",
         [Expect(19, "clos", r"unknown trigger 'clos'", r"'close'")]),
    Case("milestone entering an unknown state",
         BASE + "milestones:\n  done: {on_enter: screenin}\n",
         [Expect(19, "screenin", r"unknown state 'screenin'")]),
    Case("milestone never reached", BASE + "milestones:\n  done: {}\n",
         [Expect(19, "done", r"milestone 'done' is never reached")]),
    # -- several mistakes at once ---------------------------------------------------------------
    Case("three independent mistakes",
         variant(("version: 1", "version: -2"), ("by: [chair]", "by: [chiar]"),
                 ("{owner: police}", "{owner: police, colour: red}")),
         [Expect(2, "-2", r"positive integer"),
          Expect(13, "colour", r"unknown key 'colour'"),
          Expect(17, "chiar", r"unknown role 'chiar'")]),
    Case("schema and reference mistakes together",
         variant(("timezone: Europe/London", "timezone: Mars/Base"),
                 ("from: new,", "from: neww,"), ("to: closed", "to: closed, extra: 1")),
         [Expect(4, "Mars", r"unknown time zone"),
          Expect(16, "neww", r"unknown state 'neww'"),
          Expect(17, "extra", r"unknown key 'extra'")]),
    Case("duplicate keys do not stop the later checks",
         variant(("  chair: {}\n", "  chair: {}\n  chair: {}\n"),
                 ("  screening: {owner: police}\n", "  screening: {owner: police}\n"
                                                    "  screening: {}\n"),
                 ("from: new,", "from: neww,")),
         [Expect(8, "chair", r"duplicate key 'chair'"),
          Expect(15, "screening", r"duplicate key 'screening'"),
          Expect(18, "neww", r"unknown state 'neww'")]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_invalid_definition(case: Case) -> None:
    assert_problems(case)


def test_at_least_thirty_single_mistake_cases() -> None:
    assert sum(len(c.expected) == 1 for c in CASES) >= 30


def test_the_base_and_parallel_variants_are_valid() -> None:
    load_definition(BASE)
    load_definition(WITH_PARALLEL)
    load_definition(BASE + TIMERS)


def test_an_invalid_declared_name_is_never_offered_as_a_hint() -> None:
    problems = problems_of(variant(("  chair: {}\n", '  "chair\\n": {}\n')))
    assert [p.hint for p in problems if p.message.startswith("unknown role")] == [None]
