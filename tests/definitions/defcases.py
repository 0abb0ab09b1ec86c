"""Helpers for definition tests: a small valid workflow and exact-position assertions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from engine.definitions.loader import load_definition
from engine.errors import DefinitionError, Problem

FIXTURES = Path(__file__).parent / "fixtures"
CONTRACT_EXAMPLE = (FIXTURES / "contract_example.yaml").read_text(encoding="utf-8")

BASE = """\
workflow: demo
version: 1
title: Demo
timezone: Europe/London
roles:
  police: {}
  chair: {}
fields:
  risk: {type: enum, values: [low, high]}
  notes: {type: text}
states:
  new: {initial: true}
  screening: {owner: police}
  closed: {final: true}
transitions:
  - {trigger: accept, from: new, to: screening, by: [police]}
  - {trigger: close, from: screening, to: closed, by: [chair]}
"""


def variant(*replacements: tuple[str, str], append: str = "", base: str = BASE) -> str:
    """``base`` with each (old, new) replaced exactly once, and ``append`` added."""
    text = base
    for old, new in replacements:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
        text = text.replace(old, new)
    return text + append


@dataclass(frozen=True)
class Expect:
    """A problem at ``line``, at the ``nth`` occurrence of ``token`` on that line."""

    line: int
    token: str
    message: str  # regex searched in the message
    hint: str | None = None  # regex searched in the hint
    nth: int = 1


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    expected: list[Expect] = field(default_factory=list)


def column(text: str, line: int, token: str, nth: int = 1) -> int:
    lines = text.splitlines() or [""]
    source = lines[line - 1]
    at = -1
    for _ in range(nth):
        at = source.index(token, at + 1)
    return at + 1


def problems_of(text: str, path: str = "wf.yaml") -> list[Problem]:
    with pytest.raises(DefinitionError) as info:
        load_definition(text, path)
    return info.value.problems


def assert_problems(case: Case) -> None:
    problems = problems_of(case.text)
    got = [(p.line, p.col, p.message, p.hint) for p in problems]
    assert len(problems) == len(case.expected), "\n".join(p.format() for p in problems)
    wanted = sorted(case.expected, key=lambda e: (e.line, column(case.text, e.line, e.token,
                                                                  e.nth)))
    for problem, expect in zip(problems, wanted, strict=True):
        col = column(case.text, expect.line, expect.token, expect.nth)
        where = f"{problem.format()}\n(all: {got})"
        assert problem.path == "wf.yaml"
        assert (problem.line, problem.col) == (expect.line, col), where
        assert re.search(expect.message, problem.message), where
        if expect.hint is not None:
            assert problem.hint is not None and re.search(expect.hint, problem.hint), where
