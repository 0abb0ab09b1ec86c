"""Usage lines and help as people write them: ``CASE``, ``--data KEY=VALUE``, ``--json``.

Typer's defaults show ``{case}``, ``--data <list[str]>`` and ``--help <bool>``, which read
as Python rather than as a command line. Every command and group of ``referral`` uses
these classes, so each parameter gets a plain metavar unless it names its own.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

from engine.cli.common import print_json

USAGE_ERROR = 2


def _plain(param: Any) -> None:
    # Typer's parameters (its own vendored click) differ between releases: read them
    # defensively, and leave alone whatever this does not recognise.
    if getattr(param, "metavar", "") is not None:
        return
    descriptor = getattr(param, "type_descriptor", None)
    if getattr(param, "is_flag", False):
        param.metavar = ""
    elif descriptor is not None and descriptor.is_choice and descriptor.choices:
        param.metavar = "|".join(str(getattr(c, "value", c)) for c in descriptor.choices)
    else:
        param.metavar = (param.name or "value").upper()


def _usage_pieces(command: Any, ctx: Any) -> list[str]:
    pieces = [command.options_metavar] if command.options_metavar else []
    for param in command.get_params(ctx):
        if not isinstance(param, TyperArgument):
            continue
        name = param.metavar or (param.name or "").upper()
        if param.nargs != 1:
            name += "..."
        pieces.append(name if param.required else f"[{name}]")
    return pieces


class PlainCommand(TyperCommand):
    """A command whose usage and help show plain metavars, and whose usage errors are a
    JSON error object when ``--json`` was asked for."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        wants_json = "--json" in args
        try:
            return super().parse_args(ctx, args)  # type: ignore[no-any-return]
        except Exception as exc:
            # Typer's usage errors (its own vendored click): exit status 2, a message.
            if not wants_json or getattr(exc, "exit_code", None) != USAGE_ERROR:
                raise
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            print_json({"error": {"code": "usage_error", "message": message, "details": {}}})
            raise typer.Exit(USAGE_ERROR) from None

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            _plain(param)
        return params

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return _usage_pieces(self, ctx)


class PlainGroup(TyperGroup):
    """A group (``referral case``) whose own options read plainly too."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            _plain(param)
        return params
