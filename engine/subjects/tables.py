"""Subject tables: the person, their names, blocking keys, case links and decisions.

A subject belongs to the cases that name it (``case_subjects``); deleting a case removes
its rows here by cascade, and ``service.purge_orphan_subjects`` then removes a subject no
case names any more. Names and dates of birth live only in these tables, never in the
audit history, which every role on a case reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.tables import Base


class Subject(Base):
    __tablename__ = "subjects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Matching pool of the definition the subject was recorded under (``subjects.pool``):
    # a case is only matched against subjects of the same pool.
    pool: Mapped[str] = mapped_column(String(64))
    birth_year: Mapped[int | None] = mapped_column(Integer, default=None)
    birth_month: Mapped[int | None] = mapped_column(Integer, default=None)
    birth_day: Mapped[int | None] = mapped_column(Integer, default=None)
    locality: Mapped[str | None] = mapped_column(String(200), default=None)
    identifiers: Mapped[dict[str, Any]]
    recorded_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SubjectName(Base):
    """One spelling of the subject's name: the primary one, an alias, another script."""

    __tablename__ = "subject_names"
    __table_args__ = (Index("ix_subject_names_subject", "subject_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # primary, alias, script
    given: Mapped[str] = mapped_column(String(200), default="")
    family: Mapped[str] = mapped_column(String(200), default="")


class SubjectKey(Base):
    """A blocking key: candidate search reads only the rows of the probe's keys, years
    and dates, each an equality lookup in ``ix_subject_keys_block``.

    ``birth_year`` 0 and ``born`` ``-`` are a subject whose date is unknown (and every
    identifier key), found by every probe; ``born`` is ``2008`` for a year alone.
    """

    __tablename__ = "subject_keys"
    __table_args__ = (
        Index("ix_subject_keys_block", "key", "birth_year", "born", "subject_id"),
        Index("ix_subject_keys_subject", "subject_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(160))
    birth_year: Mapped[int] = mapped_column(Integer)
    born: Mapped[str] = mapped_column(String(10))


class CaseSubject(Base):
    """Which subject a case is about (one per case; a subject may be named by several)."""

    __tablename__ = "case_subjects"
    __table_args__ = (Index("ix_case_subjects_subject", "subject_id"),)

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"))


class SubjectDecision(Base):
    """A decision on a candidate: ``linked`` (same person) or ``rejected`` (not them).

    Taken on ``case_id`` (the case being screened) about ``other_case_id``; a link counts
    for both cases' prior contacts.
    """

    __tablename__ = "subject_decisions"
    __table_args__ = (Index("ix_subject_decisions_other", "other_case_id", "decision"),)

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    other_case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    decision: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)
    decided_at: Mapped[datetime]
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), default=None)
    role: Mapped[str] = mapped_column(String(64))
