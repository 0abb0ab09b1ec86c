"""The audit trail: append-only case events, hash-chained per case.

:func:`plan_event` is the one place an event row is made, on every write path;
:func:`verify` checks the chains.

Each event's hash covers its content and the previous event's hash, so editing,
deleting or reordering any event breaks the chain from that point on. The head of the
chain lives on the case row (``last_event_hash``/``last_event_seq``), which also catches
the deletion of the newest event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.store.caserow import CaseRow
from engine.store.tables import Case, CaseEvent

KINDS = frozenset(
    {
        "opened",
        "transition",
        "assigned",
        "milestone",
        "timer_fired",
        "reminder",
        "escalation",
        "ack",
        "warning",
        "dead_letter",
        "disclosure",
        *("subject_recorded", "subject_linked", "subject_unlinked", "subject_rejected"),
    }
)


def event_hash(
    *,
    case_id: int,
    seq: int,
    at: datetime,
    kind: str,
    agency_id: int | None,
    role: str,
    trigger: str | None,
    from_state: Sequence[str],
    to_state: Sequence[str],
    data: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """sha256 over a canonical JSON form of the event (sorted keys, no spaces, UTC time)."""
    body = {
        "case_id": case_id,
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(),
        "kind": kind,
        "agency_id": agency_id,
        "role": role,
        "trigger": trigger,
        "from_state": list(from_state),
        "to_state": list(to_state),
        "data": data,
        "prev_hash": prev_hash,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def plan_event(
    case: CaseRow,
    *,
    kind: str,
    at: datetime,
    role: str,
    agency_id: int | None,
    trigger: str | None = None,
    from_state: Iterable[str] | None = None,
    to_state: Iterable[str] | None = None,
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The row of the case's next event (its hash included), moving the chain head on
    ``case``; :func:`engine.store.writers.add_events` writes it, and
    :func:`engine.store.caserow.write` the head.

    The states default to the case's current state (an event that moves nothing). The
    caller holds the case for writing, so that two writers never extend the same head.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown audit event kind {kind!r}")
    payload = dict(data or {})
    seq = case.last_event_seq + 1
    before = list(case.state if from_state is None else from_state)
    after = list(case.state if to_state is None else to_state)
    prev = case.last_event_hash
    # No JSON round trip: the hash and the stored text are both dumps of this payload.
    digest = event_hash(
        case_id=case.id, seq=seq, at=at, kind=kind, agency_id=agency_id, role=role,
        trigger=trigger, from_state=before, to_state=after, data=payload, prev_hash=prev,
    )
    case.last_event_seq, case.last_event_hash = seq, digest
    return {
        "case_id": case.id, "seq": seq, "at": at, "kind": kind, "agency_id": agency_id,
        "role": role, "trigger": trigger, "from_state": before, "to_state": after,
        "data": payload, "prev_hash": prev, "hash": digest,
    }


def _stored_hash(event: CaseEvent) -> str:
    return event_hash(
        case_id=event.case_id,
        seq=event.seq,
        at=event.at,
        kind=event.kind,
        agency_id=event.agency_id,
        role=event.role,
        trigger=event.trigger,
        from_state=event.from_state,
        to_state=event.to_state,
        data=event.data,
        prev_hash=event.prev_hash,
    )


@dataclass(frozen=True, slots=True)
class AuditFault:
    """The first event of a case whose chain does not hold, and why."""

    case_id: int
    seq: int
    event_id: int | None
    problem: str

    def format(self) -> str:
        where = f"event {self.event_id}" if self.event_id is not None else "no event row"
        return f"case {self.case_id} seq {self.seq} ({where}): {self.problem}"


def _verify_case(case: Case, events: Sequence[CaseEvent]) -> AuditFault | None:
    prev_hash = ""
    expected = 1
    for event in events:
        if event.seq != expected:
            if event.seq > expected:
                problem = f"event seq {expected} is missing (deleted?); next stored is {event.seq}"
                return AuditFault(case.id, expected, None, problem)
            problem = f"duplicate sequence number {event.seq}"
            return AuditFault(case.id, event.seq, event.id, problem)
        if event.prev_hash != prev_hash:
            problem = (
                "prev_hash does not match the previous event's hash "
                "(an event was deleted, inserted or reordered)"
            )
            return AuditFault(case.id, event.seq, event.id, problem)
        if _stored_hash(event) != event.hash:
            problem = "content does not match its hash (edited or moved)"
            return AuditFault(case.id, event.seq, event.id, problem)
        prev_hash = event.hash
        expected += 1
    last = expected - 1
    if case.last_event_seq != last:
        if case.last_event_seq > last:
            problem = f"the case records {case.last_event_seq} events but only {last} are stored"
            return AuditFault(case.id, last + 1, None, problem)
        problem = f"the case records {case.last_event_seq} events but {last} are stored"
        return AuditFault(case.id, case.last_event_seq + 1, None, problem)
    if case.last_event_hash != prev_hash:
        problem = "the newest event's hash differs from the chain head kept on the case"
        event_id = events[-1].id if events else None
        return AuditFault(case.id, last, event_id, problem)
    return None


def verify(session: Session, case_id: int | None = None) -> list[AuditFault]:
    """Check every case's chain (or one case's); one fault per broken case, first bad event.

    Events are streamed in (case, seq) order, so a large trail is checked in one pass
    without holding it all in memory.
    """
    cases_query = select(Case).order_by(Case.id)
    events_query = select(CaseEvent).order_by(CaseEvent.case_id, CaseEvent.seq, CaseEvent.id)
    if case_id is not None:
        cases_query = cases_query.where(Case.id == case_id)
        events_query = events_query.where(CaseEvent.case_id == case_id)
    cases = {case.id: case for case in session.scalars(cases_query)}
    if case_id is not None and not cases:
        raise NotFound(f"case {case_id} not found", case_id=case_id)
    faults: dict[int, AuditFault] = {}
    seen: set[int] = set()
    stream = session.scalars(events_query.execution_options(yield_per=1000))
    for owner, group in groupby(stream, key=lambda e: e.case_id):
        seen.add(owner)
        case = cases.get(owner)
        if case is None:
            continue
        fault = _verify_case(case, list(group))
        if fault is not None:
            faults[owner] = fault
    for owner, case in cases.items():
        if owner not in seen:
            fault = _verify_case(case, [])
            if fault is not None:
                faults[owner] = fault
    return [faults[owner] for owner in sorted(faults)]
