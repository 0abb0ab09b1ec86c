"""Human output of cases and their history: words and plain values, never Python reprs.

``--json`` prints the views' own ``as_dict()``; this is the reading for people. Values
are printed as the CLI accepts them (``true``, ``3``, ``text``), dictionaries and lists
as ``key=value`` and comma lists.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from itertools import pairwise
from typing import Any

from engine import CaseView, EventView


def value_text(value: Any) -> str:
    """A field value as someone would type it after ``--data KEY=``."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={value_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(value_text(v) for v in value)
    if isinstance(value, datetime):
        return value.isoformat()
    return json.dumps(value, default=str)


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 agency``, ``2 agencies``."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def case_lines(view: CaseView) -> Iterable[str]:
    status = "closed" if view.closed else "open"
    # "revision" is the case's own change counter (--expected-version); the workflow's
    # version is the "v1" beside its name.
    yield (
        f"case {view.id}  {view.workflow} v{view.workflow_version}  ({status}, "
        f"revision {view.version})"
    )
    yield f"  state: {', '.join(view.state)}"
    yield f"  read as: {', '.join(view.roles)}"
    for role, held in view.assignments.items():
        yield f"  {role}: {held.agency or held.agency_id}"
    for key, value in view.data.items():
        yield f"  data {key}: {value_text(value)}"
    if view.withheld:
        yield f"  withheld: {', '.join(view.withheld)}"
    for name, info in view.milestones.items():
        yield f"  milestone {name}: {info.at.isoformat()} by {info.role}"
    for timer in view.timers:
        label = timer.name if timer.step == 0 else f"{timer.name} step {timer.step}"
        yield f"  timer {label} due {timer.due_at.isoformat()}"
    if view.allowed:
        triggers = sorted({a.trigger for a in view.allowed})
        yield f"  allowed now: {', '.join(triggers)}"


def _details(data: Mapping[str, Any]) -> str:
    parts = [
        f"{key.replace('_', ' ')}: {value_text(value)}"
        for key, value in data.items()
        if value not in ({}, [], None, "")
    ]
    return "; ".join(parts)


def event_line(event: EventView) -> str:
    who = event.role if event.agency_id is None else f"{event.role} (agency {event.agency_id})"
    what = event.kind + (f" {event.trigger}" if event.trigger else "")
    move = ""
    if event.from_state != event.to_state:
        move = f"  {', '.join(event.from_state) or '-'} -> {', '.join(event.to_state)}"
    details = _details(event.data)
    extra = f"  ({details})" if details else ""
    hidden = f"  [withheld: {', '.join(event.withheld)}]" if event.withheld else ""
    return f"{event.seq:>4} {event.at.isoformat()}  {what} by {who}{move}{extra}{hidden}"


def out_of_order(events: list[EventView]) -> list[int]:
    """Seqs of events timed before the event listed above them."""
    return [
        later.seq
        for earlier, later in pairwise(events)
        if later.at < earlier.at
    ]
