"""The raw shape of a workflow document as pydantic models, and its errors located.

Every pydantic error is mapped back to ``path:line:col`` through its ``loc``: an unknown
key points at the key, a missing key at the mapping that lacks it, a wrong value at the
value. Names are plain strings here; whether they refer to anything is ``checks.py``'s job.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from engine.definitions.model import Duration
from engine.definitions.notice_spec import Notices
from engine.definitions.schema_values import (
    MAX_VERSION,
    _duration,
    _empty_list,
    _empty_mapping,
    _iso_date,
    _one_or_many,
    _positive,
    _version,
)
from engine.definitions.yamlsource import Document, Path, kind_of
from engine.errors import Problem

FieldTypeName = Literal["string", "text", "int", "bool", "date", "datetime", "enum", "list"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


Names = Annotated[list[StrictStr], BeforeValidator(_one_or_many)]
DurationValue = Annotated[Duration, PlainValidator(_duration)]
HolidayDate = Annotated[date, PlainValidator(_iso_date)]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CalendarSpec(Spec):
    country: StrictStr | None = None
    subdivision: StrictStr | None = None
    workdays: list[Weekday] = ["mon", "tue", "wed", "thu", "fri"]
    extra_holidays: Annotated[list[HolidayDate], BeforeValidator(_empty_list)] = []


class RoleSpec(Spec):
    description: StrictStr | None = None


class FieldSpec(Spec):
    type: FieldTypeName
    values: list[StrictStr] | None = None
    default: Any = None
    visible_to: Names | None = None
    description: StrictStr | None = None


class StateSpec(Spec):
    initial: StrictBool = False
    final: StrictBool = False
    owner: StrictStr | None = None
    parallel: dict[StrictStr, Annotated[TrackSpec, BeforeValidator(_empty_mapping)]] | None = None
    join: StrictStr | None = None
    notify: Notices = []
    set_: dict[StrictStr, Any] = Field(default={}, alias="set")
    description: StrictStr | None = None


class TrackSpec(Spec):
    initial: StrictStr | None = None
    states: dict[StrictStr, Annotated[StateSpec, BeforeValidator(_empty_mapping)]]
    description: StrictStr | None = None


class MilestoneSpec(Spec):
    on: Names | None = None
    on_enter: StrictStr | None = None
    description: StrictStr | None = None


class TransitionSpec(Spec):
    trigger: StrictStr
    from_: Names = Field(alias="from")
    to: StrictStr
    by: Names
    requires: Names = []
    needs: Names = []
    when: StrictStr | None = None
    set_: dict[StrictStr, Any] = Field(default={}, alias="set")
    notify: Notices = []
    description: StrictStr | None = None


class LadderStepSpec(Spec):
    after: DurationValue
    notify: Names


class TimerSpec(Spec):
    name: StrictStr
    in_: StrictStr = Field(alias="in")
    after: DurationValue
    remind: Names | None = None
    fire: StrictStr | None = None
    escalate: Annotated[list[LadderStepSpec], BeforeValidator(_empty_list)] = []
    restart_on: Names = []
    every: DurationValue | None = None
    at_most: Annotated[StrictInt, AfterValidator(_positive)] | None = None
    description: StrictStr | None = None


class SubjectsSpec(Spec):
    """Who may see the person a case is about, who may match them, and against what."""

    visible_to: Names | None = None
    match_by: Names | None = None
    pool: StrictStr | None = None
    description: StrictStr | None = None


def _mapping_of(item: Any) -> Any:
    return Annotated[dict[StrictStr, item], BeforeValidator(_empty_mapping)]


class WorkflowSpec(Spec):
    workflow: StrictStr
    version: Annotated[StrictInt, AfterValidator(_version)]
    title: StrictStr
    description: StrictStr | None = None
    timezone: StrictStr
    calendar: CalendarSpec | None = None
    roles: _mapping_of(Annotated[RoleSpec, BeforeValidator(_empty_mapping)])  # type: ignore[valid-type]
    fields: _mapping_of(FieldSpec) = {}  # type: ignore[valid-type]
    states: _mapping_of(Annotated[StateSpec, BeforeValidator(_empty_mapping)])  # type: ignore[valid-type]
    milestones: _mapping_of(MilestoneSpec) = {}  # type: ignore[valid-type]
    transitions: Annotated[list[TransitionSpec], BeforeValidator(_empty_list)]
    timers: Annotated[list[TimerSpec], BeforeValidator(_empty_list)] = []
    subjects: Annotated[SubjectsSpec, BeforeValidator(_empty_mapping)] | None = None
    outcome_field: StrictStr | None = None
    referrer_role: StrictStr | None = None
    email_fields: StrictBool = False


@dataclass(frozen=True)
class SchemaResult:
    """The validated document, or (with problems) the parts of it that were valid."""

    spec: WorkflowSpec
    problems: list[Problem]
    # Position in the document of each item kept in spec.transitions / spec.timers
    # (items that failed validation are left out of a partial spec).
    transition_index: tuple[int, ...] = ()
    timer_index: tuple[int, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.problems


def validate(doc: Document) -> SchemaResult:
    """Check the document's shape; on errors still return every valid part for checks."""
    try:
        spec = WorkflowSpec.model_validate(doc.data)
    except ValidationError as exc:
        problems = [_problem(doc, err) for err in exc.errors()]
        spec, index = _partial(doc.data)
        return SchemaResult(spec, problems, index["transitions"], index["timers"])
    return SchemaResult(spec, [], tuple(range(len(spec.transitions))),
                        tuple(range(len(spec.timers))))


