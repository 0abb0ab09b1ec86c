"""Names as the matcher sees them: transliterated, folded, tokenised, coded, blocked.

Every spelling is brought to plain lowercase ASCII with ``anyascii`` (Nguyễn -> nguyen,
Łukasz -> lukasz, Мухаммед -> mukhammed), particles are joined to the name they belong
(al, bin, van, de, ...) are left out, a leading Arabic article is left out of the code
(Al-Hassan, al Hassan and Alhassan all code as Hassan), and each token gets a phonetic
code from ``jellyfish``'s metaphone (Mohammed, Muhammad and Mohamed are all MHMT).

Blocking keys pair the codes of two tokens (exact keys), and the code of one token
with the first letter of another's (loose keys, in both orders): swapped given and
family names give the same keys, a missing middle name leaves the other pairs, and a
typo in one token still leaves the loose keys led by the other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import jellyfish
from anyascii import anyascii

# Left out of a name's tokens: written or not, joined or not, they say nothing of who
# the person is ("al Hassan", "bin Laden", "van der Berg", "de la Cruz").
PARTICLES = frozenset(
    {"al", "el", "ul", "bin", "ibn", "ben", "bint", "van", "von", "der", "den", "de",
     "del", "da", "di", "du", "la", "le", "dos", "das", "y"}
)
# Romanisation pairs that metaphone does not already fold, applied before coding only
# (scoring still compares the spellings): ou/oo/u and ee/i (Yusuf, Youssef, Yousef),
# w/v (Kowalski, Kovalsky), kh/h and q/k (Khalid, Halid; Qasim, Kasim), ph/f, and
# Somali x for h (Maxamed, Mohamed), Polish sz and cz (Szymanski, Shimansky).
_FOLDS = (("sz", "sh"), ("cz", "ch"), ("ou", "u"), ("oo", "u"), ("ee", "i"), ("w", "v"),
          ("kh", "h"), ("q", "k"), ("ph", "f"), ("y", "i"), ("j", "i"), ("x", "h"))
_DOUBLED = re.compile(r"([a-z])\1+")
_NOT_LETTER = re.compile(r"[^a-z]+")
# A leading Arabic article ("alhasan", "elamin", and "lhsn" from Arabic script, which is
# written without short vowels): a token that may start with one is also coded without
# it, so Hassan and Al-Hassan share their keys while Alison keeps its own.
_ARTICLE = re.compile(r"^(?:(?:al|el|ul)(?=[a-z]{4,})|l(?=[^aeiouy]{2}))")
# Somali writes the Arabic ayn as a leading c (Cabdi, Cali, Cigaal): such a token is
# also coded without it, so it meets Abdi, Ali and Egal.
_AYN = re.compile(r"^c(?=[aeiou])")
_VOWELS = "AEIOU"


@lru_cache(maxsize=65536)
def plain(text: str) -> str:
    """Lowercase ASCII letters and single spaces: transliterated, diacritics gone."""
    ascii_text = anyascii(text).lower().replace("'", "").replace("\u2019", "")
    return " ".join(_NOT_LETTER.sub(" ", ascii_text).split())


def tokens(text: str) -> tuple[str, ...]:
    """The name's tokens without particles (unless the name is nothing else)."""
    parts = plain(text).split()
    kept = tuple(part for part in parts if part not in PARTICLES)
    return kept or tuple(parts)


def bare(token: str) -> str:
    """The token without a leading Arabic article (alhasan -> hasan)."""
    return _ARTICLE.sub("", token)


@lru_cache(maxsize=65536)
def code(token: str) -> str:
    """The token's phonetic code, after the romanisation folds and with doubled letters
    single (metaphone drops a doubled leading vowel: Aadan would lose its A)."""
    folded = token
    for old, new in _FOLDS:
        folded = folded.replace(old, new)
    folded = _DOUBLED.sub(r"\1", folded)
    found = jellyfish.metaphone(folded) or folded[:4].upper()
    # Metaphone keeps a leading vowel as written; transliterations disagree on it
    # (Ibrahim, Ebrahim; Omar, Umar), so every leading vowel codes as A.
    return "A" + found[1:] if found[0] in _VOWELS else found


@lru_cache(maxsize=65536)
def codes(token: str) -> tuple[str, ...]:
    """The token's code, and its codes without a leading article or ayn where it may
    have one."""
    found = [code(token)]
    for stripped in (bare(token), _AYN.sub("", token)):
        if stripped != token and code(stripped) not in found:
            found.append(code(stripped))
    return tuple(found)


@dataclass(frozen=True, slots=True)
class NameForm:
    """One spelling of a full name, ready for scoring: its tokens and their codes."""

    tokens: tuple[str, ...]
    # Per token, its codes (two for a token that may start with an article).
    codes: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, given: str, family: str) -> NameForm:
        return _form(given, family)


@lru_cache(maxsize=65536)
def _form(given: str, family: str) -> NameForm:
    # Cached: a search scores every name of its block, and common names recur.
    toks = tokens(f"{given} {family}")
    return NameForm(toks, tuple(codes(t) for t in toks))


def blocking_keys(pool: str, forms: Iterable[NameForm]) -> tuple[set[str], set[str]]:
    """The subject's keys in ``pool``: exact ones (the codes of two tokens, order-free)
    and typo-tolerant ones (one token's code and the first letter of another's)."""
    exact: set[str] = set()
    loose: set[str] = set()
    for form in forms:
        per_token = form.codes
        if len(per_token) == 1:
            exact.update(f"{pool}|{lead}" for lead in per_token[0])
        for i, leads in enumerate(per_token):
            for j, others in enumerate(per_token):
                if i == j:
                    continue
                for lead in leads:
                    loose.update(f"{pool}|{lead}|{other[0]}" for other in others)
                    exact.update(f"{pool}|{'+'.join(sorted((lead[:3], other[:3])))}"
                                 for other in others if i < j)
    return exact, loose


def swap_year(year: int) -> int:
    """The year with its last two digits transposed (1998 -> 1989)."""
    return year - year % 100 + (year % 10) * 10 + (year // 10) % 10


def probe_years(year: int | None) -> tuple[int, ...] | None:
    """The birth years a probe searches: its own and its last two digits transposed
    (1989 for 1998); None searches every year."""
    if year is None:
        return None
    swapped = swap_year(year)
    return (year,) if swapped == year else (year, swapped)
