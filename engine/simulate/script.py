"""Simulation scripts: a scripted case for ``referral simulate``, read and checked.

A script gives the case's start (local time in the workflow's zone), who holds each role,
the initial data, the steps to take and when to stop::

    start: 2026-03-02 09:00
    assign: {coordinator: Northshire Council, police: Northshire Prevent}
    data: {referral_reason: "..."}
    steps:
      - {at: +1 business day, fire: accept, as: coordinator}
      - {at: 2026-03-12 10:00, ack: screening_deadline, as: police_supervisor}
    until: +6 months

A step's ``at`` is an absolute local time, or an offset (``+3 business days``, ``+2 hours``,
``+P1M``) counted from the previous step (the first step counts from ``start``); ``+0
hours`` is the same moment as the previous step, taken after it. ``until`` is
an absolute local time or an offset from ``start``. Every step time is resolved here, once,
with the workflow's own business calendar, so a mistake is reported before anything runs,
with the script's line and column.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from engine.definitions.durations import parse_duration
from engine.definitions.model import SYSTEM_ROLE, Definition, Mark
from engine.definitions.yamlsource import Document, YamlProblems, parse_yaml
from engine.errors import InvalidInput, Problem
from engine.timers.calendar import calendar_for

__all__ = ["Script", "Step", "parse_script"]

TOP_KEYS = ("start", "assign", "data", "steps", "until")
# Far wider than any plan needs, and far enough from datetime's year 9999 that durations
# (at most 100 years) and the run's horizon never overflow.
YEARS = range(1970, 2200)
STEP_KEYS = ("at", "fire", "ack", "as", "data")


@dataclass(frozen=True, slots=True)
class Step:
    """One scripted action at a resolved instant (aware UTC)."""

    index: int
    line: int
    at: datetime
    action: Literal["fire", "ack"]
    # The trigger to fire, or the timer whose latest escalation is acknowledged.
    name: str
    role: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Script:
    path: str
    start: datetime
    # role -> agency name; one agency may hold several roles.
    assign: Mapping[str, str]
    data: Mapping[str, Any]
    steps: tuple[Step, ...]
    # None: run until nothing is left to happen.
    until: datetime | None
    data_line: int = 1
    # Where ``data`` and each of its keys stand, to locate a value the engine refuses.
    data_marks: Mapping[str, Mark] = field(default_factory=dict)

    def data_problem(self, message: str, field_name: object = None) -> Problem:
        """``message`` about the initial data, at the key it names (else at ``data``)."""
        mark = self.data_marks.get(str(field_name)) or self.data_marks.get("")
        line, col = (mark.line, mark.col) if mark else (self.data_line, 1)
        return Problem(self.path, line, col, message)


class _Reader:
    """Collects every problem of a script, each at its line and column."""

    def __init__(self, doc: Document, defn: Definition) -> None:
        self.doc = doc
        self.defn = defn
        self.zone = ZoneInfo(defn.timezone)
        self.calendar = calendar_for(defn)
        self.problems: list[Problem] = []

    def fail(self, loc: tuple[Any, ...], message: str, hint: str | None = None,
             *, key: bool = False) -> None:
        self.problems.append(self.doc.problem(loc, message, hint, key=key))

    def unknown_keys(self, loc: tuple[Any, ...], value: Mapping[Any, Any],
                     allowed: tuple[str, ...], what: str) -> None:
        for key in value:
            if key not in allowed:
                near = difflib.get_close_matches(str(key), allowed, n=1)
                hint = (f"did you mean '{near[0]}'?" if near
                        else f"{what} keys: {', '.join(allowed)}")
                self.fail((*loc, key), f"unknown key {key!r} in {what}", hint, key=True)

    def name(self, loc: tuple[Any, ...], value: Any, known: list[str], what: str,
             *, key: bool = False) -> str | None:
        if not isinstance(value, str) or not value:
            self.fail(loc, f"expected a {what} name", key=key)
            return None
        if value not in known:
            near = difflib.get_close_matches(value, known, n=1)
            hint = f"did you mean '{near[0]}'?" if near else f"{what}s: {', '.join(known)}"
            self.fail(loc, f"workflow {self.defn.workflow} has no {what} {value!r}", hint,
                      key=key)
            return None
        return value

    def parse_instant(self, value: Any) -> datetime | None:
        """An absolute local time ('2026-03-02 09:00'); one with an offset is kept as given.

        None if it is not a time at all; ``_BadInstant`` if it is one the run cannot use.
        """
        if isinstance(value, bool) or not isinstance(value, str | int):
            return None
        try:
            parsed = datetime.fromisoformat(str(value).strip())
        except ValueError:
            return None
        if parsed.year not in YEARS:
            raise _BadInstant(f"{value!r} is outside the years a simulation covers "
                              f"({YEARS.start} to {YEARS.stop - 1})")
        if parsed.tzinfo is None:
            local = parsed.replace(tzinfo=self.zone)
            # A time skipped when the clocks go forward would silently move by an hour.
            if local.astimezone(UTC).astimezone(self.zone).replace(tzinfo=None) != parsed:
                raise _BadInstant(
                    f"{value!r} does not exist in {self.defn.timezone}: the clocks go "
                    "forward at that time", "pick a time an hour later")
            parsed = local
        return parsed.astimezone(UTC)

    def absolute(self, loc: tuple[Any, ...], value: Any) -> tuple[datetime | None, bool]:
        """(the instant or None, whether a problem with it was already reported)."""
        try:
            return self.parse_instant(value), False
        except _BadInstant as exc:
            self.fail(loc, exc.message, exc.hint)
            return None, True

    def instant(self, loc: tuple[Any, ...], value: Any) -> datetime | None:
        parsed, reported = self.absolute(loc, value)
        if parsed is None and not reported:
            self.fail(loc, f"expected a local time such as '2026-03-02 09:00', got {value!r}")
        return parsed

    def when(self, loc: tuple[Any, ...], value: Any, base: datetime) -> datetime | None:
        """An absolute local time, or an offset ('+3 business days') from ``base``."""
        if isinstance(value, str) and value.strip().startswith("+"):
            text = value.strip()
            if _is_zero(text[1:].strip()):
                # "+0 hours": the same moment as the step before, in the order written.
                return base
            try:
                duration = parse_duration(text[1:].strip())
            except ValueError as exc:
                self.fail(loc, f"bad offset {text!r}: {exc}")
                return None
            at = self.calendar.add(base, duration)
            if at.astimezone(self.zone).year not in YEARS:
                self.fail(loc, f"offset {text!r} ends in {at.astimezone(self.zone).year}, "
                          f"after the years a simulation covers ({YEARS.start} to "
                          f"{YEARS.stop - 1})")
                return None
            return at
        parsed, reported = self.absolute(loc, value)
        if parsed is None and not reported:
            hint = None
            if isinstance(value, str):
                try:
                    parse_duration(value)
                    hint = f"write an offset with a leading '+': '+{value.strip()}'"
                except ValueError:
                    pass
            self.fail(loc, "expected a local time such as '2026-03-02 09:00' or an offset "
                      f"such as '+3 business days', got {value!r}", hint)
        return parsed

    def local(self, at: datetime) -> str:
        return at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M %Z")


# A duration whose every number is zero ("0 hours", "PT0H"); _is_zero checks the unit.
_ZERO = re.compile(r"^0+\s+[A-Za-z][A-Za-z ]*$|^P(?:[0]+[YMWD])*(?:T(?:0+[HMS])+)?$")


def _is_zero(text: str) -> bool:
    """Whether ``text`` is a well-formed duration of nothing (durations must be positive,
    offsets may be zero)."""
    candidate = text.upper() if text[:1] in "pP" else text
    if candidate in ("P", "PT") or not _ZERO.match(candidate):
        return False
    try:
        parse_duration(re.sub(r"0+", "1", text))
    except ValueError:
        return False
    return True


class _BadInstant(ValueError):
    """A well-formed time the run cannot use: out of range, or skipped by a DST change."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _mapping(reader: _Reader, loc: tuple[Any, ...], value: Any, what: str) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        reader.fail(loc, f"{what} must be a mapping")
        return {}
    return value