_SECTIONS: dict[str, Any] = {
    "roles": RoleSpec, "fields": FieldSpec, "states": StateSpec, "milestones": MilestoneSpec,
}
_LISTS: dict[str, Any] = {"transitions": TransitionSpec, "timers": TimerSpec}


def _partial(data: dict[Any, Any]) -> tuple[WorkflowSpec, dict[str, tuple[int, ...]]]:
    """Salvage what validates item by item, so later checks can still report their share."""
    values: dict[str, Any] = {}
    for name in ("workflow", "title", "timezone", "description", "outcome_field",
                 "referrer_role"):
        values[name] = data.get(name) if isinstance(data.get(name), str) else None
    version = data.get("version")
    values["version"] = version if type(version) is int and 0 < version <= MAX_VERSION else None
    values["calendar"] = _try(CalendarSpec, data.get("calendar"))
    values["subjects"] = _try(SubjectsSpec, _empty_mapping(data.get("subjects")))
    for name, model in _SECTIONS.items():
        raw = data.get(name)
        items = raw.items() if isinstance(raw, dict) else ()
        valid = {k: _try(model, _empty_mapping(v)) for k, v in items if isinstance(k, str)}
        values[name] = {k: v for k, v in valid.items() if v is not None}
    index: dict[str, tuple[int, ...]] = {}
    for name, model in _LISTS.items():
        raw = data.get(name)
        kept = [(i, _try(model, v)) for i, v in enumerate(raw if isinstance(raw, list) else ())]
        values[name] = [item for _, item in kept if item is not None]
        index[name] = tuple(i for i, item in kept if item is not None)
    return WorkflowSpec.model_construct(**values), index


def _try(model: type[Spec], value: Any) -> Any:
    if value is None:
        return None
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "float_type": "a number",
}


def _problem(doc: Document, err: Any) -> Problem:
    raw_loc: tuple[Any, ...] = tuple(err["loc"])
    kind = err["type"]
    loc = _data_path(doc, raw_loc, kind)
    where = format_loc(loc)
    prefix = f"{where}: " if where else ""
    if kind == "extra_forbidden":
        key = loc[-1]
        allowed = _allowed_keys(loc[:-1])
        near = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f"did you mean '{near[0]}'?" if near else (
            f"allowed keys: {', '.join(allowed)}" if allowed else None)
        parent = format_loc(loc[:-1])
        return doc.problem(loc, f"unknown key '{key}'" + (f" in {parent}" if parent else ""),
                           hint, key=True)
    if kind == "missing":
        parent = format_loc(loc[:-1])
        return doc.problem(loc[:-1], (f"{parent}: " if parent else "")
                           + f"missing required key '{loc[-1]}'")
    at_key = bool(raw_loc) and raw_loc[-1] == "[key]"
    got = kind_of(err.get("input"))
    if kind in _EXPECTED:
        what = "a name" if at_key else _EXPECTED[kind]
        return doc.problem(loc, f"{prefix}expected {what}, got {got}", key=at_key)
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        options = [o.strip(" '") for o in expected.replace(" or ", ",").split(",")]
        near = difflib.get_close_matches(str(err.get("input")), options, n=1)
        return doc.problem(loc, f"{prefix}expected one of {expected}, got {got}",
                           f"did you mean '{near[0]}'?" if near else None)
    message = err["msg"].removeprefix("Value error, ")
    if kind == "positive":
        message = f"must be a positive integer, got {got}"
    return doc.problem(loc, f"{prefix}{message}", key=at_key)


def _data_path(doc: Document, loc: tuple[Any, ...], kind: str) -> Path:
    """Follow ``loc`` through the data, dropping pydantic's own parts (``[key]``,
    validator and union member names): what remains is a path into the document."""
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
    node: Any = doc.data
    path: list[Any] = []
    for i, part in enumerate(loc):
        in_dict = isinstance(node, dict) and _hashable(part) and part in node
        if in_dict or (isinstance(node, list) and type(part) is int and 0 <= part < len(node)):
            node = node[part]
        elif kind == "missing" and i == len(loc) - 1:
            pass  # the key that is not there
        else:
            continue
        path.append(part)
    return tuple(path)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def format_loc(loc: Path) -> str:
    """``('transitions', 2, 'by')`` -> ``transitions[2].by``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _allowed_keys(loc: Path) -> list[str]:
    """The keys the model at ``loc`` accepts, for 'did you mean' hints."""
    target: Any = WorkflowSpec
    for part in loc:
        target = _step(target, part)
        if target is None:
            return []
    target = _unwrap(target)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return [f.alias or name for name, f in target.model_fields.items()]
    return []


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = args[0]
        else:
            return tp


def _step(tp: Any, part: Any) -> Any:
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, f in tp.model_fields.items():
            if part in (name, f.alias):
                return f.annotation if not f.metadata else Annotated[(f.annotation, *f.metadata)]
        return None
    origin = typing.get_origin(tp)
    if origin is dict:
        return typing.get_args(tp)[1]
    if origin is list:
        return typing.get_args(tp)[0]
    return None


# Resolve the forward reference StateSpec -> TrackSpec -> StateSpec.
StateSpec.model_rebuild()
TrackSpec.model_rebuild()
WorkflowSpec.model_rebuild()
