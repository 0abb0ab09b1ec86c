"""Why a trigger may not fire now, said so a person can act on it.

The message names the case, the trigger, the current state, the role, the reason and the
triggers that role may fire instead, e.g. ``case 12: 'close' is not allowed in state
review for role chair: milestone exit_criteria_met not reached; allowed now:
confirm_exit_criteria``. The details carry the same facts for programs.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.definitions.model import Definition, Guard, TransitionDef
from engine.errors import TransitionRejected


@dataclass(frozen=True, slots=True)
class Candidate:
    """A transition as the decision loop sees it, with its look-ups precomputed."""

    tdef: TransitionDef
    sources: frozenset[str]
    # ``by`` plus ``system`` when a timer fires this trigger.
    roles: frozenset[str]
    guard: Guard | None

    def holds(self, data: Mapping[str, Any]) -> bool:
        if self.guard is None:
            return True
        try:
            return bool(self.guard.evaluate(data))
        except Exception:
            # The rejection message re-evaluates and reports the error.
            return False


def rejection(
    defn: Definition,
    candidates: Sequence[Candidate],
    *,
    config: tuple[str, ...],
    active: frozenset[str],
    trigger: str,
    role: str,
    data: Mapping[str, Any],
    case_id: int | None,
    reason: str,
    allowed: list[str],
    missing: list[str],
    known_triggers: list[str],
) -> TransitionRejected:
    here = [c for c in candidates if not c.sources.isdisjoint(active)]
    if reason == "unknown_trigger":
        why = f"workflow {defn.workflow} v{defn.version} has no trigger '{trigger}'"
        near = difflib.get_close_matches(trigger, known_triggers, n=1)
        if near:
            why += f" (did you mean '{near[0]}'?)"
    elif reason == "not_in_state":
        sources = sorted({s for c in candidates for s in c.tdef.sources})
        why = f"it fires only from {_names(sources)}"
    elif reason == "role_not_allowed":
        roles = sorted({r for c in here for r in c.roles})
        why = f"only {_names(roles, 'or')} may fire it here"
    elif reason == "guard_failed":
        why = "; ".join(_guard_failure(c, data) for c in here if role in c.roles)
    elif reason == "missing_required":
        why = f"required field{_s(missing)} {_names(missing)} not set"
    else:
        why = f"milestone{_s(missing)} {_names(missing)} not reached"
    prefix = f"case {case_id}: " if case_id is not None else ""
    state = f"state {config[0]}" if len(config) == 1 else f"states {', '.join(config)}"
    message = (
        f"{prefix}'{trigger}' is not allowed in {state} for role {role}: {why}; "
        f"allowed now: {', '.join(allowed) if allowed else 'nothing'}"
    )
    return TransitionRejected(
        message,
        case_id=case_id,
        trigger=trigger,
        state=list(config),
        role=role,
        reason=reason,
        allowed=allowed,
        missing=missing,
    )


def _guard_failure(candidate: Candidate, data: Mapping[str, Any]) -> str:
    text = f"condition not met: {candidate.tdef.when}"
    if candidate.guard is not None:
        try:
            candidate.guard.evaluate(data)
        except Exception as exc:
            text += f" (could not be evaluated: {exc})"
    return text


def _names(items: Sequence[str], last: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def _s(items: Sequence[str]) -> str:
    return "s" if len(items) != 1 else ""
