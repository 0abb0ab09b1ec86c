"""``referral db upgrade``, ``referral deploy``, ``referral workflows``, ``referral audit``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from sqlalchemy.orm import Session

from engine import (
    DeployResult,
    current_revision,
    deploy,
    list_workflows,
    load_definition,
    upgrade,
    verify,
)
from engine.cli.common import database, err, handle_errors, load_settings, out, print_json
from engine.cli.usage import PlainCommand, PlainGroup
from engine.clock import utcnow
from engine.errors import DefinitionError, DeployConflict, InvalidInput, Problem

db_app = typer.Typer(cls=PlainGroup, help="Database schema.", no_args_is_help=True)
audit_app = typer.Typer(cls=PlainGroup, help="The audit trail.", no_args_is_help=True)

JSON_OPT = typer.Option(False, "--json", help="Print JSON.")


@db_app.command("upgrade", cls=PlainCommand)
@handle_errors
def db_upgrade(json: bool = JSON_OPT) -> None:
    """Apply the schema migrations (safe to run again)."""
    with database(load_settings(), migrated=False) as factory:
        engine = factory.kw["bind"]
        upgrade(engine)
        revision = current_revision(engine)
    if json:
        print_json({"revision": revision})
    else:
        out.print(f"database at migration {revision}")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from None


def _files(paths: list[Path]) -> list[Path]:
    """The files to deploy: a folder stands for its *.yaml files, as for ``validate``."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.glob("*.yaml") if p.is_file())
            if not found:
                raise InvalidInput(f"no *.yaml files in directory {path}")
            files += found
        else:
            files.append(path)
    return files


def _loaded(paths: list[Path]) -> list[tuple[str, str]]:
    """(name, text) of every file, each checked before the database is opened: a wrong
    path or a broken file is reported as such, whatever state the database is in."""
    texts = [(str(p), _read(p)) for p in _files(paths)]
    problems: list[Problem] = []
    for name, text in texts:
        try:
            load_definition(text, name)
        except DefinitionError as exc:
            problems.extend(exc.problems)
    if problems:
        raise DefinitionError(problems)
    return texts


def _deploy_one(session: Session, name: str, text: str, now: datetime) -> DeployResult:
    try:
        return deploy(session, text, name, now=now)
    except DeployConflict as exc:
        # Several files may be deployed at once: say which one conflicts.
        raise DeployConflict(f"{name}: {exc.message}", **exc.details) from None


def deploy_command(
    paths: list[Path] = typer.Argument(
        ..., metavar="PATH...", help="Workflow YAML files, or folders of them."
    ),
    json: bool = JSON_OPT,
) -> None:
    """Store workflow versions: identical content is a no-op, changed content is refused."""
    texts = _loaded(paths)
    now = utcnow()
    results: list[DeployResult] = []
    with database(load_settings()) as factory, factory() as session:
        # All files or none: one conflicting file leaves the store as it was.
        results = [_deploy_one(session, name, text, now) for name, text in texts]
        session.commit()
    if json:
        print_json(results)
        return
    for result in results:
        what = "deployed" if result.created else "unchanged"
        out.print(f"{what}: {result.workflow} version {result.version}")


def workflows_command(json: bool = JSON_OPT) -> None:
    """List deployed workflow versions."""
    with database(load_settings()) as factory, factory() as session:
        rows = list_workflows(session)
    if json:
        print_json(rows)
        return
    if not rows:
        out.print("no workflows deployed")
    for row in rows:
        stamp = row.deployed_at.strftime("%Y-%m-%d %H:%M")
        out.print(f"{row.workflow} v{row.version}  {row.title}  (deployed {stamp} UTC)")


@audit_app.command("verify", cls=PlainCommand)
@handle_errors
def audit_verify(
    case: int | None = typer.Argument(None, help="Only this case."),
    json: bool = JSON_OPT,
) -> None:
    """Check the audit hash chains; exit 1 naming the first bad event of each case."""
    with database(load_settings()) as factory, factory() as session:
        faults = verify(session, case)
    if json:
        print_json({"ok": not faults, "faults": faults})
    elif not faults:
        out.print("audit trail intact" + (f" for case {case}" if case is not None else ""))
    else:
        for fault in faults:
            err.print(f"tampered: {fault.format()}")
    if faults:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(db_app, name="db")
    app.add_typer(audit_app, name="audit")
    app.command("deploy", cls=PlainCommand)(handle_errors(deploy_command))
    app.command("workflows", cls=PlainCommand)(handle_errors(workflows_command))
