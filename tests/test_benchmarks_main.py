"""How ``python -m benchmarks`` picks its figures and databases, without measuring."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.__main__ import QUICK, Run, database_figures, latency_database, parse_args


def _run(kinds: tuple[str, ...], pg_problem: str | None,
         wanted: frozenset[str] = frozenset({"event", "tick", "scale"})) -> Run:
    return Run(plan=QUICK, wanted=wanted, kinds=kinds, pg_problem=pg_problem, quick=True)


def test_only_names_the_figures_and_refuses_an_unknown_one() -> None:
    _, wanted = parse_args(["--only", " decide, event ,"])
    assert wanted == {"decide", "event"}
    with pytest.raises(SystemExit):
        parse_args(["--only", "decide,bogus"])


def test_an_unusable_postgresql_skips_its_wanted_figures(tmp_path: Path) -> None:
    run = _run(("postgresql",), "refused", frozenset({"tick", "scale", "decide"}))
    figures = database_figures(run, "postgresql", tmp_path)
    assert [(f.figure, f.skipped) for f in figures] == [
        ("tick", "no PostgreSQL on 127.0.0.1:5432 (refused)"),
        ("scale", "no PostgreSQL on 127.0.0.1:5432 (refused)"),
    ]


def test_no_database_figure_wanted_measures_nothing(tmp_path: Path) -> None:
    assert database_figures(_run(("sqlite",), None, frozenset({"decide"})), "sqlite",
                            tmp_path) == []


@pytest.mark.parametrize(
    ("kinds", "pg_problem", "expected"),
    [
        (("sqlite", "postgresql"), None, "postgresql"),
        (("sqlite", "postgresql"), "refused", "sqlite"),
        (("sqlite",), None, "sqlite"),
        (("postgresql",), "refused", "sqlite"),
    ],
)
def test_latency_prefers_a_usable_postgresql(kinds: tuple[str, ...], pg_problem: str | None,
                                             expected: str) -> None:
    assert latency_database(_run(kinds, pg_problem)) == expected