def _assignments(reader: _Reader, raw: Any) -> dict[str, str]:
    assign: dict[str, str] = {}
    roles = list(reader.defn.roles)
    given = _mapping(reader, ("assign",), raw, "assign")
    for role, agency in given.items():
        if reader.name(("assign", role), role, roles, "role", key=True) is None:
            continue
        if not isinstance(agency, str) or not agency.strip():
            reader.fail(("assign", role), f"role {role!r} needs an agency name")
            continue
        assign[role] = agency.strip()
    if not given:
        reader.fail(("assign",), "assign at least one role to an agency (role: agency name)")
    return assign


def _step(reader: _Reader, i: int, raw: Any, previous: datetime) -> Step | None:
    loc: tuple[Any, ...] = ("steps", i)
    if not isinstance(raw, dict):
        reader.fail(loc, "a step must be a mapping with at, fire or ack, and as")
        return None
    reader.unknown_keys(loc, raw, STEP_KEYS, "step")
    actions = [k for k in ("fire", "ack") if k in raw]
    if len(actions) != 1:
        reader.fail(loc, "a step needs exactly one of 'fire: TRIGGER' or 'ack: TIMER'")
        return None
    action: Literal["fire", "ack"] = "fire" if actions[0] == "fire" else "ack"
    if "at" not in raw:
        reader.fail(loc, "a step needs 'at' (a local time, or an offset such as '+2 hours')")
        return None
    if "as" not in raw:
        reader.fail(loc, "a step needs 'as: ROLE' (who acts)")
        return None
    at = reader.when((*loc, "at"), raw["at"], previous)
    role = reader.name((*loc, "as"), raw["as"], [*reader.defn.roles, SYSTEM_ROLE], "role")
    if action == "fire":
        triggers = sorted({t.trigger for t in reader.defn.transitions})
        name = reader.name((*loc, "fire"), raw["fire"], triggers, "trigger")
    else:
        timers = [t.name for t in reader.defn.timers]
        name = reader.name((*loc, "ack"), raw["ack"], timers, "timer")
        if "data" in raw:
            reader.fail((*loc, "data"), "an acknowledgement carries no data", key=True)
        if role == SYSTEM_ROLE:
            reader.fail((*loc, "as"), "the system does not acknowledge escalations",
                        "acknowledge as one of the roles the escalation notified")
            role = None
    data = _mapping(reader, (*loc, "data"), raw.get("data"), "data")
    if at is not None and at < previous:
        reader.fail((*loc, "at"), f"this step is at {reader.local(at)}, before the previous "
                    f"step or the start ({reader.local(previous)})")
        return None
    if at is None or role is None or name is None:
        return None
    line = reader.doc.mark(loc).line
    return Step(index=i, line=line, at=at, action=action, name=name, role=role, data=data)


