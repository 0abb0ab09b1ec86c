"""``referral simulate``: a scripted case on a virtual clock, through the real engine.

Nothing here models the workflow. A throw-away SQLite database is migrated, the definition
deployed, agencies created and the case opened with the engine's own functions; then the
clock jumps from one due moment to the next (the next scripted step, or the engine's
``next_due_at``) and at each one either the script's step goes through ``service.fire`` /
``acknowledge`` or the real ``tick`` fires what is due. The timeline is read back from the
case's audit history, so it shows exactly what the engine did. Only a refused step is
recorded here, from the engine's error, because a refusal changes nothing and so leaves
no audit event.

Timers due at the same moment as a step fire first: at that instant the deadline has
passed. A year of case time is a few dozen short transactions, well under a second.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.agencies import add_agency
from engine.cases import service
from engine.definitions.loader import read_source
from engine.definitions.model import SYSTEM_ROLE, Definition
from engine.errors import InvalidInput, NotFound, ReferralError
from engine.machine.deploy import compiled, deploy
from engine.simulate.script import Script, Step, parse_script
from engine.store.db import make_engine, session_factory, upgrade
from engine.store.tables import CaseEvent, Escalation
from engine.timers.escalations import acknowledge
from engine.timers.tick import next_due_at, tick

__all__ = ["Row", "Simulation", "run_simulation", "simulate", "workflow_source"]

# Without ``until`` a run stops when nothing is left to happen, or after this long.
HORIZON = timedelta(days=366 * 10)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
BATCH = 100


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the timeline, ``at`` in the workflow's zone.

    ``roles`` are the recipients of a reminder or escalation, and the acting role of
    anything else (``system`` for what timers do).
    """

    at: datetime
    kind: str
    timer: str | None = None
    step: int | None = None
    roles: tuple[str, ...] = ()
    trigger: str | None = None
    state: tuple[str, ...] = ()
    reason: str | None = None
    message: str | None = None
    # For people reading the table: milestones reached, joins, redirections, refusals.
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "at": self.at.isoformat(),
            "kind": self.kind,
            "timer": self.timer,
            "step": self.step,
            "roles": list(self.roles),
            "trigger": self.trigger,
            "state": list(self.state),
        }
        if self.kind == "rejected":
            row["reason"] = self.reason
            row["message"] = self.message
        return row


@dataclass(frozen=True, slots=True)
class Simulation:
    workflow: str
    version: int
    timezone: str
    start: datetime
    until: datetime | None
    rows: tuple[Row, ...]
    state: tuple[str, ...]
    closed: bool


def shipped_names() -> list[str]:
    folder = resources.files("workflows")
    return sorted(e.name[:-5] for e in folder.iterdir() if e.is_file() and e.name.endswith(".yaml"))


def workflow_source(name_or_path: str) -> tuple[str, str]:
    """(text, path) of a YAML file, or of a shipped workflow given by name."""
    candidate = Path(name_or_path)
    if candidate.is_file():
        return read_source(candidate), str(candidate)
    if name_or_path in shipped_names():
        entry = resources.files("workflows") / f"{name_or_path}.yaml"
        return entry.read_text(encoding="utf-8"), f"workflows/{name_or_path}.yaml"
    raise NotFound(
        f"no workflow file {name_or_path!r} and no shipped workflow of that name "
        f"(shipped: {', '.join(shipped_names())})",
        workflow=name_or_path,
    )


def simulate(workflow: str, script_text: str, script_path: str) -> Simulation:
    """Run a script against a shipped workflow (by name) or a workflow file."""
    text, path = workflow_source(workflow)
    return run_simulation(text, path, script_text, script_path)


def run_simulation(
    workflow_text: str, workflow_path: str, script_text: str, script_path: str
) -> Simulation:
    """Run a script in a database of its own; the definition is loaded once, by deploy."""
    with tempfile.TemporaryDirectory(prefix="referral-simulate-") as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'simulation.db'}")
        try:
            upgrade(engine)
            factory = session_factory(engine)
            defn = _deploy(factory, workflow_text, workflow_path)
            script = parse_script(script_text, script_path, defn)
            run = _Run(factory, defn, script)
            run.open()
            run.drive()
            return run.result()
        finally:
            engine.dispose()


