"""``when`` conditions: CEL expressions over the case fields, compiled once at load time.

Binding rules (the same at load-time checking and at run time):

- A field missing from the case data, or ``null`` there, is bound to its declared
  ``default``, else to its type's zero value: ``""`` for string/text/enum/date, ``0`` for
  int, ``false`` for bool, ``[]`` for list, the Unix epoch for datetime. So
  ``consent`` on a fresh case is simply false, never an "undefined variable" error.
- ``date`` fields are ISO strings (``"2026-12-24"``): the CEL library cannot take Python
  dates, and ISO dates order correctly as strings. ``datetime`` fields are CEL timestamps
  (ISO strings in the case data are parsed; naive ones are taken as UTC).
- A guard that fails at run time (say ``tags[0]`` on an empty list) does not hold.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime
from typing import Any

import cel

from engine.definitions.model import FieldDef

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ZERO: dict[str, Any] = {
    "string": "", "text": "", "enum": "", "date": "", "int": 0, "bool": False, "list": [],
    "datetime": EPOCH,
}
_SAMPLE: dict[str, Any] = {
    "string": "x", "text": "x", "date": "2026-01-01", "int": 1, "bool": True, "list": ["x"],
    "datetime": datetime(2026, 1, 1, 12, tzinfo=UTC),
}
# Variables bound by comprehension macros (``tags.exists(t, t == "x")``) are not fields.
# The CEL package lists them among ``Program.variables()`` and has no public way to tell
# them apart, so they are read from the source (string literals blanked first, so quoted
# text cannot bind a name); tests/test_upstream_internals.py fails when a release changes
# what ``variables()`` reports for these macros.
BINDING_MACROS = ("all", "exists", "exists_one", "map", "filter", "transformList",
                  "transformMap", "sortBy")
_BINDERS = re.compile(
    r"\.\s*(?:" + "|".join(BINDING_MACROS) + r")\s*\(\s*"
    r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:,\s*([A-Za-z_][A-Za-z0-9_]*)\s*)?,"
)
_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"' + r"|'(?:\\.|[^'\\])*'")


class GuardError(ValueError):
    """A ``when`` expression that cannot be used; ``hint`` may suggest a fix."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class CelGuard:
    """A compiled ``when`` condition bound to the workflow's declared fields."""

    __slots__ = ("_bindings", "_program", "text")

    def __init__(self, text: str, program: cel.Program, fields: Mapping[str, FieldDef],
                 names: list[str]) -> None:
        self.text = text
        self._program = program
        self._bindings = tuple((name, fields[name]) for name in names)

    def __repr__(self) -> str:
        return f"CelGuard({self.text!r})"

    def evaluate(self, data: Mapping[str, Any]) -> bool:
        """Does the condition hold for ``data`` (the case data after the event)?"""
        context = {name: _bind(spec, data.get(name)) for name, spec in self._bindings}
        try:
            result = self._program.execute(context)
        except Exception:
            # The library raises ValueError/TypeError/RuntimeError/IndexError and more;
            # any failure means the condition was not shown to hold.
            return False
        return result is True


def compile_guard(text: str, fields: Mapping[str, FieldDef]) -> CelGuard:
    """Compile and check ``text``; :class:`GuardError` says what is wrong with it."""
    guard = check_guard(text, fields)
    assert guard is not None  # only fields named as unusable make it None
    return guard


def check_guard(text: str, fields: Mapping[str, FieldDef],
                unusable: Collection[str] = ()) -> CelGuard | None:
    """Like :func:`compile_guard`, for a workflow with broken field declarations.

    ``unusable`` names fields that are declared but broken (already reported): an
    expression using one is checked for syntax only, and None is returned.
    """
    if not text.strip():
        raise GuardError("empty `when` condition", "remove `when` or write a condition")
    try:
        program = cel.compile(text)
    except Exception as exc:  # the library reports syntax errors as ValueError
        raise GuardError(f"invalid CEL in `when`: {_first_line(exc)}",
                         "CEL uses &&, ||, !, ==, != and double-quoted strings") from None
    bound = bound_names(text)
    names = [n for n in program.variables() if n not in bound or n in fields]
    if any(n in unusable for n in names):
        return None
    unknown = [n for n in names if n not in fields]
    if unknown:
        near = difflib.get_close_matches(unknown[0], list(fields), n=1)
        listed = ", ".join(f"'{n}'" for n in unknown)
        noun = "field" if len(unknown) == 1 else "fields"
        raise GuardError(
            f"`when` uses undeclared {noun} {listed}",
            f"did you mean '{near[0]}'?" if near else "declare it under `fields`",
        )
    guard = CelGuard(text, program, fields, names)
    _check_boolean(guard, [fields[n] for n in names])
    return guard