def parse_script(text: str, path: str, defn: Definition) -> Script:
    """Read a script for ``defn``; InvalidInput listing every problem, each at its line."""
    if not text.strip():
        raise _error([Problem(path, 1, 1, "the script is empty: expected start, assign, "
                                          "data, steps and until")])
    try:
        doc = parse_yaml(text, path)
    except YamlProblems as exc:
        raise _error([_for_script(p) for p in exc.problems]) from None
    reader = _Reader(doc, defn)
    raw: dict[Any, Any] = doc.data
    reader.unknown_keys((), raw, TOP_KEYS, "script")
    start: datetime | None = None
    if "start" not in raw:
        reader.fail((), "the script needs 'start' (local time the case opens)")
    else:
        start = reader.instant(("start",), raw["start"])
    assign = _assignments(reader, raw.get("assign"))
    data = _mapping(reader, ("data",), raw.get("data"), "data")
    steps: list[Step] = []
    until: datetime | None = None
    if start is not None:
        steps = _steps(reader, raw.get("steps"), start)
        until = _until(reader, raw.get("until"), start, steps)
    if reader.problems or start is None:
        raise _error(reader.problems)
    return Script(
        path=path,
        start=start,
        assign=assign,
        data=data,
        steps=tuple(steps),
        until=until,
        data_line=doc.mark(("data",)).line,
        data_marks={"": doc.mark(("data",)),
                    **{str(k): doc.key_mark(("data", k)) for k in data}},
    )


def _steps(reader: _Reader, raw_steps: Any, start: datetime) -> list[Step]:
    """The steps, each offset counted from the one before (the first from ``start``)."""
    if raw_steps is None:
        return []
    if not isinstance(raw_steps, list):
        reader.fail(("steps",), "steps must be a list")
        return []
    steps: list[Step] = []
    previous = start
    for i, item in enumerate(raw_steps):
        step = _step(reader, i, item, previous)
        if step is not None:
            steps.append(step)
            previous = step.at
    return steps


def _until(reader: _Reader, raw: Any, start: datetime, steps: list[Step]) -> datetime | None:
    if raw is None:
        return None
    until = reader.when(("until",), raw, start)
    if until is not None and until < start:
        reader.fail(("until",), f"until is {reader.local(until)}, before the start "
                    f"({reader.local(start)})")
    elif until is not None and steps and steps[-1].at > until:
        late = steps[-1]
        reader.fail(("steps", late.index, "at"), f"this step is at "
                    f"{reader.local(late.at)}, after until ({reader.local(until)})")
    return until


def _for_script(problem: Problem) -> Problem:
    """The YAML reader speaks of workflow definitions; say 'script' where it matters."""
    if problem.message.startswith("expected a mapping at the top level"):
        got = problem.message.rpartition(", got ")[2]
        return replace(problem, message="a script is a mapping with start, assign, data, "
                       f"steps and until, got {got}")
    return problem


def _error(problems: list[Problem]) -> InvalidInput:
    ordered = sorted(problems, key=lambda p: (p.line, p.col))
    return InvalidInput(
        "\n".join(p.format() for p in ordered),
        problems=[asdict(p) for p in ordered],
    )
