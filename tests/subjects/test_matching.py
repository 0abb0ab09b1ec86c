"""Name normalisation, scoring and the shipped evaluation set (no database needed)."""

from __future__ import annotations

import pytest

from engine.settings import Settings
from engine.subjects.details import BirthDate, SubjectDetails, subject_details
from engine.subjects.evaluation import TRADITIONS, evaluate, labelled_pairs
from engine.subjects.names import NameForm, blocking_keys
from engine.subjects.scoring import Match, dob_score, score
from engine.subjects.search import in_block


def _match(a: SubjectDetails, b: SubjectDetails) -> Match:
    return score(a, b, a.forms(), b.forms())


def _person(given: str, family: str, born: BirthDate | None = None) -> SubjectDetails:
    return SubjectDetails(subject_details([{"given": given, "family": family}]).names, born)


@pytest.mark.parametrize(("a", "b"), [
    (("Mohammed", "Al-Hassan"), ("Muhammad", "Alhasan")),
    (("Mohamed", "El Hassan"), ("Mohammad", "Hassan")),
    (("Nguyễn", "Văn Minh"), ("Nguyen", "Minh")),
    (("Łukasz", "Kowalski"), ("Lukasz", "Kovalsky")),
    (("Maxamed", "Cabdi"), ("Mohamed", "Abdi")),
    (("Ibrahim", "Omar"), ("Ebrahim", "Umar")),
    (("Alhasan", "Muhammad"), ("Muhammad", "Alhasan")),  # swapped
])
def test_transliteration_variants_share_a_block_and_score_high(
    a: tuple[str, str], b: tuple[str, str],
) -> None:
    exact = [blocking_keys("p", [NameForm.of(*name)])[0] for name in (a, b)]
    assert exact[0] & exact[1]  # even a probe with a year alone reads the other's block
    threshold = Settings().match_threshold
    born = BirthDate(2008, 3, 1)
    one, two = _person(*a, born), _person(*b, born)
    assert in_block("p", two, one, threshold) and in_block("p", one, two, threshold)
    match = _match(one, two)
    assert match.score >= threshold, match


def test_a_missing_middle_name_a_typo_and_diacritics_still_match() -> None:
    born = BirthDate(1990, 5, 17)
    full = _person("Muhammad Ali", "Qureshi", born)
    for other in (_person("Muhammad", "Qureshi", born), _person("Muhamamd", "Qureshi", born),
                  _person("Mühammad Ali", "Qureshi", born)):
        assert _match(full, other).score >= 0.75
        assert in_block("p", other, full, 0.75)


def test_a_full_date_reads_only_near_dates_and_a_year_alone_its_whole_year() -> None:
    born = BirthDate(1990, 3, 12)
    probe = _person("Muhammad", "Khan", born)
    for near in (born, BirthDate(1990, 12, 3), BirthDate(1990, 3, 21), BirthDate(1990),
                 BirthDate(1909, 3, 12), None):
        assert in_block("p", probe, _person("Mohammed", "Khan", near), 0.75), near
    other_day = _person("Mohammed", "Khan", BirthDate(1990, 8, 2))
    assert not in_block("p", probe, other_day, 0.75)
    assert in_block("p", probe, other_day, 0.7)  # a threshold it could reach: read
    assert in_block("p", _person("Muhammad", "Khan", BirthDate(1990)), other_day, 0.75)
    assert not in_block("p", probe, _person("Mohammed", "Khan", BirthDate(1991, 3, 12)), 0.75)


def test_namesakes_born_on_other_days_are_not_candidates() -> None:
    one = _person("Muhammad", "Khan", BirthDate(1990, 5, 17))
    for born in (BirthDate(2001, 2, 3), BirthDate(1990, 9, 30)):
        assert _match(one, _person("Muhammad", "Khan", born)).score < 0.75
    sibling = _person("Imran", "Khan", BirthDate(1990, 5, 17))
    assert _match(one, sibling).score < 0.75


@pytest.mark.parametrize(("other", "detail"), [
    (BirthDate(2008, 3, 1), "exact"),
    (BirthDate(2008, 1, 3), "day and month swapped"),
    (BirthDate(2008, 3, 10), "transposed digits"),
    (BirthDate(2080, 3, 1), "transposed digits"),
    (BirthDate(2008), "year only"),
    (None, "unknown"),
    (BirthDate(2008, 7, 9), "same year, different date"),
    (BirthDate(1999, 3, 1), "different"),
])
def test_dates_of_birth_compare_with_named_reasons(other: BirthDate | None,
                                                   detail: str) -> None:
    assert dob_score(BirthDate(2008, 3, 1), other)[1] == detail


def test_reasons_never_carry_the_other_subjects_values() -> None:
    mine = _person("Muhammad", "Alhasan", BirthDate(2008, 3, 1))
    theirs = SubjectDetails(_person("Mohammed", "Al-Hassan").names, BirthDate(2008, 3, 1),
                            "Southport", {"pnc": "08/1"})
    text = repr([r.as_dict() for r in _match(mine, theirs).reasons])
    for secret in ("Mohammed", "Hassan", "Southport", "08/1", "2008"):
        assert secret not in text


def test_the_shipped_set_is_deterministic_and_covers_every_tradition() -> None:
    first = list(labelled_pairs(700, seed=3))
    assert first == list(labelled_pairs(700, seed=3))
    assert first != list(labelled_pairs(700, seed=4))
    assert {p.tradition for p in first} == {t.name for t in TRADITIONS}
    assert {p.same for p in first} == {True, False}
    assert len(TRADITIONS) >= 7


def test_precision_and_recall_at_the_default_threshold_are_at_least_095() -> None:
    quality = evaluate(Settings().match_threshold)
    assert quality.pairs == 4000
    assert quality.precision >= 0.95, quality
    assert quality.recall >= 0.95, quality