def bound_names(text: str) -> set[str]:
    """The names that comprehension macros bind in ``text`` (not fields of the case)."""
    code = _STRINGS.sub('""', text)
    return {n for pair in _BINDERS.findall(code) for n in pair if n}


def _check_boolean(guard: CelGuard, specs: list[FieldDef]) -> None:
    """Reject a condition that cannot give true/false for the declared field types.

    The CEL package has no static type checker, so the expression is run against typed
    sample values of its fields: zero values, sample values, and each enum value. Any
    non-boolean result is an error, and so is a type error (the library's ``TypeError``:
    "no such overload", as in ``consent || risk_level``) or an unknown function on any
    sample. Other failures count only if every sample fails: ``tags[0]`` fails on ``[]``
    but is fine on a real list.
    """
    rows = _sample_rows(specs)
    failures: list[str] = []
    for row in rows:
        try:
            result = guard._program.execute(row)
        except Exception as exc:
            message = _first_line(exc)
            if isinstance(exc, TypeError) or "Undefined variable or function" in message:
                raise GuardError(f"`when` does not fit the declared field types: {message}",
                                 "check the field types under `fields`") from None
            failures.append(message)
            continue
        if not isinstance(result, bool):
            raise GuardError(
                f"`when` must give true or false, but gives {_cel_type(result)}",
                "compare the value, e.g. `x == \"...\"` or `x > 0`",
            )
    if len(failures) == len(rows):
        raise GuardError(f"`when` cannot be evaluated for the declared field types: "
                         f"{failures[0]}")


def _sample_rows(specs: list[FieldDef]) -> list[dict[str, Any]]:
    def value(spec: FieldDef, pick: int) -> Any:
        if spec.type == "enum":
            options = [*spec.values, ""]
            return options[pick % len(options)]
        return (_ZERO, _SAMPLE)[pick % 2][spec.type]

    widest = max([len(s.values) + 1 for s in specs if s.type == "enum"] + [2])
    rows = [{s.name: value(s, pick) for s in specs} for pick in range(widest)]
    # Mixed rows reach the branches that `a && b` / `a || b` short-circuit past.
    rows.append({s.name: value(s, 1 if s.type == "bool" else 0) for s in specs})
    rows.append({s.name: value(s, 0 if s.type == "bool" else 1) for s in specs})
    return rows


def _bind(spec: FieldDef, value: Any) -> Any:
    if value is None:
        value = spec.default
        if value is None:
            return _ZERO[spec.type]
    if spec.type == "date" and isinstance(value, date):
        return value.isoformat()
    if spec.type == "datetime":
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
    if spec.type == "list" and isinstance(value, tuple):
        return list(value)
    return value


def _cel_type(value: Any) -> str:
    if value is None:
        return "null"
    names = {str: "a string", int: "an integer", float: "a number", list: "a list",
             dict: "a map", datetime: "a timestamp"}
    return names.get(type(value), type(value).__name__)


def _first_line(exc: BaseException) -> str:
    """The library's message, shortened to what a coordinator needs."""
    text = str(exc).strip()
    syntax = re.search(r"<input>:(\d+):(\d+): Syntax error: (.*)", text)
    if syntax:
        line, col, what = syntax.groups()
        # The parser's own depth limit surfaces as a Rust debug dump; say what it means.
        if "Recursion limit" in what:
            what = "nested too deeply"
        where = f"column {col}" if line == "1" else f"line {line}, column {col}"
        return f"syntax error at {where} of the expression: {what}"
    text = text.splitlines()[0] if text else type(exc).__name__
    # The library appends general advice after the first sentence; keep the diagnosis.
    return text.split(". ")[0].rstrip(".")
