"""``referral subject ...``: who a case is about, its candidates and link decisions.

Every command acts as an agency (``--agency``) in its roles on the case: the subject is
for the roles the definition names, and the administrator is not one of them.
"""

from __future__ import annotations

from datetime import date

import typer

import engine
from engine import CandidateView, OtherCase, SubjectDetails, agency_by_name, subject_details
from engine.cli.common import database, handle_errors, load_settings, out, print_json
from engine.clock import utcnow
from engine.errors import InvalidInput

subject_app = typer.Typer(help="The person a case is about, and re-referral links.",
                          no_args_is_help=True)

JSON_OPT = typer.Option(False, "--json", help="Print JSON.")
AGENCY_OPT = typer.Option(..., "--agency", help="Act as this agency (by name).")
ROLE_OPT = typer.Option(None, "--as", help="Act in this one role on the case.")


def _name(text: str, kind: str) -> dict[str, str]:
    given, sep, family = text.partition("/")
    if not sep:
        raise InvalidInput(f"expected GIVEN/FAMILY, got {text!r}")
    return {"given": given.strip(), "family": family.strip(), "kind": kind}


def _details(names: list[str], scripts: list[str], born: str | None, locality: str | None,
             ids: list[str]) -> SubjectDetails:
    given = [_name(n, "primary" if i == 0 else "alias") for i, n in enumerate(names)]
    given += [_name(n, "script") for n in scripts]
    full: date | None = None
    year: int | None = None
    if born is not None:
        try:
            full, year = (None, int(born)) if born.isdigit() else (date.fromisoformat(born), None)
        except ValueError:
            raise InvalidInput(f"--born takes YYYY-MM-DD or YYYY, got {born!r}") from None
    pairs = [i.partition("=") for i in ids]
    if any(not sep for _, sep, _ in pairs):
        raise InvalidInput("--id takes TYPE=VALUE")
    return subject_details(given, date_of_birth=full, birth_year=year, locality=locality,
                   identifiers={k: v for k, _, v in pairs})


def _other(case: OtherCase) -> str:
    closed = f"closed {case.closed_at.date()} as {case.outcome}" if case.closed_at else "open"
    return f"case {case.case_id}  {case.workflow}  opened {case.opened_at.date()}  {closed}"


@subject_app.command("set")
@handle_errors
def subject_set(
    case: int,
    name: list[str] = typer.Option(..., "--name", help="GIVEN/FAMILY; the first is primary."),
    script: list[str] = typer.Option([], "--script-name", help="GIVEN/FAMILY in another script."),
    born: str | None = typer.Option(None, "--born", help="YYYY-MM-DD, or YYYY alone."),
    locality: str | None = typer.Option(None, "--locality"),
    ident: list[str] = typer.Option([], "--id", help="TYPE=VALUE official identifier."),
    agency: str = AGENCY_OPT,
    role: str | None = ROLE_OPT,
    json: bool = JSON_OPT,
) -> None:
    """Record or correct who the case is about."""
    checked = _details(name, script, born, locality, ident)
    with database(load_settings()) as factory, factory() as session:
        view = engine.attach_subject(session, case, checked, now=utcnow(), role=role,
                                      agency_id=agency_by_name(session, agency).id)
        session.commit()
    if json:
        print_json(view.as_dict())
        return
    out.print(f"case {case}: subject {view.subject_id} recorded", markup=False)


@subject_app.command("show")
@handle_errors
def subject_show(case: int, agency: str = AGENCY_OPT, role: str | None = ROLE_OPT,
                 json: bool = JSON_OPT) -> None:
    """The case's subject and its prior contacts (the cases linked to it)."""
    with database(load_settings()) as factory, factory() as session:
        agency_id = agency_by_name(session, agency).id
        view = engine.show_subject(session, case, agency_id=agency_id, role=role)
        prior = engine.prior_contacts(session, case, agency_id=agency_id, role=role)
    if json:
        print_json({**view.as_dict(), "prior_contacts": [p.as_dict() for p in prior]})
        return
    for n in view.details.names:
        out.print(f"  {n.kind}: {n.given} {n.family}".rstrip(), markup=False)
    born = view.details.born
    out.print(f"  born: {born.text() if born else 'unknown'}", markup=False)
    out.print(f"  locality: {view.details.locality or 'unknown'}", markup=False)
    for kind, value in view.details.identifiers.items():
        out.print(f"  {kind}: {value}", markup=False)
    out.print(f"  prior contacts: {len(prior)}", markup=False)
    for p in prior:
        out.print(f"    {_other(p.case)}", markup=False)


def _print_candidate(c: CandidateView) -> None:
    out.print(f"{_other(c.case)}  score {c.score:.2f}  {c.decision or 'undecided'}",
              markup=False)
    for r in c.reasons:
        out.print(f"    {r.factor}: {r.detail} ({r.score:.2f})", markup=False)


@subject_app.command("candidates")
@handle_errors
def subject_candidates(case: int, agency: str = AGENCY_OPT, role: str | None = ROLE_OPT,
                       json: bool = JSON_OPT) -> None:
    """Other cases that may be about the same person, best first, with reasons."""
    settings = load_settings()
    with database(settings) as factory, factory() as session:
        found = engine.subject_candidates(
            session, case, agency_id=agency_by_name(session, agency).id,
            threshold=settings.match_threshold, role=role)
    if json:
        print_json([c.as_dict() for c in found])
        return
    if not found:
        out.print(f"case {case}: no candidates", markup=False)
    for c in found:
        _print_candidate(c)


@subject_app.command("link")
@handle_errors
def subject_link(
    case: int,
    other: int,
    reject: bool = typer.Option(False, "--reject", help="Record that it is NOT the person."),
    agency: str = AGENCY_OPT,
    role: str | None = ROLE_OPT,
    json: bool = JSON_OPT,
) -> None:
    """Link a candidate case as the same person (or reject it with --reject)."""
    settings = load_settings()
    with database(settings) as factory, factory() as session:
        view = engine.decide_candidate(session, case, other, "rejected" if reject else "linked",
                              agency_id=agency_by_name(session, agency).id,
                              threshold=settings.match_threshold, now=utcnow(), role=role)
        session.commit()
    if json:
        print_json(view.as_dict())
        return
    out.print(f"case {case}: case {other} {view.decision}", markup=False)


@subject_app.command("unlink")
@handle_errors
def subject_unlink(case: int, other: int, agency: str = AGENCY_OPT,
                   role: str | None = ROLE_OPT, json: bool = JSON_OPT) -> None:
    """Undo a link between two cases."""
    with database(load_settings()) as factory, factory() as session:
        engine.unlink_subjects(session, case, other, agency_id=agency_by_name(session, agency).id,
                       now=utcnow(), role=role)
        session.commit()
    if json:
        print_json({"case_id": case, "other_case_id": other, "linked": False})
        return
    out.print(f"case {case}: case {other} unlinked", markup=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(subject_app, name="subject")
