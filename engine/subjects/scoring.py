"""How alike two subjects are: a score in [0, 1] with the reasons for it.

Names are compared token by token, order-free (swapped given and family names score as
well as the right order), over the shorter name (a missing middle name costs nothing);
each token pair scores the best of rapidfuzz's Jaro-Winkler and Indel similarities of
their spellings and an equal phonetic code. Date of birth and locality then move the
score up or down. Reasons name how the parts compare, never the other subject's values,
so a caller learns nothing of an earlier record it may not read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler

from engine.subjects.details import BirthDate, SubjectDetails
from engine.subjects.names import NameForm, bare, plain, swap_year

# Below this name score the rest cannot make a match: a shared birthday is no evidence
# that two different names belong to one person.
NAME_GATE = 0.78
WEIGHTS = {"name": 0.55, "date_of_birth": 0.35, "locality": 0.10}
PHONETIC = 0.93
NEAR_DATE = 0.85  # day and month swapped, or two digits transposed
SAME_YEAR_OTHER_DATE = 0.2


def best_possible(dob: float) -> float:
    """The highest total a candidate can reach with this date-of-birth score (names and
    locality perfect): candidate search leaves out dates that cannot reach the threshold."""
    return WEIGHTS["name"] + WEIGHTS["date_of_birth"] * dob + WEIGHTS["locality"]


@dataclass(frozen=True, slots=True)
class Reason:
    factor: str  # name, date_of_birth, locality, identifier
    score: float
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"factor": self.factor, "score": round(self.score, 3), "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Match:
    score: float
    reasons: tuple[Reason, ...]


def _token_similarity(a: str, b: str, codes_a: tuple[str, ...],
                      codes_b: tuple[str, ...]) -> float:
    if a == b:
        return 1.0
    spelled = max(
        JaroWinkler.normalized_similarity(a, b),
        JaroWinkler.normalized_similarity(bare(a), bare(b)),
        fuzz.ratio(a, b) / 100.0,
    )
    return max(spelled, PHONETIC) if set(codes_a) & set(codes_b) else spelled


def _assign(short: NameForm, long: NameForm) -> tuple[float, bool]:
    """Mean similarity of the shorter name's tokens, each matched to a distinct token of
    the longer one (greedily, best pair first), and whether the pairing crosses order."""
    pairs = sorted(
        (
            (_token_similarity(a, b, short.codes[i], long.codes[j]), i, j)
            for i, a in enumerate(short.tokens)
            for j, b in enumerate(long.tokens)
        ),
        reverse=True,
    )
    used_i: set[int] = set()
    used_j: dict[int, int] = {}
    total = 0.0
    for sim, i, j in pairs:
        if i in used_i or j in used_j:
            continue
        used_i.add(i)
        used_j[j] = i
        total += sim
    order = [used_j[j] for j in sorted(used_j)]
    return total / len(short.tokens), order != sorted(order)


def _name_pair(a: NameForm, b: NameForm) -> tuple[float, str]:
    short, long = (a, b) if len(a.tokens) <= len(b.tokens) else (b, a)
    score, swapped = _assign(short, long)
    joined = JaroWinkler.normalized_similarity("".join(a.tokens), "".join(b.tokens))
    if joined > score:
        # One token against two ("Abdulrahman", "Abdul Rahman"): compare them whole.
        return joined, "spelling variant"
    if len(short.tokens) == 1 and len(long.tokens) > 1:
        # A lone name matched against a full one is weak evidence.
        score *= 0.85
    return score, _name_detail(a, b, score, swapped, len(short.tokens) < len(long.tokens))


def _name_detail(a: NameForm, b: NameForm, score: float, swapped: bool, fewer: bool) -> str:
    if a.tokens == b.tokens:
        return "same"
    parts: list[str] = []
    if sorted(a.tokens) == sorted(b.tokens) or swapped:
        parts.append("given and family names swapped")
    if fewer:
        parts.append("a name missing")
    if score < 1.0:
        phonetic = {c for cs in a.codes for c in cs} & {c for cs in b.codes for c in cs}
        parts.append("phonetic match" if phonetic else "spelling variant")
    return ", ".join(parts) or "same"


def name_score(mine: Sequence[NameForm], theirs: Sequence[NameForm]) -> tuple[float, str]:
    """The best score over every pair of spellings of the two subjects' names."""
    best, detail = 0.0, "different"
    for a in mine:
        for b in theirs:
            score, why = _name_pair(a, b)
            if score > best:
                best, detail = score, why
    return best, detail


def _digits_transposed(x: int, y: int) -> bool:
    return x != y and f"{x:02d}" == f"{y:02d}"[::-1]


def _full_dates(a: BirthDate, b: BirthDate) -> tuple[float, str]:
    if (a.year, a.month, a.day) == (b.year, b.month, b.day):
        return 1.0, "exact"
    if a.year == b.year and (a.month, a.day) == (b.day, b.month):
        return NEAR_DATE, "day and month swapped"
    same_year = a.year == b.year
    one_transposed = (
        (same_year and a.month == b.month and _digits_transposed(a.day or 0, b.day or 0))
        or (same_year and a.day == b.day and _digits_transposed(a.month or 0, b.month or 0))
        or ((a.month, a.day) == (b.month, b.day) and swap_year(a.year) == b.year)
    )
    if one_transposed:
        return NEAR_DATE, "transposed digits"
    if same_year:
        return SAME_YEAR_OTHER_DATE, "same year, different date"
    return 0.0, "different"


def dob_score(a: BirthDate | None, b: BirthDate | None) -> tuple[float, str]:
    if a is None or b is None:
        return 0.5, "unknown"
    if a.full and b.full:
        return _full_dates(a, b)
    if a.year == b.year:
        return 0.75, "year only"
    if swap_year(a.year) == b.year:
        return 0.55, "year only, transposed digits"
    return 0.0, "different"


def locality_score(a: str | None, b: str | None) -> tuple[float, str]:
    if not a or not b:
        return 0.5, "unknown"
    if fuzz.token_set_ratio(plain(a), plain(b)) >= 90:
        return 1.0, "same"
    return 0.3, "different"


def _identifiers(mine: SubjectDetails, theirs: SubjectDetails) -> Reason | None:
    shared = set(mine.identifiers) & set(theirs.identifiers)
    if not shared:
        return None
    same = [k for k in sorted(shared) if plain(mine.identifiers[k]) == plain(theirs.identifiers[k])]
    if same:
        return Reason("identifier", 1.0, f"{same[0]} same")
    return Reason("identifier", 0.0, f"{sorted(shared)[0]} differs")


def score(mine: SubjectDetails, theirs: SubjectDetails, forms_mine: Sequence[NameForm],
          forms_theirs: Sequence[NameForm]) -> Match:
    """Score ``theirs`` as a candidate for ``mine`` (name forms computed by the caller)."""
    name, name_why = name_score(forms_mine, forms_theirs)
    dob, dob_why = dob_score(mine.born, theirs.born)
    place, place_why = locality_score(mine.locality, theirs.locality)
    reasons = [Reason("name", name, name_why), Reason("date_of_birth", dob, dob_why),
               Reason("locality", place, place_why)]
    total = (WEIGHTS["name"] * name + WEIGHTS["date_of_birth"] * dob
             + WEIGHTS["locality"] * place)
    if name < NAME_GATE:
        total = min(total, name * 0.5)
    ident = _identifiers(mine, theirs)
    if ident is not None:
        reasons.append(ident)
        # A shared official identifier decides it either way.
        total = max(total, 0.99) if ident.score == 1.0 else total * 0.5
    return Match(round(total, 4), tuple(reasons))
