"""The ``cli`` fixture: the real ``referral`` command on a fresh SQLite file of the test's.

Imported by the CLI test modules (a conftest.py here would shadow the top-level one,
which other tests import as ``conftest``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from engine.cli import app


@pytest.fixture(name="cli")
def cli_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("REFERRAL_DATABASE_URL", url)
    monkeypatch.delenv("REFERRAL_LOG_CHANNEL_PATH", raising=False)
    runner = CliRunner()

    def run(*args: str, ok: bool = True) -> Any:
        result = runner.invoke(app, list(args))
        if ok:
            assert result.exit_code == 0, (args, result.output, result.stderr)
        else:
            assert result.exit_code == 1, (args, result.output)
            assert "Traceback" not in result.output + result.stderr
        return result

    run.url = url  # type: ignore[attr-defined]
    return run
