"""Load a workflow definition: parse, check the shape, check the names and graph, build.

Each stage reports every problem it finds; a later stage still runs on whatever the
earlier one could salvage, so one run lists (nearly) everything wrong with a file.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path as FilePath

from engine.definitions.checker import Analysis
from engine.definitions.checks import run_checks
from engine.definitions.model import (
    SYSTEM_ROLE,
    CalendarDef,
    Definition,
    LadderStep,
    MilestoneDef,
    Notice,
    StateDef,
    TimerDef,
    TransitionDef,
)
from engine.definitions.notice_spec import NoticeSpec
from engine.definitions.outcome_checks import state_specs
from engine.definitions.schema import SchemaResult, WorkflowSpec, validate
from engine.definitions.subject_checks import build_subjects, check_subjects
from engine.definitions.yamlsource import Document, YamlProblems, parse_yaml
from engine.errors import DefinitionError, Problem

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def load_definition(text: str, path: str = "<string>") -> Definition:
    """The checked, frozen definition in ``text``; :class:`DefinitionError` lists every
    problem (``path:line:col``) otherwise."""
    try:
        doc = parse_yaml(text, path, keep_going=True)
    except YamlProblems as exc:
        raise DefinitionError(exc.problems) from None
    result = validate(doc)
    analysis = run_checks(doc, result)
    problems = doc.problems + result.problems + analysis.problems + check_subjects(
        doc, result.spec)
    if problems:
        raise DefinitionError(_unique(problems))
    return _build(text, doc, result, analysis)


def load_path(path: str | FilePath) -> Definition:
    """Read and load one file; an unreadable file is a problem, not a traceback."""
    return load_definition(read_source(path), str(path))


def read_source(path: str | FilePath) -> str:
    """The text of a workflow file; ``DefinitionError`` if it cannot be read as UTF-8."""
    name = str(path)
    try:
        return FilePath(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DefinitionError([Problem(name, 1, 1, f"the file is not UTF-8 text: {exc.reason}")]
                              ) from None
    except OSError as exc:
        raise DefinitionError([Problem(name, 1, 1, f"cannot read the file: "
                                       f"{exc.strerror or exc}")]) from None


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def _build(text: str, doc: Document, result: SchemaResult, analysis: Analysis) -> Definition:
    spec: WorkflowSpec = result.spec
    calendar = CalendarDef()
    if spec.calendar is not None:
        calendar = CalendarDef(
            country=spec.calendar.country,
            subdivision=spec.calendar.subdivision,
            workdays=frozenset(WEEKDAYS.index(d) for d in spec.calendar.workdays),
            extra_holidays=frozenset(spec.calendar.extra_holidays),
        )
    transitions = tuple(
        TransitionDef(
            trigger=t.trigger,
            sources=sources,
            dest=dest,
            by=frozenset(t.by),
            requires=tuple(t.requires),
            needs=tuple(t.needs),
            when=t.when,
            index=i,
            mark=doc.mark(("transitions", i)),
            sets=tuple(t.set_.items()),
            notices=_notices(t.notify),
        )
        for i, (t, sources, dest) in enumerate(
            zip(spec.transitions, analysis.sources, analysis.dests, strict=True))
        if dest is not None
    )
    timers = tuple(
        TimerDef(
            name=t.name,
            state=t.in_,
            after=t.after,
            remind=tuple(t.remind or ()),
            fire=t.fire,
            escalate=tuple(LadderStep(after=s.after, notify=tuple(s.notify))
                           for s in t.escalate),
            restart_on=frozenset(t.restart_on),
            mark=doc.mark(("timers", i)),
            every=t.every,
            at_most=t.at_most,
        )
        for i, t in enumerate(spec.timers)
    )
    milestones = {
        name: MilestoneDef(name=name, on=frozenset(m.on or ()), on_enter=m.on_enter)
        for name, m in spec.milestones.items()
    }
    return Definition(
        workflow=spec.workflow,
        version=spec.version,
        title=spec.title,
        timezone=spec.timezone,
        calendar=calendar,
        roles=tuple(r for r in spec.roles if r != SYSTEM_ROLE),
        fields=dict(analysis.fields),
        states=_with_notices(spec, analysis.states),
        transitions=transitions,
        timers=timers,
        milestones=milestones,
        source=text,
        source_path=doc.path,
        content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        guards=dict(analysis.guards),
        subjects=build_subjects(spec),
        outcome_field=spec.outcome_field,
        referrer_role=spec.referrer_role,
        email_fields=spec.email_fields,
    )


def _notices(specs: list[NoticeSpec]) -> tuple[Notice, ...]:
    return tuple(Notice(tuple(n.to), n.subject.strip(), n.text.strip()) for n in specs)


def _with_notices(spec: WorkflowSpec, states: dict[str, StateDef]) -> dict[str, StateDef]:
    """The checked states with what entering each one tells and sets."""
    built = dict(states)
    for path, state, _loc in state_specs(spec):
        if path in built and (state.notify or state.set_):
            built[path] = replace(built[path], notices=_notices(state.notify),
                                  sets=tuple(state.set_.items()))
    return built
