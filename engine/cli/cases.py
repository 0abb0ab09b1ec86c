"""``referral agency ...`` and ``referral case ...``: thin commands over the case service.

Each command parses its input, opens one session, calls one service function and commits
once. Without ``--agency`` a command acts as the administrator (the CLI already holds
the database), which reads and acts with the system's view.
"""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy.orm import Session

from engine.agencies import add_agency, agency_by_name, list_agencies
from engine.cases import service
from engine.cases.data import parse_assignments
from engine.cases.views import CaseView, EventView
from engine.cli.common import database, handle_errors, load_settings, out, print_json
from engine.clock import utcnow
from engine.errors import InvalidInput
from engine.machine.deploy import compiled

agency_app = typer.Typer(help="Agencies acting on cases.", no_args_is_help=True)
case_app = typer.Typer(help="Open, act on and read cases.", no_args_is_help=True)

JSON_OPT = typer.Option(False, "--json", help="Print JSON.")
DATA_OPT = typer.Option([], "--data", help="KEY=VALUE field value (repeatable).")
AGENCY_OPT = typer.Option(None, "--agency", help="Act as this agency (by name).")


@agency_app.command("add")
@handle_errors
def agency_add(
    name: str,
    webhook: str | None = typer.Option(None, "--webhook", help="Webhook URL."),
    email: str | None = typer.Option(None, "--email", help="Email address."),
    json: bool = JSON_OPT,
) -> None:
    """Register an agency; prints its API token (and webhook secret) once."""
    with database(load_settings()) as factory, factory() as session:
        created = add_agency(session, name=name, webhook=webhook, email=email, now=utcnow())
        session.commit()
        agency_id, agency_name = created.agency.id, created.agency.name
    if json:
        print_json(
            {
                "id": agency_id,
                "name": agency_name,
                "token": created.token,
                "webhook_secret": created.webhook_secret,
            }
        )
        return
    out.print(f"agency {agency_name} (id {agency_id}) added")
    out.print(f"API token (shown once): {created.token}")
    if created.webhook_secret:
        out.print(f"webhook secret (shown once): {created.webhook_secret}")


@agency_app.command("list")
@handle_errors
def agency_list(json: bool = JSON_OPT) -> None:
    """List agencies and their contact channels."""
    with database(load_settings()) as factory, factory() as session:
        rows = [
            {"id": a.id, "name": a.name, "webhook": a.webhook_url, "email": a.email}
            for a in list_agencies(session)
        ]
    if json:
        print_json(rows)
        return
    for row in rows:
        channels = ", ".join(str(v) for v in (row["webhook"], row["email"]) if v) or "-"
        out.print(f"{row['id']}: {row['name']}  ({channels})")


def _agency_id(session: Session, name: str | None) -> int | None:
    return None if name is None else agency_by_name(session, name).id


def _parse_roles(session: Session, pairs: list[str]) -> dict[str, int]:
    result: dict[str, int] = {}
    for pair in pairs:
        role, sep, name = pair.partition("=")
        if not sep or not role.strip() or not name.strip():
            raise InvalidInput(f"expected ROLE=AGENCY, got {pair!r}")
        result[role.strip()] = agency_by_name(session, name).id
    return result


def _print_case(view: CaseView, json: bool) -> None:
    if json:
        print_json(view)
        return
    status = "closed" if view.closed else "open"
    out.print(
        f"case {view.id}  {view.workflow} v{view.workflow_version}  version {view.version}"
        f"  ({status})",
        markup=False,
    )
    out.print(f"  state: {', '.join(view.state)}", markup=False)
    out.print(f"  read as: {', '.join(view.roles)}", markup=False)
    for role, held in view.assignments.items():
        out.print(f"  {role}: {held.agency or held.agency_id}", markup=False)
    for key, value in view.data.items():
        out.print(f"  data.{key} = {value!r}", markup=False)
    if view.withheld:
        out.print(f"  withheld: {', '.join(view.withheld)}", markup=False)
    for name, info in view.milestones.items():
        out.print(f"  milestone {name}: {info.at.isoformat()} by {info.role}", markup=False)
    for timer in view.timers:
        label = timer.name if timer.step == 0 else f"{timer.name} step {timer.step}"
        out.print(f"  timer {label} due {timer.due_at.isoformat()}", markup=False)
    if view.allowed:
        triggers = sorted({a.trigger for a in view.allowed})
        out.print(f"  allowed now: {', '.join(triggers)}", markup=False)


