"""``referral diagram PATH``: draw a workflow definition as Mermaid or Graphviz DOT."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from engine.cli.common import handle_errors
from engine.cli.usage import PlainCommand


class DiagramFormat(StrEnum):
    mermaid = "mermaid"
    dot = "dot"


@handle_errors
def diagram(
    path: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="A workflow definition (YAML)."
        ),
    ],
    fmt: Annotated[
        DiagramFormat,
        typer.Option("--format", "-f", help="mermaid (stateDiagram-v2) or dot (Graphviz)."),
    ] = DiagramFormat.mermaid,
) -> None:
    """Print a diagram of a workflow: states, parallel tracks, transitions and timers."""
    # Imported here so the rest of the CLI starts without compiling CEL or YAML machinery.
    from engine import load_path, to_dot, to_mermaid

    definition = load_path(path)
    render = to_dot if fmt is DiagramFormat.dot else to_mermaid
    # Plain output: the diagram is meant to be piped into a file or a renderer.
    typer.echo(render(definition), nl=False)


def register(app: typer.Typer) -> None:
    """Add ``diagram`` to ``app``."""
    app.command("diagram", cls=PlainCommand)(diagram)
