"""``referral agency ...`` and ``referral case ...``: thin commands over the case service.

Each command parses its input, opens one session, calls one service function and commits
once. Without ``--agency`` a command acts as the administrator (the CLI already holds
the database), which reads and acts with the system's view.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import typer
from sqlalchemy.orm import Session

import engine
from engine import (
    SYSTEM_ROLE,
    CaseView,
    Definition,
    add_agency,
    agency_by_name,
    compiled,
    list_agencies,
    parse_assignments,
)
from engine.cli.caselist import CaseFilter, Status, list_cases, summary_line
from engine.cli.common import database, err, handle_errors, load_settings, out, print_json
from engine.cli.render import case_lines, event_line, out_of_order
from engine.cli.usage import PlainCommand, PlainGroup
from engine.clock import utcnow
from engine.errors import Forbidden, InvalidInput

agency_app = typer.Typer(
    cls=PlainGroup, help="Agencies acting on cases.", no_args_is_help=True
)
case_app = typer.Typer(
    cls=PlainGroup, help="Open, act on and read cases.", no_args_is_help=True
)

JSON_OPT = typer.Option(False, "--json", help="Print JSON.")
DATA_OPT = typer.Option(
    [], "--data", metavar="KEY=VALUE", help="A field value (repeatable)."
)
AGENCY_OPT = typer.Option(None, "--agency", help="Act as this agency (by name).")


@agency_app.command("add", cls=PlainCommand)
@handle_errors
def agency_add(
    name: str,
    webhook: str | None = typer.Option(None, "--webhook", help="Webhook URL."),
    email: str | None = typer.Option(None, "--email", help="Email address."),
    print_token: bool = typer.Option(
        False, "--print-token", help="Print only the API token: TOKEN=$(referral agency add ...)."
    ),
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
    if print_token:
        out.print(created.token)
        if created.webhook_secret:
            err.print(f"webhook secret (shown once): {created.webhook_secret}")
        return
    out.print(f"agency {agency_name} (id {agency_id}) added")
    out.print(f"API token (shown once): {created.token}")
    if created.webhook_secret:
        out.print(f"webhook secret (shown once): {created.webhook_secret}")


@agency_app.command("list", cls=PlainCommand)
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


def _known_role(defn: Definition, role: str, *, system: bool = False) -> str:
    """``role`` if the workflow has it, else InvalidInput with the nearest name."""
    roles = [*defn.roles, *([SYSTEM_ROLE] if system else [])]
    if role in roles:
        return role
    near = difflib.get_close_matches(role, roles, n=1)
    hint = f"; did you mean {near[0]!r}?" if near else f" (roles: {', '.join(roles)})"
    raise InvalidInput(f"workflow {defn.workflow} has no role {role!r}{hint}", role=role)


def _parse_roles(
    session: Session, pairs: list[str], defn: Definition | None = None
) -> dict[str, int]:
    result: dict[str, int] = {}
    for pair in pairs:
        role, sep, name = pair.partition("=")
        if not sep or not role.strip() or not name.strip():
            raise InvalidInput(f"expected ROLE=AGENCY, got {pair!r}")
        if defn is not None:
            _known_role(defn, role.strip())
        result[role.strip()] = agency_by_name(session, name).id
    return result


def _actor(role: str | None, agency: str | None) -> str:
    """The role a write acts in: a role only through an agency, else the system.

    ``--as police`` alone would be recorded "by police" with no agency behind it.
    """
    if role is not None and agency is None:
        raise InvalidInput(
            f"--as {role} needs --agency AGENCY: a role acts through the agency holding it "
            "(leave out both to act as the system)",
            role=role,
        )
    if role is None and agency is not None:
        raise InvalidInput("--agency needs --as ROLE: the role the agency acts in")
    return role or SYSTEM_ROLE


@contextmanager
def _role_hint(session: Session, case_id: int, role: str | None) -> Iterator[None]:
    """A refusal to read as a role the agency does not hold names the nearest real role
    when the role does not exist. Only raised after the agency was found to hold some
    role on the case, so a stranger still learns nothing."""
    try:
        yield
    except Forbidden:
        if role is not None:
            _known_role(engine.definition_of(session, case_id), role, system=True)
        raise


def _print_case(view: CaseView, json: bool) -> None:
    if json:
        print_json(view)
        return
    _lines(case_lines(view))


def _lines(lines: Iterable[str]) -> None:
    for line in lines:
        out.print(line)


@case_app.command("open", cls=PlainCommand)
@handle_errors
def case_open(
    workflow: str,
    version: int | None = typer.Option(None, "--version", help="Default: the latest."),
    assign: list[str] = typer.Option(
        [], "--assign", metavar="ROLE=AGENCY", help="Who holds a role (repeatable)."
    ),
    data: list[str] = DATA_OPT,
    agency: str | None = AGENCY_OPT,
    json: bool = JSON_OPT,
) -> None:
    """Open a case on a deployed workflow."""
    with database(load_settings()) as factory, factory() as session:
        defn = compiled(session, workflow, version).definition
        view = engine.open_case(
            session,
            workflow=workflow,
            version=version,
            assignments=_parse_roles(session, assign, defn),
            data=parse_assignments(defn, data),
            now=utcnow(),
            agency_id=_agency_id(session, agency),
        )
        session.commit()
    _print_case(view, json)


@case_app.command("fire", cls=PlainCommand)
@handle_errors
def case_fire(
    case: int,
    trigger: str,
    role: str | None = typer.Option(
        None, "--as", help="The role to act in (with --agency); neither: the system."
    ),
    agency: str | None = AGENCY_OPT,
    data: list[str] = DATA_OPT,
    expected_version: int | None = typer.Option(
        None, "--expected-version", metavar="REVISION", help="Refuse if the case has moved on."
    ),
    json: bool = JSON_OPT,
) -> None:
    """Fire a trigger on a case, as a role of an agency or as the system."""
    acting = _actor(role, agency)
    with database(load_settings()) as factory, factory() as session:
        agency_id = _agency_id(session, agency)
        defn = _checked_actor(session, case, agency_id, acting)
        view = engine.fire(
            session,
            case,
            trigger,
            role=acting,
            agency_id=agency_id,
            data=parse_assignments(defn, data),
            expected_version=expected_version,
            now=utcnow(),
        )
        session.commit()
    _print_case(view, json)


def _checked_actor(session: Session, case_id: int, agency_id: int | None, role: str
                   ) -> Definition:
    """The case's definition once the actor may act on it.

    A stranger is refused before anything else, so errors never reveal the case's
    fields; a role the agency does not hold (it holds another: the case is not hidden
    from it) is named with the nearest real one.
    """
    try:
        return engine.definition_for_actor(session, case_id, agency_id=agency_id, role=role)
    except Forbidden:
        _known_role(engine.definition_of(session, case_id), role, system=True)
        raise


@case_app.command("assign", cls=PlainCommand)
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
        view = engine.assign(
            session, case, role, target, now=utcnow(), by_agency_id=_agency_id(session, agency)
        )
        session.commit()
    _print_case(view, json)


@case_app.command("show", cls=PlainCommand)
@handle_errors
def case_show(
    case: int,
    role: str | None = typer.Option(None, "--as", help="Read as this role."),
    agency: str | None = AGENCY_OPT,
    json: bool = JSON_OPT,
) -> None:
    """Show a case as an agency (or role) may see it."""
    with (
        database(load_settings()) as factory,
        factory() as session,
        _role_hint(session, case, role),
    ):
        view = engine.view(
            session, case, agency_id=_agency_id(session, agency), now=utcnow(), role=role
        )
    _print_case(view, json)


@case_app.command("history", cls=PlainCommand)
@handle_errors
def case_history(
    case: int,
    role: str | None = typer.Option(None, "--as", help="Read as this role."),
    agency: str | None = AGENCY_OPT,
    json: bool = JSON_OPT,
) -> None:
    """The case's audit history in the order it was recorded (seq)."""
    with (
        database(load_settings()) as factory,
        factory() as session,
        _role_hint(session, case, role),
    ):
        events = engine.history(session, case, agency_id=_agency_id(session, agency), role=role)
    if json:
        print_json(events)
        return
    _lines(event_line(event) for event in events)
    earlier = out_of_order(events)
    if earlier:
        # A tick with --now (a virtual clock) records events at its time, which can be
        # after events recorded later at the real time: the order of record is the truth.
        seqs = ", ".join(map(str, earlier))
        err.print(
            f"note: listed in the order recorded (seq); event(s) {seqs} carry an earlier "
            "time than the one above, as events recorded at a virtual time "
            "(`referral tick --now`) do"
        )


@case_app.command("list", cls=PlainCommand)
@handle_errors
def case_list(
    workflow: str | None = typer.Option(None, "--workflow", help="Only this workflow."),
    state: str | None = typer.Option(
        None, "--state", help="Only cases in this state (or inside this composite)."
    ),
    status: Status = typer.Option(Status.all, "--status", help="open, closed or all."),
    agency: str | None = typer.Option(
        None, "--agency", help="Only cases on which this agency holds a role."
    ),
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many cases."),
    json: bool = JSON_OPT,
) -> None:
    """List cases by id: workflow, state, open or closed (never their data)."""
    with database(load_settings()) as factory, factory() as session:
        flt = CaseFilter(
            workflow=workflow,
            state=state,
            status=status,
            agency_id=_agency_id(session, agency),
            limit=limit,
        )
        rows, more = list_cases(session, flt)
    if json:
        print_json({"cases": [r.as_dict() for r in rows], "more": more})
        return
    if not rows:
        out.print("no cases match")
    _lines(summary_line(row) for row in rows)
    if more:
        err.print(f"(more than {len(rows)} cases match: raise --limit or filter)")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(agency_app, name="agency")
    app.add_typer(case_app, name="case")
