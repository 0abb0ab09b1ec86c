"""Durations in every form of the contract, and the mistakes they refuse."""

from __future__ import annotations

import pytest

from engine.definitions.durations import parse_duration
from engine.definitions.model import Duration


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("1 second", (0, 0, 1, 0)),
        ("30 seconds", (0, 0, 30, 0)),
        ("1 minute", (0, 0, 60, 0)),
        ("90 minutes", (0, 0, 5400, 0)),
        ("48 hours", (0, 0, 172800, 0)),
        ("1 hour", (0, 0, 3600, 0)),
        ("1 day", (0, 1, 0, 0)),
        ("21 days", (0, 21, 0, 0)),
        ("2 weeks", (0, 14, 0, 0)),
        ("1 week", (0, 7, 0, 0)),
        ("6 months", (6, 0, 0, 0)),
        ("1 month", (1, 0, 0, 0)),
        ("5 business days", (0, 0, 0, 5)),
        ("1 business day", (0, 0, 0, 1)),
        ("5  Business  Days", (0, 0, 0, 5)),
        ("P5D", (0, 5, 0, 0)),
        ("PT48H", (0, 0, 172800, 0)),
        ("P6M", (6, 0, 0, 0)),
        ("P1W", (0, 7, 0, 0)),
        ("P1Y", (12, 0, 0, 0)),
        ("PT30M", (0, 0, 1800, 0)),
        ("PT1H30M15S", (0, 0, 5415, 0)),
        ("P1Y2M3DT4H5M6S", (14, 3, 14706, 0)),
    ],
)
def test_forms(text: str, parts: tuple[int, int, int, int]) -> None:
    duration = parse_duration(text)
    assert (duration.months, duration.days, duration.seconds, duration.business_days) == parts
    assert duration.text == text
    assert str(duration) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"not a duration"),
        ("5", r"not a duration"),
        ("days", r"not a duration"),
        ("5 fortnights", r"not a duration"),
        ("5 bizness days", r"not a duration"),
        ("1.5 days", r"not a duration"),
        ("P", r"not a duration"),
        ("PT", r"not a duration"),
        ("P1DT", r"not a duration"),
        ("P0.5D", r"not a duration"),
        ("5D", r"not a duration"),
        ("0 days", r"must be positive"),
        ("-3 days", r"must be positive"),
        ("P0D", r"must be positive"),
        ("PT0S", r"must be positive"),
        ("-P1D", r"must be positive"),
        ("0 business days", r"must be positive"),
        ("99999999 days", r"too long"),
        ("P9999999999Y", r"too long"),
        ("\u0967 day", r"not a duration"),       # a Devanagari digit: ASCII digits only
        ("P\u0665D", r"not a duration"),         # an Arabic-Indic digit
        ("99999999999999999999999999 months", r"too long"),
        ("9" * 5000 + " days", r"^duration '9{37}\.\.\.' is too long"),
        ("P" + "9" * 5000 + "D", r"too long"),
    ],
)
def test_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


def test_a_non_string_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(5)  # type: ignore[arg-type]


def test_duration_value_equality_ignores_nothing_but_is_hashable() -> None:
    assert parse_duration("P5D") == Duration(days=5, text="P5D")
    assert len({parse_duration("5 days"), parse_duration("5 days")}) == 1
