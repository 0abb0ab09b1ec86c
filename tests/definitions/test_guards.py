"""CEL guards: compiled once, names checked against fields, typed binding at run time."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import pytest

from engine.definitions.guards import GuardError, compile_guard
from engine.definitions.model import FieldDef

FIELDS = {
    f.name: f
    for f in (
        FieldDef("risk", "enum", ("low", "moderate", "high")),
        FieldDef("consent", "bool", default=False),
        FieldDef("score", "int"),
        FieldDef("notes", "text"),
        FieldDef("tags", "list"),
        FieldDef("due", "date"),
        FieldDef("seen_at", "datetime"),
        FieldDef("level", "int", default=2),
    )
}


@pytest.mark.parametrize(
    ("expression", "data", "expected"),
    [
        ('risk != "low" && consent', {"risk": "high", "consent": True}, True),
        ('risk != "low" && consent', {"risk": "low", "consent": True}, False),
        ("consent", {}, False),  # missing bool: its default (false)
        ("score == 0", {}, True),  # missing int: zero
        ("level == 2", {}, True),  # missing field with a default: the default
        ("level == 2", {"level": None}, True),  # null counts as missing
        ('notes == ""', {}, True),
        ("size(tags) == 0", {}, True),
        ('"urgent" in tags', {"tags": ["urgent", "x"]}, True),
        ('tags.exists(t, t == "x")', {"tags": ["x"]}, True),
        ('due < "2026-02-01"', {"due": "2026-01-15"}, True),
        ('due < "2026-02-01"', {"due": date(2026, 3, 1)}, False),  # dates bind as ISO text
        ('seen_at > timestamp("2026-01-01T00:00:00Z")',
         {"seen_at": "2026-02-01T10:00:00+00:00"}, True),
        ('seen_at > timestamp("2026-01-01T00:00:00Z")',
         {"seen_at": datetime(2025, 1, 1, tzinfo=UTC)}, False),
        ('seen_at > timestamp("2026-01-01T00:00:00Z")', {}, False),  # epoch
        ('tags[0] == "x"', {"tags": []}, False),  # a run-time error does not hold
        ("score > 3 || consent", {"score": 5}, True),
    ],
)
def test_evaluate(expression: str, data: dict[str, object], expected: bool) -> None:
    assert compile_guard(expression, FIELDS).evaluate(data) is expected


@pytest.mark.parametrize(
    ("expression", "message", "hint"),
    [
        ("", "empty `when`", None),
        ("risk ==", "invalid CEL in `when`: syntax error at column 8", "&&"),
        ("risk = 'x'", "invalid CEL", None),
        ('rsik == "high"', "undeclared field 'rsik'", "did you mean 'risk'?"),
        ('unknown_thing && consent', "undeclared field 'unknown_thing'", "declare it"),
        ("risk", "must give true or false, but gives a string", None),
        ("score + 1", "gives an integer", None),
        ("consent || risk", "does not fit the declared field types", None),
        ("score > \"3\"", "does not fit the declared field types", None),
        ("frobnicate(score)", "does not fit", None),
        ("1 / 0 == 1", "cannot be evaluated", None),
        ("(" * 200 + "consent" + ")" * 200, "syntax error at column 97 of the expression: "
         "nested too deeply", None),
    ],
)
def test_refused(expression: str, message: str, hint: str | None) -> None:
    with pytest.raises(GuardError) as info:
        compile_guard(expression, FIELDS)
    assert message in str(info.value)
    if hint is not None:
        assert info.value.hint is not None and hint in info.value.hint


def test_comprehension_variables_are_not_fields() -> None:
    guard = compile_guard('tags.all(t, t != "banned") && tags.exists(u, u == "ok")', FIELDS)
    assert guard.evaluate({"tags": ["ok"]})
    assert not guard.evaluate({"tags": ["ok", "banned"]})


def test_evaluation_is_fast() -> None:
    guard = compile_guard('risk != "low" && consent && score > 3', FIELDS)
    data = {"risk": "high", "consent": True, "score": 5}
    start = time.perf_counter()
    for _ in range(5000):
        guard.evaluate(data)
    per_call = (time.perf_counter() - start) / 5000
    assert per_call < 200e-6  # microseconds in practice; generous for a loaded CI machine
