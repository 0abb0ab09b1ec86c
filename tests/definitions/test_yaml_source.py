"""Marked YAML: plain values, a mark for every node and key, YAML-level problems located."""

from __future__ import annotations

import pytest

from engine.definitions.model import Mark
from engine.definitions.yamlsource import YamlProblems, parse_yaml


def problems(text: str) -> list[tuple[int, int, str]]:
    with pytest.raises(YamlProblems) as info:
        parse_yaml(text, "f.yaml")
    return [(p.line, p.col, p.message) for p in info.value.problems]


def test_values_and_marks() -> None:
    doc = parse_yaml("a: on\nb:\n  - yes\n  - {c: 1, d: 1.5, e: true, f: ~, g: 2026-12-24}\n")
    assert doc.data == {"a": "on", "b": ["yes", {"c": 1, "d": 1.5, "e": True, "f": None,
                                                  "g": "2026-12-24"}]}
    assert doc.mark(("a",)) == Mark(1, 4)
    assert doc.key_mark(("a",)) == Mark(1, 1)
    assert doc.mark(("b", 0)) == Mark(3, 5)
    assert doc.mark(("b", 1)) == Mark(4, 5)
    assert doc.key_mark(("b", 1, "d")) == Mark(4, 12)
    assert doc.mark(("b", 1, "d")) == Mark(4, 15)
    # A path that does not exist falls back to its nearest ancestor.
    assert doc.mark(("b", 1, "zz", 3)) == Mark(4, 5)
    assert doc.key_mark(("b", 7)) == Mark(3, 3)  # no such key: the value of "b"


@pytest.mark.parametrize("word", ["on", "off", "yes", "no", "y", "n", "On", "NO", "Yes"])
def test_yaml_11_booleans_are_strings(word: str) -> None:
    doc = parse_yaml(f"{word}: {word}\nlist: [{word}]\n")
    assert doc.data == {word: word, "list": [word]}


@pytest.mark.parametrize(("text", "value"), [("true", True), ("False", False), ("TRUE", True),
                                             ("'true'", "true"), ("0x10", "0x10"),
                                             ("007", 7), ("-3", -3), ("1e3", 1000.0),
                                             ("null", None), ("", None), ("1_000", "1_000")])
def test_core_schema_scalars(text: str, value: object) -> None:
    assert parse_yaml(f"v: {text}\n").data == {"v": value}


def test_duplicate_keys_report_both_places() -> None:
    assert problems("a: 1\nb:\n  c: 1\n  c: 2\n") == [
        (4, 3, "duplicate key 'c' (first defined at line 3, column 3)")]
    doc = parse_yaml("a: 1\na: 2\n", keep_going=True)
    assert doc.data == {"a": 1}
    assert [(p.line, p.col) for p in doc.problems] == [(2, 1)]
    assert doc.problems[0].hint is not None and "<string>:1:1" in doc.problems[0].hint


def test_syntax_errors_are_located() -> None:
    [(line, col, message)] = problems("a: [1, 2\nb: 3\n")
    assert (line, message.startswith("YAML syntax error")) == (2, True)
    [(line, col, message)] = problems("a: 'unterminated\n")
    assert line == 2 and "YAML syntax error" in message
    [(line, col, message)] = problems("a: 1\n\tb: 2\n")
    assert (line, col) == (2, 1)


def test_document_shape_problems() -> None:
    assert problems("") == [(1, 1, problems("")[0][2])]
    assert "empty" in problems("# only a comment\n")[0][2]
    assert problems("a: 1\n---\nb: 2\n")[0][:2] == (2, 1)
    assert "exactly one YAML document" in problems("a: 1\n---\nb: 2\n")[0][2]
    assert "got a list" in problems("- a\n- b\n")[0][2]
    assert "got string 'hello'" in problems("hello\n")[0][2]


def test_unsupported_yaml_features() -> None:
    assert problems("a: !!binary aGVsbG8=\n") == [(1, 4, "unsupported YAML tag "
                                                    "'tag:yaml.org,2002:binary'")]
    assert problems("a: !custom x\n")[0][:2] == (1, 4)
    assert problems("base: &b {x: 1}\nc:\n  <<: *b\n")[0][:2] == (3, 3)
    assert problems("[a, b]: 1\n") == [(1, 1, "mapping keys must be plain names, "
                                          "not lists or mappings")]
    assert problems("a: &x [*x]\n") == [(1, 4, "recursive YAML alias")]
    assert "unreadable character" in problems("a: \x07\n")[0][2]


def test_tags_on_mappings_and_lists_are_refused() -> None:
    assert problems("a: !!python/object:os.system {}\n") == [
        (1, 4, "unsupported YAML tag 'tag:yaml.org,2002:python/object:os.system'")]
    assert problems("a: !!set {x, y}\n")[0][:2] == (1, 4)
    assert problems("a: !!omap [x: 1]\n")[0][:2] == (1, 4)
    # The standard tags spelled out are what an untagged node has anyway.
    assert parse_yaml("a: !!map {x: !!seq [1]}\n").data == {"a": {"x": [1]}}


@pytest.mark.parametrize("text", ["a: " + "[" * 5000 + "]" * 5000 + "\n",
                                  "x:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 3000))])
def test_deep_nesting_is_an_error_not_a_crash(text: str) -> None:
    assert problems(text) == [(1, 1, "the document is nested too deeply")]


def test_alias_bombs_are_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    [(_, _, message)] = problems("\n".join(lines) + "\n")
    assert "too large" in message


def test_plain_aliases_are_copied() -> None:
    doc = parse_yaml("a: &r [x, y]\nb: *r\n")
    assert doc.data == {"a": ["x", "y"], "b": ["x", "y"]}
