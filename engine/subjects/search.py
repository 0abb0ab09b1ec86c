"""Candidate search: read the probe's blocks, score what they hold, keep the matches.

The same function serves the service and the benchmark, so the figure measured is the
code that runs. ``in_block`` says in Python what the block statement selects, for the
evaluation, which scores only the pairs a search would have read.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from engine.subjects import store
from engine.subjects.details import SubjectDetails
from engine.subjects.scoring import Match, score


def search(session: Session, pool: str, probe: SubjectDetails, *, threshold: float,
           exclude: int | None = None) -> dict[int, Match]:
    """Subjects of ``pool`` scoring at least ``threshold`` against ``probe``, by id."""
    forms = probe.forms()
    found: dict[int, Match] = {}
    for sid, theirs in store.block(session, pool, probe, forms, threshold).items():
        if sid == exclude:
            continue
        match = score(probe, theirs, forms, theirs.forms())
        if match.score >= threshold:
            found[sid] = match
    return found


def in_block(pool: str, probe: SubjectDetails, other: SubjectDetails,
             threshold: float) -> bool:
    """Would a search for ``probe`` read ``other``? (The block statement, in Python.)"""
    return store.in_block(pool, probe, other, threshold)
