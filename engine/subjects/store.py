"""Subject rows: writing a subject with its names and keys, and reading candidate blocks.

Candidate search is two statements whatever the number of subjects: the probe's keys
(with its birth years) select the block's subject ids through ``ix_subject_keys_block``,
and a second statement brings back those subjects' details and names for scoring.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.orm import Session

from engine.subjects.details import BirthDate, PersonName, SubjectDetails
from engine.subjects.names import NameForm, blocking_keys, plain, probe_years, swap_year
from engine.subjects.scoring import SAME_YEAR_OTHER_DATE, best_possible
from engine.subjects.tables import Subject, SubjectKey, SubjectName

UNKNOWN_YEAR = 0
UNKNOWN_DATE = "-"


def identifier_keys(pool: str, identifiers: Mapping[str, str]) -> set[str]:
    """Keys for official identifiers: a digest, so the key column holds no identifier."""
    return {
        f"{pool}|#{kind}|" + hashlib.sha256(plain(value).encode()).hexdigest()[:24]
        for kind, value in identifiers.items()
    }


def born_text(born: BirthDate | None) -> str:
    """How a key row files the birth date: ``2008-03-01``, ``2008`` or ``-``."""
    return born.text() if born is not None else UNKNOWN_DATE


def key_rows(subject_id: int, pool: str, details: SubjectDetails,
             forms: Sequence[NameForm]) -> list[dict[str, Any]]:
    """Name keys filed under the birth year and date; identifier keys under neither, so
    that a shared identifier is found whatever the dates say."""
    born = details.born
    year = born.year if born is not None else UNKNOWN_YEAR
    exact, loose = blocking_keys(pool, forms)
    rows = [{"subject_id": subject_id, "key": key, "birth_year": year, "born": born_text(born)}
            for key in sorted(exact | loose)]
    rows += [{"subject_id": subject_id, "key": key, "birth_year": UNKNOWN_YEAR,
              "born": UNKNOWN_DATE}
             for key in sorted(identifier_keys(pool, details.identifiers))]
    return rows


@dataclass(frozen=True, slots=True)
class Probe:
    """What a search reads: rows under ``keys``, of ``years`` and ``dates`` (None: any)."""

    keys: tuple[str, ...]
    years: tuple[int, ...] | None
    dates: tuple[str, ...] | None


def _near_dates(born: BirthDate) -> set[str]:
    """Full dates a record may carry for a probe born on ``born`` and still score as a
    near date: the same, day and month swapped, two digits transposed."""
    y, m, d = born.year, born.month or 0, born.day or 0
    flip = lambda n: int(f"{n:02d}"[::-1])  # noqa: E731
    found: set[str] = set()
    for year, month, day in ((y, m, d), (y, d, m), (y, m, flip(d)), (y, flip(m), d),
                             (swap_year(y), m, d)):
        try:
            found.add(date(year, month, day).isoformat())
        except ValueError:
            continue
    return found


def probe(pool: str, details: SubjectDetails, forms: Sequence[NameForm],
          threshold: float) -> Probe:
    """The rows a search for ``details`` reads.

    With a full date of birth: every key, of the near dates, year-only and undated
    records (other dates of the same year cannot reach a threshold above
    ``best_possible(SAME_YEAR_OTHER_DATE)``; below it, the whole years are read). With a
    year only: the exact keys of those years. With neither: the exact keys.
    """
    exact, loose = blocking_keys(pool, forms)
    ids = identifier_keys(pool, details.identifiers)
    born = details.born
    if born is None:
        return Probe(tuple(sorted(exact | ids)), None, None)
    years = (*(probe_years(born.year) or ()), UNKNOWN_YEAR)
    if not born.full:
        return Probe(tuple(sorted(exact | ids)), years, None)
    if threshold <= best_possible(SAME_YEAR_OTHER_DATE):
        return Probe(tuple(sorted(exact | loose | ids)), years, None)
    dates = _near_dates(born) | {str(y) for y in years[:-1]} | {UNKNOWN_DATE}
    return Probe(tuple(sorted(exact | loose | ids)), years, tuple(sorted(dates)))


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
_KEYS = _block.key.in_(bindparam("b_keys", expanding=True))
_YEARS = _block.birth_year.in_(bindparam("b_years", expanding=True))
_DATES = _block.born.in_(bindparam("b_dates", expanding=True))
_STATEMENTS = {
    (False, False): select(_block.subject_id).where(_KEYS).distinct(),
    (True, False): select(_block.subject_id).where(_KEYS, _YEARS).distinct(),
    (True, True): select(_block.subject_id).where(_KEYS, _YEARS, _DATES).distinct(),
}


def block(session: Session, pool: str, details: SubjectDetails,
          forms: Sequence[NameForm], threshold: float) -> dict[int, SubjectDetails]:
    """The subjects a search for ``details`` reads, with their details.

    Two statements, the ids first: as one (``id IN (subquery)`` joined to the names), the
    PostgreSQL planner may hash the whole names table instead of looking ids up.
    """
    found = probe(pool, details, forms, threshold)
    if not found.keys:
        return {}
    params: dict[str, Any] = {"b_keys": list(found.keys)}
    if found.years is not None:
        params["b_years"] = list(found.years)
    if found.dates is not None:
        params["b_dates"] = list(found.dates)
    statement = _STATEMENTS[(found.years is not None, found.dates is not None)]
    return details_of(session, set(session.scalars(statement, params)))


def in_block(pool: str, mine: SubjectDetails, theirs: SubjectDetails,
             threshold: float) -> bool:
    """Would a search for ``mine`` read ``theirs``? (The block statement, in Python.)"""
    found = probe(pool, mine, mine.forms(), threshold)
    for row in key_rows(0, pool, theirs, theirs.forms()):
        if row["key"] not in found.keys:
            continue
        if found.years is not None and row["birth_year"] not in found.years:
            continue
        if found.dates is None or row["born"] in found.dates:
            return True
    return False
