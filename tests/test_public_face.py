"""The engine's public face: every name it lists loads, and loads only its own module."""

from __future__ import annotations

import subprocess
import sys

import engine


def test_every_public_name_resolves_to_its_home() -> None:
    assert engine.__all__ == sorted(engine._HOME)
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
