"""Event data against field types, and CLI ``KEY=VALUE`` parsing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from engine.cases.data import coerce_value, defaults, parse_assignments, validate
from engine.definitions.model import FieldDef
from engine.errors import InvalidInput

F = {
    "s": FieldDef("s", "string"),
    "t": FieldDef("t", "text"),
    "i": FieldDef("i", "int", default=0),
    "b": FieldDef("b", "bool", default=False),
    "d": FieldDef("d", "date"),
    "dt": FieldDef("dt", "datetime"),
    "e": FieldDef("e", "enum", values=("low", "high")),
    "l": FieldDef("l", "list"),
}


class FakeDefinition:
    workflow = "w"
    fields = F


DEFN: Any = FakeDefinition()


@pytest.mark.parametrize(
    ("name", "value", "stored"),
    [
        ("s", "abc", "abc"),
        ("t", "long\ntext", "long\ntext"),
        ("i", 5, 5),
        ("b", True, True),
        ("d", "2026-03-02", "2026-03-02"),
        ("d", date(2026, 3, 2), "2026-03-02"),
        ("dt", "2026-03-02T10:00:00+01:00", "2026-03-02T09:00:00+00:00"),
        ("dt", "2026-03-02T09:00:00Z", "2026-03-02T09:00:00+00:00"),
        (
            "dt",
            datetime(2026, 3, 2, 9, tzinfo=timezone(timedelta(hours=2))),
            "2026-03-02T07:00:00+00:00",
        ),
        ("e", "high", "high"),
        ("l", ["a", "b"], ["a", "b"]),
        ("s", None, None),
    ],
)
def test_good_values(name: str, value: Any, stored: Any) -> None:
    assert coerce_value(F[name], value) == stored


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("s", 5),
        ("i", "5"),
        ("i", True),
        ("i", 1.5),
        ("b", "true"),
        ("b", 1),
        ("d", "02/03/2026"),
        ("d", datetime(2026, 3, 2, tzinfo=UTC)),
        ("dt", "2026-03-02T09:00:00"),
        ("dt", "yesterday"),
        ("e", "medium"),
        ("l", "a,b"),
        ("l", ["a", 1]),
        ("s", "nul\x00byte"),
        ("s", "lone \ud800 surrogate"),
        ("l", ["ok", "\udfff"]),
        ("i", 2**63),
        ("i", -(2**63) - 1),
    ],
)
def test_bad_values_name_the_field(name: str, value: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        coerce_value(F[name], value)
    assert info.value.details["field"] == name
    assert repr(name) in info.value.message


def test_unknown_keys_are_rejected_by_name() -> None:
    with pytest.raises(InvalidInput, match="'colour'") as info:
        validate(DEFN, {"s": "x", "colour": "red"})
    assert info.value.details["field"] == "colour"
    with pytest.raises(InvalidInput):
        validate(DEFN, ["s"])  # type: ignore[arg-type]
    assert validate(DEFN, None) == {}


def test_defaults() -> None:
    assert defaults(DEFN) == {"i": 0, "b": False}


def test_cli_pairs_are_parsed_by_type() -> None:
    parsed = parse_assignments(
        DEFN,
        ["s=a=b", "i=42", "b=yes", "d=2026-03-02", "e=low", "l=x, y", "t="],
    )
    assert parsed == {
        "s": "a=b",
        "i": 42,
        "b": True,
        "d": "2026-03-02",
        "e": "low",
        "l": ["x", "y"],
        "t": None,
    }
    assert parse_assignments(DEFN, ['l=["a,b", "c"]']) == {"l": ["a,b", "c"]}
    for bad in ("i=four", "b=perhaps", "e=mid", "nokey", "=x", "zz=1", "l=[1]"):
        with pytest.raises(InvalidInput):
            parse_assignments(DEFN, [bad])
