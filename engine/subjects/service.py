"""The subject service: record a case's subject, find and decide its candidates.

Every function takes a session and ``now`` where it writes, flushes but never commits:
the edge commits once. Writes claim the case first (``caserow.claim``), so a decision
and its audit event land together or not at all; audit events carry ids only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from engine.cases.audit import plan_event
from engine.errors import InvalidInput, NotFound
from engine.store import caserow, writers
from engine.store.caserow import CaseRow
from engine.store.fastpath import Cursor, cursor_for
from engine.store.tables import Case
from engine.subjects import store
from engine.subjects.access import Scope, matching, no_subject, scope, seeing
from engine.subjects.details import SubjectDetails
from engine.subjects.search import search
from engine.subjects.tables import CaseSubject, Subject, SubjectDecision
from engine.subjects.views import CandidateView, OtherCase, PriorContactView, SubjectView

Decision = Literal["linked", "rejected"]


def _claimed(session: Session, case_id: int) -> tuple[Cursor, CaseRow]:
    """The case claimed for writing, the session's pending changes sent first."""
    session.flush()
    cur = cursor_for(session)
    case = caserow.load(cur, case_id)
    caserow.claim(cur, case)
    return cur, case


def _event(cur: Cursor, case: CaseRow, kind: str, *, role: str, agency_id: int | None,
           now: datetime, data: Mapping[str, int | float]) -> None:
    writers.add_events(cur, [plan_event(case, kind=kind, at=now, role=role,
                                        agency_id=agency_id, data=data)])
    caserow.write(cur, [case])


def _record(session: Session, case_id: int, kind: str, *, role: str, agency_id: int | None,
            now: datetime, **data: int | float) -> None:
    cur, case = _claimed(session, case_id)
    _event(cur, case, kind, role=role, agency_id=agency_id, now=now, data=data)


def _save(session: Session, found: Scope, details: SubjectDetails, role: str,
          now: datetime) -> Subject:
    link = session.get(CaseSubject, found.case.id)
    subject = session.get(Subject, link.subject_id) if link is not None else None
    cur, case = _claimed(session, found.case.id)
    subject = store.write_subject(session, subject, details, pool=found.pool, now=now)
    if link is None:
        session.add(CaseSubject(case_id=found.case.id, subject_id=subject.id))
    session.flush()
    _event(cur, case, "subject_recorded", role=role, agency_id=found.agency_id, now=now,
           data={"subject_id": subject.id})
    return subject


def attach_subject(session: Session, case_id: int, details: SubjectDetails, *,
                   agency_id: int | None, now: datetime, role: str | None = None
                   ) -> SubjectView:
    """Record (or replace) who the case is about; only roles that may see it may."""
    found = seeing(session, case_id, agency_id, role)
    acting = sorted(found.readers & found.definition.subjects.visible_to)[0]
    subject = _save(session, found, details, acting, now)
    return _view(found.case.id, subject, details)


def attach_at_open(session: Session, case_id: int, details: SubjectDetails, *,
                   agency_id: int | None, now: datetime) -> None:
    """Record the subject given with a referral, by whichever role opened the case.

    Nothing is handed back: a referrer gives the name but may not read it again.
    """
    found = scope(session, case_id, agency_id)
    if session.get(CaseSubject, case_id) is not None:
        raise InvalidInput(f"case {case_id} already has a subject", case_id=case_id)
    _save(session, found, details, sorted(found.readers)[0], now)


def _subject_of(session: Session, case_id: int) -> tuple[Subject, SubjectDetails]:
    link = session.get(CaseSubject, case_id)
    if link is None:
        raise no_subject(case_id)
    subject = session.get(Subject, link.subject_id)
    assert subject is not None  # the foreign key keeps it
    return subject, store.details_of(session, [subject.id])[subject.id]


def _view(case_id: int, subject: Subject, details: SubjectDetails) -> SubjectView:
    return SubjectView(case_id, subject.id, details, subject.recorded_at, subject.updated_at)


def show_subject(session: Session, case_id: int, *, agency_id: int | None,
         role: str | None = None) -> SubjectView:
    """The case's subject, for a role that may see it; NotFound for anyone else."""
    found = seeing(session, case_id, agency_id, role)
    subject, details = _subject_of(session, found.case.id)
    return _view(found.case.id, subject, details)


def _other_case(case: Case) -> OtherCase:
    outcome = ",".join(case.state) if case.closed_at is not None else None
    return OtherCase(case.id, case.workflow, case.opened_at, case.closed_at, outcome)


def _decisions(session: Session, case_id: int) -> dict[int, str]:
    """Decisions on this case's candidates; a link taken on the other side counts too."""
    rows = session.scalars(select(SubjectDecision).where(or_(
        SubjectDecision.case_id == case_id,
        (SubjectDecision.other_case_id == case_id) & (SubjectDecision.decision == "linked"),
    )))
    found: dict[int, str] = {}
    for row in rows:
        other = row.other_case_id if row.case_id == case_id else row.case_id
        if row.case_id == case_id or other not in found:
            found[other] = row.decision
    return found


