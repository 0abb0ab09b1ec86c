"""The ``referral`` command line: thin commands over the engine's services.

Each submodule registers its own commands; this module only assembles them.
"""

from __future__ import annotations

import typer

from engine.cli.usage import PlainGroup

app = typer.Typer(
    cls=PlainGroup,
    name="referral",
    help="Workflow engine for multi-agency referral and exit work.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from engine.cli import (
        cases,
        db,
        definitions,
        diagram,
        notifications,
        serve,
        simulate,
        subjects,
        timers,
    )

    for module in (definitions, diagram, db, cases, timers, serve, simulate, subjects,
                   notifications):
        module.register(app)


_register()


def main() -> None:
    app()
