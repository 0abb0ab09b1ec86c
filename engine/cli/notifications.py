"""``referral notifications ...``: dead letters, replay, re-enabling a webhook, a test
notification; each action audited like its API twin."""

from __future__ import annotations

import typer

import engine
from engine import agency_by_name
from engine.cli.common import database, handle_errors, load_settings, out, print_json
from engine.clock import utcnow

JSON_OPT = typer.Option(False, "--json", help="Print JSON.")

group = typer.Typer(help="Delivery operations: dead letters, replay, webhooks, tests.",
                    no_args_is_help=True)


@group.command("dead")
@handle_errors
def dead(limit: int = typer.Option(100, min=1, max=500), as_json: bool = JSON_OPT) -> None:
    """List dead-lettered notifications, oldest first (no payloads)."""
    with database(load_settings()) as factory, factory() as session:
        found = engine.dead_letters(session, limit=limit)
    if as_json:
        print_json(found)
        return
    if not found:
        out.print("no dead letters")
    for d in found:
        case = f"case {d.case_id}" if d.case_id is not None else "no case"
        out.print(f"{d.id}  {d.kind} to agency {d.agency_id} by {d.channel}, {case}, "
                  f"{d.attempts} attempts: {d.last_error or '-'}", markup=False)


@group.command("replay")
@handle_errors
def replay(
    ids: list[int] = typer.Argument(None, help="Notification ids; none with --all."),
    replay_all: bool = typer.Option(False, "--all", help="Replay every dead letter."),
    as_json: bool = JSON_OPT,
) -> None:
    """Send dead letters again, with their original message ids."""
    if bool(ids) == replay_all:
        raise typer.BadParameter("give notification ids or --all, not both")
    with database(load_settings()) as factory, factory() as session:
        done = engine.replay(session, None if replay_all else ids, actor="cli",
                                 now=utcnow())
        session.commit()
    if as_json:
        print_json({"replayed": done})
    else:
        out.print(f"replayed {len(done)}: {' '.join(map(str, done)) or '-'}")


@group.command("enable-webhook")
@handle_errors
def enable_webhook(agency: str = typer.Argument(..., help="Agency name."),
                   as_json: bool = JSON_OPT) -> None:
    """Re-enable an agency's webhook after a 410 disabled it."""
    with database(load_settings()) as factory, factory() as session:
        agency_id = agency_by_name(session, agency).id
        was = engine.enable_webhook(session, agency_id, actor="cli", now=utcnow())
        session.commit()
    if as_json:
        print_json({"agency_id": agency_id, "was_disabled": was})
    else:
        out.print(f"webhook of {agency} " + ("re-enabled" if was else "was not disabled"),
                  markup=False)


@group.command("test")
@handle_errors
def test(agency: str = typer.Argument(..., help="Agency name."),
         as_json: bool = JSON_OPT) -> None:
    """Queue a test notification on every channel of the agency."""
    with database(load_settings()) as factory, factory() as session:
        agency_id = agency_by_name(session, agency).id
        ids = engine.send_test(session, agency_id, actor="cli", now=utcnow())
        session.commit()
    if as_json:
        print_json({"agency_id": agency_id, "notifications": ids})
    else:
        out.print(f"queued {len(ids)} test notification(s) for {agency}", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="notifications")
