"""Field defaults in their stored form, and the message for each kind of mismatch."""

from __future__ import annotations

from typing import Any

import pytest

from engine.definitions.field_checks import coerce_default


@pytest.mark.parametrize(
    ("type_", "values", "value", "stored"),
    [
        ("string", (), "hello", "hello"),
        ("text", (), "", ""),
        ("int", (), -3, -3),
        ("bool", (), False, False),
        ("enum", ("low", "high"), "high", "high"),
        # No values: the field is reported for that, not its default as well.
        ("enum", (), "anything", "anything"),
        ("list", (), ["a", "b"], ("a", "b")),
        ("list", (), [], ()),
        ("date", (), "2024-02-29", "2024-02-29"),
        ("datetime", (), "2024-01-31T09:00:00+01:00", "2024-01-31T09:00:00+01:00"),
    ],
)
def test_a_fitting_default_is_stored(type_: str, values: tuple[str, ...], value: Any,
                                     stored: Any) -> None:
    assert coerce_default(type_, values, value) == stored


@pytest.mark.parametrize(
    ("type_", "values", "value", "message"),
    [
        ("string", (), 3, "expected a string, got integer 3"),
        ("int", (), True, "expected an integer, got "),
        ("int", (), "3", "expected an integer, got "),
        ("bool", (), 1, "expected true or false, got integer 1"),
        ("enum", ("low", "high"), "hihg", "'hihg' is not one of its values (low, high)"),
        ("enum", ("low",), 1, "expected one of its values, got integer 1"),
        ("list", (), ["a", 1], "expected a list of strings, got "),
        ("list", (), "a", "expected a list of strings, got "),
        ("date", (), "2024-02-30", "expected a date written YYYY-MM-DD, got '2024-02-30'"),
        ("date", (), 20240101, "expected a date written YYYY-MM-DD, got integer"),
        ("datetime", (), "soon", "expected an ISO 8601 date and time, got 'soon'"),
        ("datetime", (), "2024-01-31T09:00:00", "has no UTC offset"),
        ("datetime", (), 5, "expected an ISO 8601 date and time, got integer 5"),
    ],
)
def test_a_mismatched_default_says_what_was_expected(type_: str, values: tuple[str, ...],
                                                     value: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        coerce_default(type_, values, value)
    assert message in str(caught.value)
