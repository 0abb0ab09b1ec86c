"""What is recorded about a subject, checked: names, birth date or year, locality, ids."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from engine.errors import InvalidInput
from engine.subjects.names import NameForm, plain

NAME_KINDS = ("primary", "alias", "script")
MAX_NAMES = 20
MAX_IDENTIFIERS = 10
MIN_YEAR, MAX_YEAR = 1900, 2100


@dataclass(frozen=True, slots=True)
class PersonName:
    given: str = ""
    family: str = ""
    # primary (as referred), alias (also known as), script (the name in another script)
    kind: str = "primary"

    def form(self) -> NameForm:
        return NameForm.of(self.given, self.family)

    def as_dict(self) -> dict[str, str]:
        return {"given": self.given, "family": self.family, "kind": self.kind}


@dataclass(frozen=True, slots=True)
class BirthDate:
    """A full date of birth, or only its year (``month``/``day`` None)."""

    year: int
    month: int | None = None
    day: int | None = None

    @property
    def full(self) -> bool:
        return self.month is not None and self.day is not None

    def text(self) -> str:
        if self.month is None or self.day is None:
            return str(self.year)
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"


@dataclass(frozen=True, slots=True)
class SubjectDetails:
    names: tuple[PersonName, ...]
    born: BirthDate | None = None
    locality: str | None = None
    identifiers: Mapping[str, str] = field(default_factory=dict)

    def forms(self) -> list[NameForm]:
        return [f for f in (n.form() for n in self.names) if f.tokens]


def _text(value: Any, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text")
    text = " ".join(value.split())
    if len(text) > limit:
        raise InvalidInput(f"{what} is longer than {limit} characters")
    return text


def _name(raw: Mapping[str, Any]) -> PersonName:
    kind = raw.get("kind", "primary")
    if kind not in NAME_KINDS:
        raise InvalidInput(f"name kind must be one of {', '.join(NAME_KINDS)}", kind=kind)
    given = _text(raw.get("given", ""), "a given name", 200)
    family = _text(raw.get("family", ""), "a family name", 200)
    if not plain(f"{given} {family}"):
        raise InvalidInput("each name needs a given or family name with letters in it")
    return PersonName(given=given, family=family, kind=kind)


def born(date_of_birth: date | None, birth_year: int | None) -> BirthDate | None:
    """The birth date from a full date, a year, or both (which must then agree)."""
    if date_of_birth is not None:
        if birth_year is not None and birth_year != date_of_birth.year:
            raise InvalidInput("birth_year differs from the year of date_of_birth")
        year, month, day = date_of_birth.year, date_of_birth.month, date_of_birth.day
    elif birth_year is not None:
        year, month, day = birth_year, None, None
    else:
        return None
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise InvalidInput(f"a birth year must be between {MIN_YEAR} and {MAX_YEAR}")
    return BirthDate(year, month, day)


def subject_details(
    names: Sequence[Mapping[str, Any]],
    *,
    date_of_birth: date | None = None,
    birth_year: int | None = None,
    locality: str | None = None,
    identifiers: Mapping[str, str] | None = None,
) -> SubjectDetails:
    """Checked details; ``InvalidInput`` names the first thing wrong."""
    if not names or len(names) > MAX_NAMES:
        raise InvalidInput(f"a subject needs 1 to {MAX_NAMES} names")
    checked = tuple(_name(n) for n in names)
    if not any(n.kind == "primary" for n in checked):
        raise InvalidInput("one name must be of kind 'primary'")
    ids = dict(identifiers or {})
    if len(ids) > MAX_IDENTIFIERS:
        raise InvalidInput(f"at most {MAX_IDENTIFIERS} identifiers")
    clean_ids = {_text(k, "an identifier type", 32): _text(v, "an identifier", 64)
                 for k, v in ids.items()}
    place = _text(locality, "the locality", 200) if locality is not None else None
    return SubjectDetails(checked, born(date_of_birth, birth_year), place or None, clean_ids)
