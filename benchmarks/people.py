"""A synthetic population of subjects for the matching benchmark, deterministic by index.

Person ``i`` is drawn from its own seeded generator, so any person can be made again to
probe for it without holding a million in memory. Given names follow each tradition's
common names with a long-tailed weighting (Muhammad is common, as in England); family
names are a tradition's common ones or built from its syllables, so that, as in a real
population, the family names run into the tens of thousands.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from engine.subjects.details import BirthDate, PersonName, SubjectDetails
from engine.subjects.evaluation import TRADITIONS, Tradition

SYLLABLES = {
    "arabic": "al ha ma ra sa ka da na ba ja fa ta mi ri di hi ni li ad ar ash am",
    "somali": "wa ar sa ma da hi ro ja ma cu ga le ba xa de go ca ha fa yo du",
    "pakistani": "kha ra sha ma qu re hu sa ni ba cha ud ri za bu ta ka mir ja si",
    "vietnamese": "ng tr le ph ho vu da bu do ng du ly ha mai ta lu ca vo thi chu",
    "polish": "ko wal ski wis nie wo cik ka min le dow zie lin szy ma dab row ja",
    "english": "har wood ton ley ford field brook well sted more ham by ing wick",
    "spanish": "gar ci fer nan dez gon za rod ri guez lo pez mar ti sol va ro ca",
}
PLACES = tuple(f"Town {n}" for n in range(60))
POOL = "default"


@dataclass(frozen=True, slots=True)
class Person:
    index: int
    tradition: Tradition
    given: tuple[str, ...]
    family: tuple[str, ...]
    middle: tuple[str, ...] | None
    born: BirthDate
    place: str


def _weighted(rng: random.Random, groups: tuple[tuple[str, ...], ...]) -> tuple[str, ...]:
    # Rank r drawn with weight 1/(r+1): the first names of each list are the common ones.
    weights = [1.0 / (r + 1) for r in range(len(groups))]
    return rng.choices(groups, weights)[0]


def _family(rng: random.Random, trad: Tradition) -> tuple[str, ...]:
    if rng.random() < 0.3:
        return rng.choice(trad.family)
    parts = SYLLABLES[trad.name].split()
    return ("".join(rng.choice(parts) for _ in range(rng.randint(2, 3))).capitalize(),)


def person(index: int) -> Person:
    rng = random.Random(index * 7919 + 18)
    trad = TRADITIONS[index % len(TRADITIONS)]
    middle = rng.choice(trad.middle) if trad.middle and rng.random() < 0.3 else None
    born = BirthDate(rng.randint(1950, 2015), rng.randint(1, 12), rng.randint(1, 28))
    return Person(index, trad, _weighted(rng, trad.given), _family(rng, trad), middle, born,
                  rng.choice(PLACES))


def _name(p: Person, rng: random.Random | None) -> PersonName:
    def pick(group: tuple[str, ...]) -> str:
        return rng.choice(group) if rng is not None else group[0]

    given = pick(p.given)
    if p.middle is not None and (rng is None or rng.random() < 0.5):
        given = f"{given} {pick(p.middle)}"
    family = pick(p.family)
    if p.tradition.family_first:
        given, family = family, given
    return PersonName(given=given, family=family)


def recorded(p: Person) -> SubjectDetails:
    """The person as first recorded: the common spelling, full date of birth."""
    return SubjectDetails((_name(p, None),), p.born, p.place)


def probe(p: Person) -> SubjectDetails:
    """The person referred again: another spelling, perhaps only the year of birth."""
    rng = random.Random(p.index)
    born = p.born if rng.random() < 0.7 else BirthDate(p.born.year)
    return SubjectDetails((_name(p, rng),), born, p.place if rng.random() < 0.5 else None)
