"""The engine's public face: every name it lists loads, and loads only its own module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import engine


def test_every_public_name_resolves_to_its_home() -> None:
    assert sorted(engine.__all__) == sorted(engine._HOME)
    for name in engine.__all__:
        value = getattr(engine, name)
        assert value is getattr(sys.modules[engine._HOME[name]], name)


def test_a_name_loads_only_what_it_needs() -> None:
    code = (
        "import sys; from engine import Settings; "
        "print(sorted(m for m in sys.modules if m.startswith('engine.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "engine.cases.service" not in out and "engine.settings" in out


EDGE = {"engine", "engine.clock", "engine.errors", "engine.settings"}
# The CLI is an edge inside the package: its own modules, the simulation it drives, and
# the case list, which reads the tables as a report.
CLI = EDGE | {"engine.cli", "engine.simulate.run", "engine.store.tables"}


def test_the_edges_use_the_public_face() -> None:
    # Deep modules (engine.cases.service, engine.timers.tick, ...) are the engine's own
    # business; the edges see the face and the cross-cutting top-level modules only.
    root = Path(__file__).resolve().parent.parent
    for folder, allowed in (("api", EDGE), ("workers", EDGE), ("engine/cli", CLI)):
        for path in sorted((root / folder).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = (
                    [node.module or ""] if isinstance(node, ast.ImportFrom)
                    else [a.name for a in node.names] if isinstance(node, ast.Import) else []
                )
                for name in names:
                    if name.startswith("engine") and not name.startswith("engine.cli."):
                        assert name in allowed, f"{folder}/{path.name} imports {name}"
