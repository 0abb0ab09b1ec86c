"""The constants an event sets: its transition's ``set:`` and the ``set:`` of each state
it enters, applied after the event's own data (the definition has the last word)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.definitions.model import Definition, TransitionDef


def constants(
    defn: Definition, transition: TransitionDef | None, entered: Iterable[str]
) -> dict[str, Any]:
    """Field values the event sets by definition; states entered in path order, then the
    transition's own, so a transition can say more precisely what its target means."""
    values: dict[str, Any] = {}
    for path in sorted(entered):
        state = defn.states.get(path)
        if state is not None:
            values.update(state.sets)
    if transition is not None:
        values.update(transition.sets)
    return values
