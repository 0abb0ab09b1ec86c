"""Fuzzing the loader: whatever the input, a Definition or a DefinitionError, never a crash."""

from __future__ import annotations

import re
from typing import Any

import yaml
from defcases import CONTRACT_EXAMPLE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.definitions.loader import load_definition
from engine.definitions.model import Definition
from engine.definitions.yamlsource import parse_yaml
from engine.errors import DefinitionError

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
EXAMPLE_DATA: dict[str, Any] = parse_yaml(CONTRACT_EXAMPLE).data
EXAMPLE_LINES = CONTRACT_EXAMPLE.splitlines(keepends=True)
NAMES = sorted(set(re.findall(r"\b[a-z][a-z0-9_.]*\b", CONTRACT_EXAMPLE)))


def outcome(text: str) -> Definition | DefinitionError:
    """Load ``text``; any exception other than DefinitionError fails the test."""
    try:
        return load_definition(text, "fuzz.yaml")
    except DefinitionError as exc:
        assert exc.problems, "a DefinitionError must carry at least one problem"
        last_line = text.count("\n") + 2
        for problem in exc.problems:
            assert 1 <= problem.line <= last_line, problem
            assert problem.col >= 1, problem
            assert problem.message
        return exc


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += paths(child, (*prefix, i))
    return found


EXAMPLE_PATHS = paths(EXAMPLE_DATA)[1:]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**12), st.floats(),
                    st.sampled_from(["*", "", "on", "no", "P5D", "5 business days", "support",
                                     "support.therapy", "review", "system", "chair",
                                     "risk_level", "close", "Europe/London", "x" * 100]),
                    st.text(max_size=20))
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.text(max_size=10), st.integers()),
                                            inner, max_size=4)),
    max_leaves=25,
)


def replace_at(data: Any, path: tuple[Any, ...], new: Any, *, delete: bool = False) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        copy = dict(data)
        if delete and not rest:
            del copy[head]
        else:
            copy[head] = replace_at(data[head], rest, new, delete=delete)
        return copy
    copy_list = list(data)
    if delete and not rest:
        del copy_list[head]
    else:
        copy_list[head] = replace_at(data[head], rest, new, delete=delete)
    return copy_list


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    outcome(text)


@FUZZ
@given(documents)
def test_random_yaml_documents(data: Any) -> None:
    outcome(dump(data))


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(EXAMPLE_DATA)), documents, max_size=8))
def test_random_values_under_real_keys(data: dict[str, Any]) -> None:
    outcome(dump(data))


@FUZZ
@given(st.sampled_from(EXAMPLE_PATHS))
def test_deleting_any_key_or_item(path: tuple[Any, ...]) -> None:
    result = outcome(dump(replace_at(EXAMPLE_DATA, path, None, delete=True)))
    assert isinstance(result, (Definition, DefinitionError))


@FUZZ
@given(st.sampled_from(EXAMPLE_PATHS), scalars | st.just([]) | st.just({}) | st.just([[]]))
def test_changing_any_value(path: tuple[Any, ...], new: Any) -> None:
    outcome(dump(replace_at(EXAMPLE_DATA, path, new)))


@FUZZ
@given(st.sampled_from(NAMES), st.sampled_from([*NAMES, "x", "on", "Bad Name", "a.b", "*"]),
       st.booleans())
def test_renaming_a_name(old: str, new: str, everywhere: bool) -> None:
    """Rename one occurrence (a dangling reference) or all of them (often still valid)."""
    pattern = re.compile(rf"(?<![\w.]){re.escape(old)}(?![\w.])")
    outcome(pattern.sub(new, CONTRACT_EXAMPLE, count=0 if everywhere else 1))


def test_a_consistent_rename_stays_valid() -> None:
    pattern = re.compile(r"(?<![\w.])screening(?![\w.])")
    renamed = outcome(pattern.sub("triage", CONTRACT_EXAMPLE))
    assert isinstance(renamed, Definition)
    assert "triage" in renamed.states and "screening" not in renamed.states


@FUZZ
@given(st.integers(0, len(EXAMPLE_LINES) - 1), st.integers(0, len(EXAMPLE_LINES) - 1))
def test_duplicating_or_moving_a_line(source: int, target: int) -> None:
    lines = list(EXAMPLE_LINES)
    lines.insert(target, lines[source])
    outcome("".join(lines))
    del lines[target]
    del lines[source]
    outcome("".join(lines))


@FUZZ
@given(st.integers(0, len(CONTRACT_EXAMPLE)))
def test_truncating(length: int) -> None:
    outcome(CONTRACT_EXAMPLE[:length])


@FUZZ
@given(st.integers(0, len(CONTRACT_EXAMPLE)), st.text(max_size=8))
def test_inserting_characters(at: int, junk: str) -> None:
    outcome(CONTRACT_EXAMPLE[:at] + junk + CONTRACT_EXAMPLE[at:])


def test_the_example_itself_loads() -> None:
    assert isinstance(outcome(CONTRACT_EXAMPLE), Definition)
    assert isinstance(outcome(dump(EXAMPLE_DATA)), Definition)
