"""Case data: event values checked against the declared field types.

Values are stored as JSON, so dates and datetimes are kept as ISO 8601 strings (datetimes
normalised to UTC, ``...+00:00``). The same rules serve the API (JSON values) and the CLI
(``KEY=VALUE`` strings parsed by the field's type).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from engine.definitions.model import Definition, FieldDef
from engine.errors import InvalidInput

_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


# CEL guards compute on signed 64-bit integers; a larger value could not be compared.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


def _storable(text: str) -> bool:
    """Text every backend stores and hashes: PostgreSQL's JSON refuses NUL, and a lone
    surrogate cannot be encoded as UTF-8 for the audit hash."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _bad(spec: FieldDef, value: Any, expected: str) -> InvalidInput:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return InvalidInput(
        f"field {spec.name!r} expects {expected}, got {shown}",
        field=spec.name,
        expected=expected,
    )


def coerce_value(spec: FieldDef, value: Any) -> Any:
    """The JSON-ready form of ``value`` for ``spec``, or InvalidInput naming the field.

    ``None`` clears a field whatever its type.
    """
    if value is None:
        return None
    coerce = _COERCERS.get(spec.type)
    if coerce is None:
        raise _bad(spec, value, f"a value of unknown type {spec.type}")
    return coerce(spec, value)


def _coerce_text(spec: FieldDef, value: Any) -> str:
    if not isinstance(value, str) or not _storable(value):
        raise _bad(spec, value, "a string of Unicode text (no NUL, no lone surrogate)")
    return value


def _coerce_int(spec: FieldDef, value: Any) -> int:
    # bool is an int subclass in Python; a JSON true is not a number here.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(spec, value, "an integer")
    if not INT_MIN <= value <= INT_MAX:
        raise _bad(spec, value, "an integer that fits in 64 bits")
    return value


def _coerce_bool(spec: FieldDef, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad(spec, value, "true or false")
    return value


def _coerce_enum(spec: FieldDef, value: Any) -> str:
    if not isinstance(value, str) or value not in spec.values:
        raise _bad(spec, value, "one of " + ", ".join(spec.values))
    return value


def _coerce_list(spec: FieldDef, value: Any) -> list[str]:
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, str) and _storable(v) for v in value
    ):
        raise _bad(spec, value, "a list of strings")
    return list(value)


def _coerce_date(spec: FieldDef, value: Any) -> str:
    if isinstance(value, datetime):
        raise _bad(spec, value, "a date (YYYY-MM-DD)")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise _bad(spec, value, "a date (YYYY-MM-DD)")


def _coerce_datetime(spec: FieldDef, value: Any) -> str:
    parsed: datetime | None = None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise _bad(spec, value, "a date and time with a UTC offset (ISO 8601)")
    return parsed.astimezone(UTC).isoformat()


# By declared field type.
_COERCERS: dict[str, Callable[[FieldDef, Any], Any]] = {
    "string": _coerce_text,
    "text": _coerce_text,
    "int": _coerce_int,
    "bool": _coerce_bool,
    "enum": _coerce_enum,
    "list": _coerce_list,
    "date": _coerce_date,
    "datetime": _coerce_datetime,
}


def validate(defn: Definition, data: Mapping[str, Any] | None) -> dict[str, Any]:
    """Event data checked and coerced; unknown keys are rejected by name."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise InvalidInput("event data must be an object of field values")
    unknown = sorted(str(k) for k in data if k not in defn.fields)
    if unknown:
        known = ", ".join(defn.fields) or "none"
        raise InvalidInput(
            f"unknown field {unknown[0]!r} in workflow {defn.workflow} (fields: {known})",
            field=unknown[0],
            unknown=unknown,
        )
    return {name: coerce_value(defn.fields[name], value) for name, value in data.items()}


def defaults(defn: Definition) -> dict[str, Any]:
    """The declared defaults, the data a new case starts from."""
    return {
        name: coerce_value(spec, spec.default)
        for name, spec in defn.fields.items()
        if spec.default is not None
    }


def parse_text(spec: FieldDef, text: str) -> Any:
    """A CLI string turned into a value of the field's type (then checked as usual)."""
    kind = spec.type
    value: Any = text
    if kind == "int":
        try:
            value = int(text.strip())
        except ValueError:
            raise _bad(spec, text, "an integer") from None
    elif kind == "bool":
        lowered = text.strip().lower()
        if lowered in _TRUE:
            value = True
        elif lowered in _FALSE:
            value = False
        else:
            raise _bad(spec, text, "true or false")
    elif kind == "list":
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError:
                raise _bad(spec, text, "a JSON list of strings or a,b,c") from None
        else:
            value = [part.strip() for part in stripped.split(",") if part.strip()]
    return coerce_value(spec, value)


def parse_assignments(defn: Definition, pairs: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings parsed by each field's type; ``KEY=`` clears the field."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInput(f"expected KEY=VALUE, got {pair!r}")
        spec = defn.fields.get(key)
        if spec is None:
            known = ", ".join(defn.fields) or "none"
            raise InvalidInput(
                f"unknown field {key!r} in workflow {defn.workflow} (fields: {known})",
                field=key,
            )
        result[key] = None if text == "" else parse_text(spec, text)
    return result
