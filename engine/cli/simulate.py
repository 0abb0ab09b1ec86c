"""``referral simulate WORKFLOW --script SCRIPT.yaml``: a dry run on a virtual clock."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from engine.cli.common import err, handle_errors, out, print_json
from engine.errors import InvalidInput

STYLE = {
    "transition": "bold",
    "reminder": "cyan",
    "escalation": "yellow",
    "fired": "magenta",
    "ack": "green",
    "cancelled": "dim",
    "rejected": "red",
}


@handle_errors
def simulate(
    workflow: Annotated[
        str, typer.Argument(help="A shipped workflow's name (e.g. community_panel) or a YAML file.")
    ],
    script: Annotated[
        Path,
        typer.Option(
            "--script", exists=True, dir_okay=False, readable=True,
            help="The scripted case: start, assign, data, steps, until.",
        ),
    ],
    json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Run a scripted case on a virtual clock in a throw-away database; print its timeline.

    Every transition, reminder, escalation, fired timer, acknowledgement, cancelled timer
    and refused step, with its local time, through the engine's own service and tick.
    """
    # Imported here so the rest of the CLI starts without the engine's heavier parts.
    from engine.simulate import simulate as run

    try:
        text = script.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        err.print(f"error: cannot read {script}: {exc}", markup=False)
        raise typer.Exit(1) from None
    try:
        result = run(workflow, text, str(script))
    except InvalidInput as exc:
        # Script problems are already "path:line:col: error: ..." lines.
        if exc.details.get("problems"):
            err.print(exc.message, markup=False)
            raise typer.Exit(1) from None
        raise
    if json:
        for row in result.rows:
            print_json(row.as_dict())
        return
    table = Table(
        title=f"{result.workflow} v{result.version}: simulated in {result.timezone}",
        title_justify="left",
    )
    table.add_column("when", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    for name in ("what", "roles", "state after", "note"):
        table.add_column(name, overflow="fold")
    shown: tuple[str, ...] = ()
    for row in result.rows:
        # The state only when it changes: most rows leave it as it was.
        state = ", ".join(row.state) if row.state != shown else ""
        shown = row.state
        what = row.trigger or ""
        if row.timer:
            what = f"{row.timer} [{row.step}]" if row.step is not None else row.timer
            if row.trigger:
                joint = "cancelled by" if row.kind == "cancelled" else "->"
                what += f" {joint} {row.trigger}"
        table.add_row(
            row.at.strftime("%Y-%m-%d %a %H:%M"),
            row.kind,
            what,
            ", ".join(row.roles),
            state,
            row.note,
            style=STYLE.get(row.kind, ""),
        )
    out.print(table)
    ending = "closed" if result.closed else "still open"
    out.print(f"case {ending} in {', '.join(result.state)}", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to ``app``."""
    app.command("simulate")(simulate)
