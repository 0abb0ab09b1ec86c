"""Scalar readers the schema's fields are built from: one-or-many names, empty mappings
and lists, durations, ISO dates and positive numbers, each refusing with a message the
schema reports at the value's place."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic_core import PydanticCustomError

from engine.definitions.durations import parse_duration
from engine.definitions.model import Duration
from engine.definitions.yamlsource import kind_of


def _one_or_many(value: Any) -> Any:
    """``by: police`` means ``by: [police]``: a lone name is a list of one."""
    return [value] if isinstance(value, str) else value


def _empty_mapping(value: Any) -> Any:
    """``referrer:`` with nothing after it means ``referrer: {}``."""
    return {} if value is None else value


def _empty_list(value: Any) -> Any:
    return [] if value is None else value


def _duration(value: Any) -> Duration:
    if not isinstance(value, str):
        raise PydanticCustomError(
            "duration_type",
            "expected a duration such as '5 business days', '21 days' or 'P5D', got {got}",
            {"got": kind_of(value)},
        )
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("duration", str(exc)) from None


def _iso_date(value: Any) -> date:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise PydanticCustomError(
        "date_text", "expected a date written YYYY-MM-DD, got {got}", {"got": kind_of(value)}
    )


def _positive(value: int) -> int:
    if value < 1:
        raise PydanticCustomError("positive", "must be a positive integer, got {v}", {"v": value})
    return value


# Versions are stored in a 32-bit INTEGER column (PostgreSQL's ``integer``): a larger one
# would pass here and crash at deploy.
MAX_VERSION = 2**31 - 1


def _version(value: int) -> int:
    _positive(value)
    if value > MAX_VERSION:
        raise PydanticCustomError(
            "version_range", "must be at most {max}, got {v}", {"max": MAX_VERSION, "v": value}
        )
    return value