@case_app.command("open")
@handle_errors
def case_open(
    workflow: str,
    version: int | None = typer.Option(None, "--version", help="Default: the latest."),
    assign: list[str] = typer.Option([], "--assign", help="ROLE=AGENCY (repeatable)."),
    data: list[str] = DATA_OPT,
    agency: str | None = AGENCY_OPT,
    json: bool = JSON_OPT,
) -> None:
    """Open a case on a deployed workflow."""
    with database(load_settings()) as factory, factory() as session:
        defn = compiled(session, workflow, version).definition
        view = service.open_case(
            session,
            workflow=workflow,
            version=version,
            assignments=_parse_roles(session, assign),
            data=parse_assignments(defn, data),
            now=utcnow(),
            agency_id=_agency_id(session, agency),
        )
        session.commit()
    _print_case(view, json)


@case_app.command("fire")
@handle_errors
def case_fire(
    case: int,
    trigger: str,
    role: str = typer.Option(..., "--as", help="The role to act in."),
    agency: str | None = AGENCY_OPT,
    data: list[str] = DATA_OPT,
    expected_version: int | None = typer.Option(
        None, "--expected-version", help="Refuse if the case has moved on."
    ),
    json: bool = JSON_OPT,
) -> None:
    """Fire a trigger on a case."""
    with database(load_settings()) as factory, factory() as session:
        agency_id = _agency_id(session, agency)
        # Refuse a stranger before parsing data, so errors never reveal the case's fields.
        defn = service.definition_for_actor(session, case, agency_id=agency_id, role=role)
        view = service.fire(
            session,
            case,
            trigger,
            role=role,
            agency_id=agency_id,
            data=parse_assignments(defn, data),
            expected_version=expected_version,
            now=utcnow(),
        )
        session.commit()
    _print_case(view, json)


@case_app.command("assign")
@handle_errors
def case_assign(
    case: int,
    pair: str = typer.Argument(..., metavar="ROLE=AGENCY"),
    agency: str | None = AGENCY_OPT,
    json: bool = JSON_OPT,
) -> None:
    """Give a role on a case to an agency (as the coordinator, or as administrator)."""
    with database(load_settings()) as factory, factory() as session:
        ((role, target),) = _parse_roles(session, [pair]).items()
        view = service.assign(
            session, case, role, target, now=utcnow(), by_agency_id=_agency_id(session, agency)
        )
        session.commit()
    _print_case(view, json)


@case_app.command("show")
@handle_errors
def case_show(
    case: int,
    role: str | None = typer.Option(None, "--as", help="Read as this role."),
    agency: str | None = AGENCY_OPT,
    json: bool = JSON_OPT,
) -> None:
    """Show a case as an agency (or role) may see it."""
    with database(load_settings()) as factory, factory() as session:
        view = service.view(
            session, case, agency_id=_agency_id(session, agency), now=utcnow(), role=role
        )
    _print_case(view, json)


def _event_line(event: EventView) -> str:
    who = event.role if event.agency_id is None else f"{event.role} (agency {event.agency_id})"
    what = event.kind + (f" {event.trigger}" if event.trigger else "")
    move = ""
    if event.from_state != event.to_state:
        move = f"  {', '.join(event.from_state) or '-'} -> {', '.join(event.to_state)}"
    details: dict[str, Any] = {k: v for k, v in event.data.items() if v not in ({}, [], None)}
    extra = f"  {details}" if details else ""
    hidden = f"  [withheld: {', '.join(event.withheld)}]" if event.withheld else ""
    return f"{event.seq:>4} {event.at.isoformat()}  {what} by {who}{move}{extra}{hidden}"


@case_app.command("history")
@handle_errors
def case_history(
    case: int,
    role: str | None = typer.Option(None, "--as", help="Read as this role."),
    agency: str | None = AGENCY_OPT,
    json: bool = JSON_OPT,
) -> None:
    """The case's audit history, oldest first."""
    with database(load_settings()) as factory, factory() as session:
        events = service.history(session, case, agency_id=_agency_id(session, agency), role=role)
    if json:
        print_json(events)
        return
    for event in events:
        out.print(_event_line(event), markup=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(agency_app, name="agency")
    app.add_typer(case_app, name="case")
