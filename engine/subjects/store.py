"""Subject rows: writing a subject with its names and keys, and reading candidate blocks.

Candidate search is two statements whatever the number of subjects: the probe's keys
(with its birth years) select the block's subject ids through ``ix_subject_keys_block``,
and a second statement brings back those subjects' details and names for scoring.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select
from sqlalchemy.orm import Session

from engine.subjects.details import BirthDate, PersonName, SubjectDetails
from engine.subjects.names import NameForm, blocking_keys, plain, probe_years
from engine.subjects.tables import Subject, SubjectKey, SubjectName


def identifier_keys(pool: str, identifiers: dict[str, str] | Any) -> set[str]:
    """Keys for official identifiers: a digest, so the key column holds no identifier."""
    return {
        f"{pool}|#{kind}|" + hashlib.sha256(plain(value).encode()).hexdigest()[:24]
        for kind, value in identifiers.items()
    }


def keys_for(pool: str, details: SubjectDetails, forms: Sequence[NameForm]) -> set[str]:
    return blocking_keys(pool, forms) | identifier_keys(pool, details.identifiers)


def key_rows(subject_id: int, pool: str, details: SubjectDetails,
             forms: Sequence[NameForm]) -> list[dict[str, Any]]:
    """Name keys filed under the birth year; identifier keys under none, so that a
    shared identifier is found whatever the dates say."""
    year = details.born.year if details.born is not None else None
    rows = [{"subject_id": subject_id, "key": key, "birth_year": year}
            for key in sorted(blocking_keys(pool, forms))]
    rows += [{"subject_id": subject_id, "key": key, "birth_year": None}
             for key in sorted(identifier_keys(pool, details.identifiers))]
    return rows


def write_subject(session: Session, subject: Subject | None, details: SubjectDetails, *,
                  pool: str, now: datetime) -> Subject:
    """Create the subject, or replace what ``subject`` records, names and keys included."""
    born = details.born
    if subject is None:
        subject = Subject(pool=pool, recorded_at=now, identifiers={})
        session.add(subject)
    else:
        session.execute(delete(SubjectName).where(SubjectName.subject_id == subject.id))
        session.execute(delete(SubjectKey).where(SubjectKey.subject_id == subject.id))
    subject.pool = pool
    subject.birth_year = born.year if born else None
    subject.birth_month = born.month if born else None
    subject.birth_day = born.day if born else None
    subject.locality = details.locality
    subject.identifiers = dict(details.identifiers)
    subject.updated_at = now
    session.flush()
    session.execute(insert(SubjectName), [
        {"subject_id": subject.id, "kind": n.kind, "given": n.given, "family": n.family}
        for n in details.names
    ])
    rows = key_rows(subject.id, pool, details, details.forms())
    if rows:
        session.execute(insert(SubjectKey), rows)
    return subject


def _details(row: Any, names: list[PersonName]) -> SubjectDetails:
    born = BirthDate(row.birth_year, row.birth_month, row.birth_day) if row.birth_year else None
    return SubjectDetails(tuple(names), born, row.locality, dict(row.identifiers or {}))


_COLUMNS = (Subject.id, Subject.birth_year, Subject.birth_month, Subject.birth_day,
            Subject.locality, Subject.identifiers, SubjectName.kind, SubjectName.given,
            SubjectName.family)


def details_of(session: Session, subject_ids: Iterable[int]) -> dict[int, SubjectDetails]:
    """The recorded details of each subject, names in the order they were given."""
    ids = list(subject_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(*_COLUMNS).join(SubjectName, SubjectName.subject_id == Subject.id)
        .where(Subject.id.in_(ids)).order_by(Subject.id, SubjectName.id)
    )
    return _grouped(rows)


def _grouped(rows: Iterable[Any]) -> dict[int, SubjectDetails]:
    names: dict[int, list[PersonName]] = {}
    first: dict[int, Any] = {}
    for row in rows:
        first.setdefault(row.id, row)
        names.setdefault(row.id, []).append(PersonName(row.given, row.family, row.kind))
    return {sid: _details(first[sid], names[sid]) for sid in first}


_block = SubjectKey.__table__.c  # type: ignore[attr-defined]
_BLOCK_ANY_YEAR = select(_block.subject_id).where(
    _block.key.in_(bindparam("b_keys", expanding=True))
)
_BLOCK_BY_YEAR = select(_block.subject_id).where(
    _block.key.in_(bindparam("b_keys", expanding=True)),
    or_(_block.birth_year.in_(bindparam("b_years", expanding=True)),
        _block.birth_year.is_(None)),
)


def block(session: Session, pool: str, details: SubjectDetails,
          forms: Sequence[NameForm]) -> dict[int, SubjectDetails]:
    """The subjects filed under any of the probe's keys, with their details.

    Two statements, the ids first: as one (``id IN (subquery)`` joined to the names), the
    PostgreSQL planner may hash the whole names table instead of looking ids up.
    """
    keys = sorted(keys_for(pool, details, forms))
    if not keys:
        return {}
    years = probe_years(details.born.year if details.born else None)
    params: dict[str, Any] = {"b_keys": keys}
    statement = _BLOCK_ANY_YEAR
    if years is not None:
        statement, params["b_years"] = _BLOCK_BY_YEAR, list(years)
    ids = set(session.scalars(statement, params))
    return details_of(session, ids)
