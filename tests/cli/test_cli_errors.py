"""The CLI reports an unusable database in one line, never with a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///{tmp}/no/such/folder/referral.db",
        "postgresql://nobody@127.0.0.1:1/referral",
    ],
)
def test_unreachable_database_is_one_clear_line(url: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["case", "show", "1"], env={"REFERRAL_DATABASE_URL": url.format(tmp=tmp_path)}
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.startswith("error: database: ")


def test_unmigrated_database_is_refused_with_the_fix(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = CliRunner().invoke(app, ["case", "show", "1"], env={"REFERRAL_DATABASE_URL": url})
    assert result.exit_code == 1
    assert "referral db upgrade" in result.output
