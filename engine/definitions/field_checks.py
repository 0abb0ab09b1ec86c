"""Checks of declared case fields: enum values and defaults of the declared type.

Defaults are kept JSON-ready, as event data is stored: dates and datetimes as ISO strings,
lists as tuples of strings (immutable inside the frozen definition).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from engine.definitions.checker import Checker
from engine.definitions.model import FieldDef
from engine.definitions.names import suggest
from engine.definitions.schema import FieldSpec
from engine.definitions.yamlsource import Path, kind_of


def check_field(checker: Checker, name: str, spec: FieldSpec, loc: Path) -> FieldDef | None:
    """Report problems of one field; return its compiled form when it has none."""
    before = len(checker.out.problems)
    values: tuple[str, ...] = ()
    if spec.type == "enum":
        if not spec.values:
            checker.error(loc, f"enum field '{name}' needs a non-empty `values` list", key=True)
        else:
            values = tuple(spec.values)
            seen: set[str] = set()
            for i, value in enumerate(values):
                if value in seen:
                    checker.error((*loc, "values", i), f"'{value}' is listed twice in the "
                                  f"values of field '{name}'")
                if not value:
                    checker.error((*loc, "values", i), "enum values must not be empty")
                seen.add(value)
    elif spec.values is not None:
        checker.error((*loc, "values"), f"`values` is only for enum fields, and '{name}' is "
                      f"{spec.type}", "use `type: enum`", key=True)
    default = spec.default
    if default is not None:
        try:
            default = coerce_default(spec.type, values, default)
        except ValueError as exc:
            hint = suggest(default, values) if isinstance(default, str) and values else None
            checker.error((*loc, "default"), f"default of {spec.type} field '{name}': {exc}",
                          hint)
    if len(checker.out.problems) > before:
        return None
    visible = frozenset(spec.visible_to) if spec.visible_to is not None else None
    return FieldDef(name=name, type=spec.type, values=values, default=default,
                    visible_to=visible)


def coerce_default(type_: str, values: tuple[str, ...], value: Any) -> Any:
    """The default in its stored form; ``ValueError`` if it does not fit ``type_``."""
    return _COERCERS[type_](value, values)


def _expected(what: str, value: Any) -> ValueError:
    return ValueError(f"expected {what}, got {kind_of(value)}")


def _string(value: Any, values: tuple[str, ...]) -> str:
    if isinstance(value, str):
        return value
    raise _expected("a string", value)


def _int(value: Any, values: tuple[str, ...]) -> int:
    # type() rather than isinstance: a YAML true is a bool, which is an int subclass.
    if type(value) is int:
        return value
    raise _expected("an integer", value)


def _bool(value: Any, values: tuple[str, ...]) -> bool:
    if isinstance(value, bool):
        return value
    raise _expected("true or false", value)


def _enum(value: Any, values: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise _expected("one of its values", value)
    # With no values the field already has its own problem; do not add a second one.
    if value in values or not values:
        return value
    raise ValueError(f"{value!r} is not one of its values ({', '.join(values)})")


def _list(value: Any, values: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise _expected("a list of strings", value)


def _date(value: Any, values: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise _expected("a date written YYYY-MM-DD", value)
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"expected a date written YYYY-MM-DD, got {value!r}") from None


def _datetime(value: Any, values: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise _expected("an ISO 8601 date and time", value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected an ISO 8601 date and time, got {value!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset (write e.g. '...T09:00:00Z')")
    return value


# By declared field type; the schema admits no other type.
_COERCERS: dict[str, Callable[[Any, tuple[str, ...]], Any]] = {
    "string": _string, "text": _string, "int": _int, "bool": _bool, "enum": _enum,
    "list": _list, "date": _date, "datetime": _datetime,
}
