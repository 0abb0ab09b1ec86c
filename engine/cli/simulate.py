"""``referral simulate WORKFLOW --script SCRIPT.yaml``: a dry run on a virtual clock."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from engine.cli.common import err, handle_errors, out, print_json
from engine.cli.usage import PlainCommand
from engine.errors import InvalidInput, Problem

if TYPE_CHECKING:
    from engine.simulate.run import Row, Simulation

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
    from engine.simulate.run import simulate as run

    try:
        text = script.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        _fail(Problem(str(script), 1, 1, f"the script is not UTF-8 text: {exc.reason}"), json)
    except OSError as exc:
        _fail(Problem(str(script), 1, 1, f"cannot read the script: {exc.strerror or exc}"),
              json)
    try:
        result = run(workflow, text, str(script))
    except InvalidInput as exc:
        # Script problems are already "path:line:col: error: ..." lines; under --json the
        # error object (handle_errors) carries them in details.
        if exc.details.get("problems") and not json:
            err.print(exc.message)
            raise typer.Exit(1) from None
        raise
    if json:
        for row in result.rows:
            print_json(row.as_dict())
        return
    out.print(timeline_table(result))
    ending = "closed" if result.closed else "still open"
    out.print(f"case {ending} in {state_label(result.state)}")


def _fail(problem: Problem, json: bool) -> NoReturn:
    if json:
        raise InvalidInput(problem.format(), problems=[asdict(problem)])
    err.print(problem.format())
    raise typer.Exit(1)


def timeline_table(result: Simulation) -> Table:
    """Three columns, so an 80-column terminal or pipe still reads well: the time and kind
    never wrap, and one 'event' column tells the rest as a short sentence (who, to whom,
    the state it leads to), with notes and refusals on a dimmed line below."""
    table = Table(
        title=f"{result.workflow} v{result.version}: simulated in {result.timezone}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("when", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("event", overflow="fold", ratio=1)
    shown: tuple[str, ...] = ()
    for row in result.rows:
        # The state only when it changes: most rows leave it as it was.
        changed = row.state != shown
        shown = row.state
        table.add_row(
            Text(row.at.strftime("%Y-%m-%d %a %H:%M")),
            Text(row.kind, style=STYLE.get(row.kind, "")),
            event_text(row, changed),
        )
    return table


def event_text(row: Row, state_changed: bool) -> Text:
    """What happened, as one line (plus a dimmed note line when there is one)."""
    timer = f"{row.timer} [{row.step}]" if row.timer and row.step is not None else row.timer
    roles = ", ".join(row.roles)
    note = row.note
    if row.kind == "transition" and row.trigger is None:
        what = "case opened"
        note = "" if note == "case opened" else note
    elif row.kind in ("reminder", "escalation"):
        what = f"{timer} to {roles}"
    elif row.kind == "fired":
        what = f"{timer} fires {row.trigger}" if row.trigger else f"{timer} fired"
    elif row.kind == "cancelled":
        what = f"{timer}, cancelled by {row.trigger}"
    elif row.kind == "ack":
        what = f"{timer} acknowledged by {roles}"
    elif row.kind == "rejected" and row.timer and row.trigger:
        what = f"{timer}: {row.trigger} by {roles} refused"
    elif row.kind == "rejected":
        what = f"{row.trigger or timer} by {roles} refused"
    else:
        what = f"{row.trigger} by {roles}"
    text = Text(what)
    if state_changed and row.kind in ("transition", "rejected") and row.state:
        text.append(f" → {state_label(row.state)}", style="bold")
    if note:
        text.append(f"\n{note}", style="dim")
    return text


def state_label(config: tuple[str, ...]) -> str:
    """A configuration, its parallel tracks grouped under their parallel state:
    ``support: mentoring.sessions + therapy.intake``."""
    groups: dict[str, list[str]] = {}
    for path in config:
        head, _, rest = path.partition(".")
        groups.setdefault(head, []).append(rest)
    return ", ".join(
        head if rests == [""] else f"{head}: {' + '.join(r for r in rests if r)}"
        for head, rests in groups.items()
    )


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to ``app``."""
    app.command("simulate", cls=PlainCommand)(simulate)