def _candidates(session: Session, found: Scope, threshold: float) -> list[CandidateView]:
    subject, mine = _subject_of(session, found.case.id)
    scored = search(session, found.pool, mine, threshold=threshold, exclude=subject.id)
    if not scored:
        return []
    rows = session.execute(
        select(CaseSubject.subject_id, Case).join(Case, Case.id == CaseSubject.case_id)
        .where(CaseSubject.subject_id.in_(scored), Case.id != found.case.id)
    )
    decided = _decisions(session, found.case.id)
    views = [CandidateView(_other_case(case), scored[sid].score, scored[sid].reasons,
                           decided.get(case.id)) for sid, case in rows]
    return sorted(views, key=lambda v: (-v.score, v.case.opened_at, v.case.case_id))


def subject_candidates(session: Session, case_id: int, *, agency_id: int | None, threshold: float,
               role: str | None = None) -> list[CandidateView]:
    """Other cases in the pool whose subject scores at least ``threshold`` against this
    case's, best first, with the decisions taken on them."""
    return _candidates(session, matching(session, case_id, agency_id, role), threshold)


def decide_candidate(session: Session, case_id: int, other_case_id: int, decision: Decision, *,
           agency_id: int | None, threshold: float, now: datetime,
           role: str | None = None) -> CandidateView:
    """Link a candidate (same person) or reject it (not them), audited on the case (and,
    for a link, on the other case, whose prior contacts it changes too)."""
    found = matching(session, case_id, agency_id, role)
    offered = {c.case.case_id: c for c in _candidates(session, found, threshold)}
    candidate = offered.get(other_case_id)
    if candidate is None:
        raise NotFound(f"case {other_case_id} is not a candidate for case {case_id}",
                       case_id=case_id, other_case_id=other_case_id)
    acting = found.acting_role()
    row = session.get(SubjectDecision, (case_id, other_case_id))
    if row is None:
        row = SubjectDecision(case_id=case_id, other_case_id=other_case_id)
        session.add(row)
    row.decision, row.score, row.decided_at = decision, candidate.score, now
    row.agency_id, row.role = agency_id, acting
    kind = "subject_linked" if decision == "linked" else "subject_rejected"
    _record(session, found.case.id, kind, role=acting, agency_id=agency_id, now=now,
            other_case_id=other_case_id, score=candidate.score)
    if decision == "linked":
        _record(session, other_case_id, kind, role="system",
                agency_id=agency_id, now=now, other_case_id=case_id, score=candidate.score)
    session.flush()
    return CandidateView(candidate.case, candidate.score, candidate.reasons, decision)


def unlink_subjects(session: Session, case_id: int, other_case_id: int, *, agency_id: int | None,
           now: datetime, role: str | None = None) -> None:
    """Undo a link between the two cases (taken on either), audited on both."""
    found = matching(session, case_id, agency_id, role)
    pairs = ((case_id, other_case_id), (other_case_id, case_id))
    rows = [r for r in (session.get(SubjectDecision, p) for p in pairs)
            if r is not None and r.decision == "linked"]
    if not rows:
        raise NotFound(f"case {case_id} is not linked to case {other_case_id}",
                       case_id=case_id, other_case_id=other_case_id)
    for row in rows:
        session.delete(row)
    acting = found.acting_role()
    _record(session, found.case.id, "subject_unlinked", role=acting, agency_id=agency_id,
            now=now, other_case_id=other_case_id)
    _record(session, other_case_id, "subject_unlinked", role="system",
            agency_id=agency_id, now=now, other_case_id=case_id)
    session.flush()


def prior_contacts(session: Session, case_id: int, *, agency_id: int | None,
                   role: str | None = None) -> list[PriorContactView]:
    """The cases linked to this one (either way), oldest first: the screening panel."""
    seeing(session, case_id, agency_id, role)
    rows = session.scalars(select(SubjectDecision).where(
        or_(SubjectDecision.case_id == case_id, SubjectDecision.other_case_id == case_id),
        SubjectDecision.decision == "linked",
    ))
    links = {(r.other_case_id if r.case_id == case_id else r.case_id): r for r in rows}
    if not links:
        return []
    cases = session.scalars(select(Case).where(Case.id.in_(links)))
    views = [PriorContactView(_other_case(c), links[c.id].decided_at, links[c.id].case_id)
             for c in cases]
    return sorted(views, key=lambda v: (v.case.opened_at, v.case.case_id))


def purge_orphan_subjects(session: Session, now: datetime) -> int:
    """Delete every subject that no case names any more (its names and keys go with
    it, by cascade); the number deleted. For the retention job, which deletes cases."""
    named = select(CaseSubject.subject_id)
    orphans = list(session.scalars(select(Subject.id).where(Subject.id.not_in(named))))
    if orphans:
        session.execute(delete(Subject).where(Subject.id.in_(orphans)))
    session.flush()
    return len(orphans)
