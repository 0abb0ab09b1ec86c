"""``subjects:`` in the definition language: defaults, checks located as path:line:col,
and what the shipped workflows declare."""

from __future__ import annotations

import pytest
from conftest import REPO

from engine.definitions.loader import load_definition, load_path
from engine.errors import DefinitionError

SMALL = """\
workflow: tiny
version: 1
title: Tiny
timezone: Europe/London
roles:
  referrer: {}
  police: {}
  therapist: {}
states:
  referred: {initial: true}
  closed: {final: true}
transitions:
  - {trigger: close, from: referred, to: closed, by: [police]}
"""


def test_by_default_police_and_coordinator_where_declared_and_never_the_referrer() -> None:
    subjects = load_definition(SMALL, "tiny.yaml").subjects
    assert subjects.visible_to == {"police"} and subjects.match_by == {"police"}
    assert subjects.pool == "default"
    assert not subjects.sees({"referrer"}) and not subjects.sees({"therapist", "system"})


def test_a_definition_may_widen_or_narrow_it_and_isolate_a_pool() -> None:
    text = SMALL + "subjects: {visible_to: [police, therapist], match_by: police, pool: own}\n"
    subjects = load_definition(text, "tiny.yaml").subjects
    assert subjects.visible_to == {"police", "therapist"}
    assert subjects.match_by == {"police"} and subjects.pool == "own"
    # Visible to roles only: match_by defaults to those of them that may match by default.
    only = load_definition(SMALL + "subjects: {visible_to: [therapist]}\n", "t.yaml").subjects
    assert only.visible_to == {"therapist"} and only.match_by == frozenset()


@pytest.mark.parametrize(("tail", "expected"), [
    ("subjects:\n  visible_to: [police, polise]\n",
     ["tiny.yaml:15:24: error: unknown role 'polise'\n  hint: did you mean 'police'?"]),
    ("subjects:\n  visible_to: [police]\n  match_by: [therapist]\n",
     ["tiny.yaml:16:14: error: role 'therapist' may match subjects but not see them\n"
      "  hint: add it to subjects.visible_to"]),
    ("subjects:\n  match_by: [system]\n",
     ["tiny.yaml:15:14: error: unknown role 'system'"]),
    ("subjects: {pool: Not-A-Name}\n",
     ["tiny.yaml:14:18: error: pool name 'Not-A-Name' is not a valid identifier"]),
    ("subjects: {visible: [police]}\n",
     ["tiny.yaml:14:12: error: unknown key 'visible' in subjects\n"
      "  hint: did you mean 'visible_to'?"]),
])
def test_mistakes_are_reported_where_they_are(tail: str, expected: list[str]) -> None:
    with pytest.raises(DefinitionError) as raised:
        load_definition(SMALL + tail, "tiny.yaml")
    assert [p.format() for p in raised.value.problems] == expected


def test_the_shipped_workflows_declare_who_sees_the_person() -> None:
    folder = REPO / "workflows"
    panel = load_path(folder / "community_panel.yaml").subjects
    assert panel.visible_to == {"police", "coordinator"} and "referrer" not in panel.visible_to
    exit_ngo = load_path(folder / "self_referral_exit.yaml").subjects
    assert exit_ngo.pool != panel.pool
    for path in folder.glob("*.yaml"):
        subjects = load_path(path).subjects
        assert subjects.visible_to and "referrer" not in subjects.visible_to, path
