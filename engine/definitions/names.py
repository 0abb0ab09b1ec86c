"""Name rules shared by the checks: identifier syntax and 'did you mean' hints."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

from engine.definitions.model import StateDef

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# `from: "*"`: every non-final top-level state.
ANY_STATE = "*"
# CEL keywords cannot be used as variable names inside a `when` expression.
CEL_RESERVED = frozenset({
    "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
    "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
    "void", "while",
})


# A name or a dotted state path; only these are offered as hints, since a declared name
# that is itself invalid (``Screening``, ``chair\n``) is already reported and is no fix.
_HINTABLE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*")


def suggest(name: str, known: Iterable[str]) -> str | None:
    """``did you mean 'screening'?`` for the nearest known name, if any is near."""
    candidates = [k for k in known if _HINTABLE.fullmatch(k)]
    near = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"did you mean '{near[0]}'?" if near else None


def suggest_state(name: str, states: Mapping[str, StateDef]) -> str | None:
    """Like :func:`suggest`, but a nested state named by its short name gets its path."""
    full = [p for p, s in states.items() if s.name == name.rsplit(".", 1)[-1]
            and s.kind != "track" and p != name]
    if len(full) == 1:
        return f"did you mean '{full[0]}'? (nested states are named by their full path)"
    return suggest(name, [p for p, s in states.items() if s.kind != "track"])