def _deploy(factory: sessionmaker[Session], text: str, path: str) -> Definition:
    # Deploy time is not part of the case's story; the epoch keeps runs reproducible.
    with factory() as session, session.begin():
        done = deploy(session, text, path, now=EPOCH)
        return compiled(session, done.workflow, done.version).definition


class _Run:
    """One scripted case: opens it, drives the clock, turns audit events into rows."""

    def __init__(self, factory: sessionmaker[Session], defn: Definition, script: Script) -> None:
        self.factory = factory
        self.defn = defn
        self.script = script
        self.zone = ZoneInfo(defn.timezone)
        self.rows: list[Row] = []
        self.case_id = 0
        self.seq = 0
        self.state: tuple[str, ...] = ()
        self.closed = False
        self.agency_of: dict[str, int] = {}
        # The timer whose ``fire`` is being carried out: its own row is not "cancelled".
        self.firing: str | None = None
        # Index of the last transition row, which later milestone events annotate.
        self.last_transition: int | None = None
        self.pending_note = ""

    # -- setting up -----------------------------------------------------------------------

    def open(self) -> None:
        start = self.script.start
        with self.factory() as session, session.begin():
            ids: dict[str, int] = {}
            for name in dict.fromkeys(self.script.assign.values()):
                ids[name] = add_agency(session, name=name, now=start).agency.id
            self.agency_of = {role: ids[name] for role, name in self.script.assign.items()}
            try:
                view = service.open_case(
                    session,
                    workflow=self.defn.workflow,
                    version=self.defn.version,
                    assignments=self.agency_of,
                    data=dict(self.script.data),
                    now=start,
                )
            except InvalidInput as exc:
                problem = self.script.data_problem(
                    f"the case cannot be opened with this data: {exc.message}",
                    exc.details.get("field"),
                )
                raise InvalidInput(problem.format(), **{**exc.details,
                                                        "problems": [asdict(problem)]}) from None
            self.case_id = view.id
        self.collect()

    # -- the clock ------------------------------------------------------------------------

    def drive(self) -> None:
        steps = list(self.script.steps)
        until = self.script.until
        horizon = until if until is not None else self.script.start + HORIZON
        index = 0
        while True:
            step = steps[index] if index < len(steps) else None
            due = self.next_due()
            if due is not None and due <= horizon and (step is None or due <= step.at):
                self.tick(due)
            elif step is not None:
                self.do(step)
                index += 1
            else:
                break

    def next_due(self) -> datetime | None:
        with self.factory() as session:
            return next_due_at(session)

    def tick(self, now: datetime) -> None:
        result = tick(self.factory, now=now, batch_size=BATCH)
        if result.errors:
            failed = result.errors[0]
            raise ReferralError(
                f"the engine failed to fire timer row {failed.timer_id} at {now.isoformat()}:"
                f" {failed.error}",
                timer_id=failed.timer_id,
            )
        self.collect()

    def do(self, step: Step) -> None:
        agency = self.agency_of.get(step.role)
        if step.role != SYSTEM_ROLE and agency is None:
            self.reject(step, "role_not_assigned", f"no agency holds the role {step.role} on "
                        f"the case; assign it in the script (line {step.line})")
            return
        try:
            with self.factory() as session, session.begin():
                if step.action == "fire":
                    service.fire(
                        session, self.case_id, step.name, role=step.role, agency_id=agency,
                        data=dict(step.data), now=step.at,
                    )
                else:
                    self.ack(session, step, agency)
        except ReferralError as exc:
            reason = exc.details.get("reason") if isinstance(exc.details.get("reason"), str) \
                else exc.code
            self.reject(step, str(reason), exc.message)
            return
        self.collect()

    def ack(self, session: Session, step: Step, agency: int | None) -> None:
        """Acknowledge the latest reminder or escalation of the step's timer."""
        latest = session.scalar(
            select(Escalation.id)
            .where(Escalation.case_id == self.case_id, Escalation.timer_name == step.name)
            .order_by(Escalation.id.desc())
            .limit(1)
        )
        if latest is None:
            raise ReferralError(
                f"timer {step.name} has sent no reminder or escalation to acknowledge yet",
                reason="nothing_to_acknowledge",
            )
        if agency is None:
            raise ReferralError("the system does not acknowledge escalations",
                                reason="role_not_allowed")
        acknowledge(session, latest, agency_id=agency, now=step.at)

    def reject(self, step: Step, reason: str, message: str) -> None:
        fire = step.action == "fire"
        self.rows.append(
            Row(
                at=step.at.astimezone(self.zone),
                kind="rejected",
                timer=None if fire else step.name,
                trigger=step.name if fire else None,
                roles=(step.role,),
                state=self.state,
                reason=reason,
                message=message,
                # The case id means nothing in a throw-away database.
                note=f"line {step.line}: {re.sub(r'^case [0-9]+: ', '', message)}",
            )
        )

    # -- the timeline, from the audit history ---------------------------------------------

    def collect(self) -> None:
        with self.factory() as session:
            events = list(
                session.scalars(
                    select(CaseEvent)
                    .where(CaseEvent.case_id == self.case_id, CaseEvent.seq > self.seq)
                    .order_by(CaseEvent.seq)
                )
            )
        for event in events:
            self.seq = event.seq
            self.state = tuple(event.to_state) or self.state
            self.convert(event)

    def convert(self, event: CaseEvent) -> None:
        at = event.at.astimezone(self.zone)
        data: dict[str, Any] = dict(event.data or {})
        state = tuple(event.to_state)
        kind = event.kind
        if kind in ("opened", "transition"):
            self.transition_rows(event, at, data, state)
        elif kind == "milestone" and self.last_transition is not None:
            row = self.rows[self.last_transition]
            note = f"milestone {data.get('milestone')}"
            self.rows[self.last_transition] = replace(
                row, note=f"{row.note}; {note}" if row.note else note
            )
        elif kind == "timer_fired":
            if data.get("fire"):
                self.firing = data.get("timer")
            self.rows.append(Row(at, "fired", data.get("timer"), data.get("step"), (SYSTEM_ROLE,),
                                 data.get("fire"), state))
        elif kind in ("reminder", "escalation"):
            self.rows.append(Row(at, kind, data.get("timer"), data.get("step"),
                                 tuple(data.get("roles") or ()), None, state,
                                 note=self.pending_note))
            self.pending_note = ""
        elif kind == "ack":
            stopped = data.get("stopped_steps") or []
            note = f"stops step {', '.join(map(str, stopped))}" if stopped else ""
            self.rows.append(Row(at, "ack", data.get("timer"), data.get("step"), (event.role,),
                                 None, state, note=note))
        elif kind == "warning" and data.get("warning") == "timer_trigger_rejected":
            self.firing = None
            details = data.get("details") or {}
            reason = details.get("reason") if isinstance(details, dict) else None
            message = str(data.get("message", ""))
            self.rows.append(Row(at, "rejected", data.get("timer"), 0, (SYSTEM_ROLE,),
                                 data.get("trigger"), state, reason=str(reason or data.get("code")),
                                 message=message, note=message))
        elif kind == "warning" and data.get("roles"):
            self.pending_note = (f"no agency holds {', '.join(data['roles'])}: "
                                 "sent to the coordinator")

    def transition_rows(
        self, event: CaseEvent, at: datetime, data: dict[str, Any], state: tuple[str, ...]
    ) -> None:
        opened = event.kind == "opened"
        note = "case opened" if opened else ""
        if data.get("joined"):
            note = f"all tracks of {data['joined']} done"
        self.last_transition = len(self.rows)
        self.rows.append(Row(at, "transition", None, None, (event.role,), event.trigger, state,
                             note=note))
        started = set(data.get("timers_started") or ())
        for name in data.get("timers_cancelled") or ():
            # A restarted heartbeat, or the timer whose own ``fire`` caused this, was not
            # cancelled in any sense a coordinator would recognise.
            if name in started or name == self.firing:
                continue
            self.rows.append(Row(at, "cancelled", name, None, (), event.trigger, state))
        self.firing = None
        if not opened:
            self.closed = self.closed or self.is_final(state)

    def is_final(self, state: tuple[str, ...]) -> bool:
        spec = self.defn.states.get(state[0]) if len(state) == 1 else None
        return spec is not None and spec.parent is None and spec.final

    def result(self) -> Simulation:
        return Simulation(
            workflow=self.defn.workflow,
            version=self.defn.version,
            timezone=self.defn.timezone,
            start=self.script.start.astimezone(self.zone),
            until=self.script.until.astimezone(self.zone) if self.script.until else None,
            rows=tuple(self.rows),
            state=self.state,
            closed=self.closed,
        )
