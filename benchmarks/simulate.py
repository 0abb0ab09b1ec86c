"""Figure 6, simulate: a year of case time for each shipped workflow, on the virtual clock.

Each shipped workflow's example script (``workflows/examples/<name>.yaml``) runs through
the simulator's Python API (``engine.simulate.run.run_simulation``: a throw-away SQLite
database, the real service and tick) for at least a year of case time: ``until`` a year after
its start, unless the script already runs longer. The months covered are printed.
The floor is the same script with no steps, stopping one minute after the start: what a
run costs before any case time passes (database, migrations, deploy, agencies, opening).
"""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import datetime
from importlib import resources

from benchmarks.report import Figure, measured, skipped
from engine import clock
from engine.definitions.loader import load_definition
from engine.simulate.run import Simulation, run_simulation, shipped_names, workflow_source
from engine.simulate.script import parse_script

TARGET_SECONDS = 0.5
YEAR = "+12 months"
_TOP_KEY = re.compile(r"^([a-z_]+):", re.MULTILINE)


def example_script(name: str) -> tuple[str, str] | None:
    entry = resources.files("workflows") / "examples" / f"{name}.yaml"
    if not entry.is_file():
        return None
    return entry.read_text(encoding="utf-8"), f"workflows/examples/{name}.yaml"


def _blocks(text: str) -> dict[str, str]:
    """The script's top-level keys, each with its whole block of text."""
    marks = list(_TOP_KEY.finditer(text))
    return {
        m.group(1): text[m.start(): marks[i + 1].start() if i + 1 < len(marks) else len(text)]
        for i, m in enumerate(marks)
    }


def year_script(text: str, path: str, workflow_text: str) -> str:
    """The script running at least a year: its own ``until`` if later, else a year on."""
    script = parse_script(text, path, load_definition(workflow_text, "workflow.yaml"))
    year_on = calendar_add(script.start, months=12)
    if script.until is not None and script.until >= year_on:
        return text
    if any(step.at > year_on for step in script.steps):
        return text  # its steps run past a year: the script's own end covers them
    blocks = _blocks(text)
    blocks["until"] = f"until: {YEAR}\n"
    return "".join(block if block.endswith("\n") else block + "\n" for block in blocks.values())


def calendar_add(start: datetime, *, months: int) -> datetime:
    month = start.month - 1 + months
    year, month = start.year + month // 12, month % 12 + 1
    return start.replace(year=year, month=month, day=min(start.day, monthrange(year, month)[1]))


def empty_script(text: str) -> str:
    blocks = _blocks(text)
    kept = [blocks[key] for key in ("start", "assign", "data") if key in blocks]
    return "".join(b if b.endswith("\n") else b + "\n" for b in kept) + "until: +1 minute\n"


def _months(sim: Simulation) -> float:
    last = max([sim.until or sim.start, *(row.at for row in sim.rows)])
    return (last - sim.start).total_seconds() / (86400 * 365.25 / 12)


def _timed(
    workflow_text: str, path: str, script: str, script_path: str
) -> tuple[float, Simulation]:
    start = clock.monotonic()
    sim = run_simulation(workflow_text, path, script, script_path)
    return clock.monotonic() - start, sim


def run(*, rounds: int) -> list[Figure]:
    figures = []
    for name in shipped_names():
        found = example_script(name)
        if found is None:
            figures.append(skipped("simulate", name, "s", f"no workflows/examples/{name}.yaml"))
            continue
        text, script_path = found
        workflow_text, path = workflow_source(name)
        year, empty = year_script(text, script_path, workflow_text), empty_script(text)
        _timed(workflow_text, path, year, script_path)  # imports, compiled caches
        mine: list[float] = []
        floor: list[float] = []
        sim: Simulation | None = None
        for _ in range(rounds):
            seconds, sim = _timed(workflow_text, path, year, script_path)
            mine.append(seconds)
            floor.append(_timed(workflow_text, path, empty, script_path)[0])
        assert sim is not None
        figures.append(
            measured(
                "simulate", f"{name} ({_months(sim):.0f} months, {len(sim.rows)} rows)",
                mine, "s", floor,
                "the same script without steps, one minute long (database, deploy, open)",
                target=f"< {TARGET_SECONDS} s", check=lambda v, f, r: v < TARGET_SECONDS,
            )
        )
    return figures
