"""Figures and their output: a table for people, JSON for machines.

Every figure is the median of several rounds, printed beside its floor (the same work
done the cheapest way, measured in the same run) and the ratio of the two, with the
target it is held to and whether it met it.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

FIGURES = ("decide", "event", "tick", "scale", "latency", "simulate", "matching")


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured line: a figure, its floor, the ratio, and the target."""

    figure: str  # one of FIGURES
    variant: str  # what was measured, e.g. "postgresql, 2 processes"
    value: float | None  # the median; None when skipped
    unit: str
    floor: float | None
    floor_label: str  # what the floor is
    ratio: float | None  # as the target states it (value/floor unless noted)
    target: str = ""
    met: bool | None = None  # None: no target applies to this line
    rounds: tuple[float, ...] = ()
    floor_rounds: tuple[float, ...] = ()
    note: str = ""
    skipped: str | None = None  # why the line was not measured

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rounds"] = list(self.rounds)
        data["floor_rounds"] = list(self.floor_rounds)
        return data


def skipped(figure: str, variant: str, unit: str, reason: str) -> Figure:
    return Figure(figure, variant, None, unit, None, "", None, skipped=reason)


def measured(
    figure: str,
    variant: str,
    rounds: Sequence[float],
    unit: str,
    floor_rounds: Sequence[float],
    floor_label: str,
    *,
    target: str = "",
    check: Any = None,
    note: str = "",
    ratio_of: Any = None,
) -> Figure:
    """A figure from its rounds and its floor's rounds; ``check(value, floor, ratio)``
    says whether the target is met, ``ratio_of(value, floor)`` overrides value/floor."""
    value, floor = median(rounds), median(floor_rounds)
    if ratio_of is not None:
        ratio = float(ratio_of(value, floor))
    else:
        ratio = value / floor if floor else float("nan")
    met = bool(check(value, floor, ratio)) if check is not None else None
    return Figure(
        figure, variant, value, unit, floor, floor_label, ratio, target, met,
        tuple(rounds), tuple(floor_rounds), note,
    )


@dataclass
class Report:
    quick: bool
    databases: tuple[str, ...]
    commit: str
    date: str
    machine: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, figures: Iterable[Figure]) -> None:
        self.figures.extend(figures)

    def as_dict(self) -> dict[str, Any]:
        return {
            "quick": self.quick,
            "databases": list(self.databases),
            "commit": self.commit,
            "date": self.date,
            "machine": self.machine,
            "seconds": round(self.seconds, 1),
            "notes": self.notes,
            "figures": [f.as_dict() for f in self.figures],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)


def _num(value: float | None) -> str:
    if value is None or value != value:
        return "-"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _verdict(figure: Figure) -> str:
    if figure.skipped:
        return "skipped"
    if figure.met is None:
        return ""
    return "met" if figure.met else "MISSED"


def _grouped(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(figure, text) pairs without repeats, in first-seen order."""
    return list(dict.fromkeys(pairs))


def table(report: Report) -> str:
    """A plain-text table (no colour codes, so it pastes into the README as it is)."""
    header = ("figure", "variant", "median", "unit", "floor", "ratio", "target", "")
    rows: list[tuple[str, ...]] = []
    for f in report.figures:
        if f.skipped:
            rows.append((f.figure, f.variant, f"skipped: {f.skipped}", "", "", "", "", ""))
            continue
        rows.append((
            f.figure, f.variant, _num(f.value), f.unit, _num(f.floor),
            f"{_num(f.ratio)}x", f.target, _verdict(f),
        ))
    measured_rows = [r for r in [header, *rows] if not r[2].startswith("skipped: ")]
    widths = [max(len(r[i]) for r in measured_rows) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        if row[2].startswith("skipped: "):
            lines.append(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}")
            continue
        cells = [
            row[i].rjust(widths[i]) if i in (2, 4, 5) else row[i].ljust(widths[i])
            for i in range(len(row))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    legend = _grouped((f.figure, f.floor_label) for f in report.figures
                      if not f.skipped and f.floor_label)
    notes = _grouped((f.figure, f.note) for f in report.figures if f.note)
    out = [
        f"referral-engine benchmarks, {'--quick' if report.quick else 'full'} run, "
        f"{report.date}, commit {report.commit}, {report.machine}",
        "",
        *lines,
        "",
        "floors:",
        *(f"  {figure}: {text}" for figure, text in legend),
    ]
    if notes:
        out += ["", "notes:", *(f"  {figure}: {text}" for figure, text in notes)]
    if report.notes:
        out += ["", *report.notes]
    out += ["", f"total time {report.seconds:.0f} s"]
    return "\n".join(out)
