"""The checked, frozen form of a workflow definition.

The loader produces a :class:`Definition`; the machine, diagrams, service and timers only
ever read it. Nothing here touches the database or a state machine library.

State paths are dotted (``support.therapy.intake``). A case's *configuration* is the
sorted tuple of its active leaf state paths: one path outside a parallel state, one per
track inside one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Protocol

FieldType = Literal["string", "text", "int", "bool", "date", "datetime", "enum", "list"]
StateKind = Literal["atomic", "parallel", "track"]

SYSTEM_ROLE = "system"
COORDINATOR_ROLE = "coordinator"


class Guard(Protocol):
    """A compiled ``when`` condition."""

    def evaluate(self, data: Mapping[str, Any]) -> bool: ...


@dataclass(frozen=True, slots=True)
class Mark:
    """Where a node stands in the source (1-based line and column)."""

    line: int
    col: int


@dataclass(frozen=True, slots=True)
class Duration:
    """A span of time in the contract's forms.

    ``months``/``days`` are calendar parts (wall-clock time is kept across DST),
    ``seconds`` is elapsed time, ``business_days`` counts the calendar's open days.
    """

    months: int = 0
    days: int = 0
    seconds: int = 0
    business_days: int = 0
    text: str = ""

    def __str__(self) -> str:
        return self.text or (
            f"{self.months}mo {self.days}d {self.seconds}s {self.business_days}bd"
        )


@dataclass(frozen=True, slots=True)
class CalendarDef:
    country: str | None = None
    subdivision: str | None = None
    # ISO weekday numbers, Monday = 0 as in date.weekday().
    workdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    extra_holidays: frozenset[date] = frozenset()


@dataclass(frozen=True, slots=True)
class FieldDef:
    name: str
    type: FieldType
    values: tuple[str, ...] = ()
    default: Any = None
    # None: every role on the case may read it.
    visible_to: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """Tell ``to`` what happened: a subject line and a sentence, never a field value."""

    to: tuple[str, ...]
    subject: str
    text: str


@dataclass(frozen=True, slots=True)
class StateDef:
    path: str
    name: str
    kind: StateKind = "atomic"
    parent: str | None = None
    initial: bool = False
    final: bool = False
    owner: str | None = None
    # For a parallel state: the state entered when every track is final.
    join: str | None = None
    # Direct children: tracks of a parallel state, states of a track.
    children: tuple[str, ...] = ()
    # For a track: the path of its initial child.
    initial_child: str | None = None
    mark: Mark = Mark(0, 0)
    # Told on entering the state; fields set to constants on entering it.
    notices: tuple[Notice, ...] = ()
    sets: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class TransitionDef:
    trigger: str
    # Expanded state paths (``"*"`` already replaced by every non-final top-level state).
    sources: tuple[str, ...]
    dest: str
    by: frozenset[str]
    requires: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    when: str | None = None
    # Position in the file: the first matching transition whose guard holds wins.
    index: int = 0
    mark: Mark = Mark(0, 0)
    # Fields set to constants when the transition fires (``set:``), after the event's data.
    sets: tuple[tuple[str, Any], ...] = ()
    notices: tuple[Notice, ...] = ()

    @property
    def internal(self) -> bool:
        """``to`` equals ``from``: the event is recorded without leaving the state."""
        return self.sources == (self.dest,)


@dataclass(frozen=True, slots=True)
class LadderStep:
    after: Duration
    notify: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TimerDef:
    name: str
    state: str
    after: Duration
    remind: tuple[str, ...] = ()
    fire: str | None = None
    escalate: tuple[LadderStep, ...] = ()
    restart_on: frozenset[str] = frozenset()
    mark: Mark = Mark(0, 0)
    # The reminder again every ``every`` while the state stays active, ``at_most`` in all.
    every: Duration | None = None
    at_most: int | None = None


@dataclass(frozen=True, slots=True)
class MilestoneDef:
    name: str
    on: frozenset[str] = frozenset()
    on_enter: str | None = None


@dataclass(frozen=True, slots=True)
class SubjectsDef:
    """``subjects:``: who sees the person a case is about and who decides on matches.

    Matching only compares cases of one ``pool``, so a programme that promises its
    clients isolation (an exit NGO) keeps them out of everyone else's candidates.
    """

    visible_to: frozenset[str] = frozenset()
    match_by: frozenset[str] = frozenset()
    pool: str = "default"

    def sees(self, roles: frozenset[str] | set[str]) -> bool:
        return bool(self.visible_to & set(roles))

    def matches(self, roles: frozenset[str] | set[str]) -> bool:
        return bool(self.match_by & set(roles))


@dataclass(frozen=True)
class Definition:
    """A whole checked workflow definition, immutable once loaded."""

    workflow: str
    version: int
    title: str
    timezone: str
    calendar: CalendarDef
    roles: tuple[str, ...]
    fields: Mapping[str, FieldDef]
    states: Mapping[str, StateDef]
    transitions: tuple[TransitionDef, ...]
    timers: tuple[TimerDef, ...]
    milestones: Mapping[str, MilestoneDef]
    source: str = field(default="", repr=False, compare=False)
    source_path: str = field(default="<string>", compare=False)
    # sha256 of the source text: identical re-deploys are no-ops.
    content_hash: str = ""
    # Compiled CEL guards keyed by their ``when`` text, built once at load time.
    guards: Mapping[str, Guard] = field(default_factory=dict, repr=False, compare=False)
    subjects: SubjectsDef = SubjectsDef()
    # The field every closing path must set (``outcome_field``), checked at load time.
    outcome_field: str | None = None
    # The role told of the case's opening (a receipt) and of its outcome when it closes.
    referrer_role: str | None = None
    # Email carries only what happened unless the workflow opts in to visible fields.
    email_fields: bool = False

    @property
    def key(self) -> tuple[str, int]:
        return (self.workflow, self.version)

    @property
    def initial_state(self) -> str:
        return next(s.path for s in self.states.values() if s.parent is None and s.initial)

    def top_level(self) -> list[StateDef]:
        return [s for s in self.states.values() if s.parent is None]

    def field_visible(self, name: str, roles: frozenset[str] | set[str]) -> bool:
        """May a reader holding ``roles`` on the case read field ``name``?"""
        spec = self.fields.get(name)
        if spec is None or spec.visible_to is None:
            return True
        # visible_to overrides even the coordinator's and system's default full view.
        return bool(spec.visible_to & set(roles))
