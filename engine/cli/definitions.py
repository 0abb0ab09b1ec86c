"""``referral validate PATH...``: check workflow definitions without deploying them.

Exit status: 0 when every file is valid, 1 when any is invalid, 2 on a usage error
(a path that does not exist, a directory without ``*.yaml`` files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from engine.cli.common import err, out
from engine.cli.usage import PlainCommand
from engine.errors import DefinitionError, Problem

USAGE_ERROR = 2


def validate(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Workflow files, or directories whose *.yaml files (not recursive) are checked.",
            show_default=False,
        ),
    ],
) -> None:
    """Check workflow definitions; print every problem as path:line:col: error: message."""
    # Imported here so the rest of the CLI starts without compiling CEL or YAML machinery.
    from engine import load_path

    files = _expand(paths)
    invalid = 0
    for file in files:
        try:
            definition = load_path(file)
        except DefinitionError as exc:
            invalid += 1
            for problem in exc.problems:
                _print_problem(problem)
            continue
        line = Text()
        line.append("OK", style="bold green")
        line.append(f" {file}: {definition.workflow} version {definition.version}")
        out.print(line)
    if invalid:
        summary = f"{invalid} of {len(files)} file{'s' if len(files) != 1 else ''} invalid"
        err.print(Text(summary, style="bold red"))
        raise typer.Exit(1)


def _expand(paths: list[Path]) -> list[Path]:
    """The files to check; exits with status 2 on a missing path or an empty directory."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.glob("*.yaml") if p.is_file())
            if not found:
                _usage(f"no *.yaml files in directory {path}")
            files += found
        elif path.exists():
            files.append(path)
        else:
            _usage(f"no such file or directory: {path}")
    return files


def _usage(message: str) -> None:
    err.print(Text(f"error: {message}"))
    raise typer.Exit(USAGE_ERROR)


def _print_problem(problem: Problem) -> None:
    line = Text(f"{problem.path}:{problem.line}:{problem.col}: ")
    line.append(f"{problem.severity}:", style="bold red" if problem.severity == "error"
                else "bold yellow")
    line.append(f" {problem.message}")
    out.print(line)
    if problem.hint:
        out.print(Text(f"  hint: {problem.hint}", style="cyan"))


def register(app: typer.Typer) -> None:
    """Add ``validate`` to ``app``."""
    app.command("validate", cls=PlainCommand)(validate)
