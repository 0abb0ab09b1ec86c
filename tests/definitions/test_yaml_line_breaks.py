"""Positions count ``\\n`` only: a U+0085, U+2028 or U+2029 in a string moves nothing.

PyYAML counts those characters as line breaks; every ``path:line:col`` after one would
otherwise point lines below where the mistake is.
"""

from __future__ import annotations

import pytest
from defcases import BASE, variant
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.definitions.loader import load_definition
from engine.definitions.yamlsource import parse_yaml
from engine.errors import DefinitionError

BREAKS = ["\u0085", "\u2028", "\u2029"]


@pytest.mark.parametrize("char", BREAKS)
def test_a_later_problem_keeps_its_line_and_column(char: str) -> None:
    text = variant(
        ("title: Demo", f'title: "Demo{char}with{char}breaks"'),
        ("to: closed,", "to: clossed,"),
    )
    expected_line = text[: text.index("clossed")].count("\n") + 1
    line_text = text.split("\n")[expected_line - 1]
    with pytest.raises(DefinitionError) as caught:
        load_definition(text, "demo.yaml")
    [problem] = caught.value.problems
    assert problem.line == expected_line
    assert line_text[problem.col - 1 :].startswith("clossed")


@pytest.mark.parametrize("char", BREAKS)
def test_a_syntax_error_after_the_character_is_located_from_the_text(char: str) -> None:
    text = f'workflow: "a{char}b"\nversion: 1\ntitle: [unclosed\n'
    with pytest.raises(DefinitionError) as caught:
        load_definition(text, "broken.yaml")
    lines = {p.line for p in caught.value.problems}
    assert lines <= {3, 4}, caught.value.problems


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a", " ", *BREAKS, "é", "😀"]), max_size=12))
def test_every_mark_matches_the_text(chars: list[str]) -> None:
    noise = "".join(chars)
    text = BASE.replace("title: Demo", "title: " + _quoted(noise))
    doc = parse_yaml(text, "demo.yaml")
    lines = text.split("\n")
    for loc, mark in doc.key_marks.items():
        assert lines[mark.line - 1][mark.col - 1 :].startswith(str(loc[-1])), (loc, mark)


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
