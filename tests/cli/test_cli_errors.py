"""The CLI reports an unusable database in one line naming it, never with a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("sqlite:///{tmp}/no/such/folder/referral.db", "{tmp}/no/such/folder/referral.db"),
        ("postgresql://nobody:secret@127.0.0.1:1/referral", "nobody:***@127.0.0.1:1/referral"),
    ],
)
def test_unusable_database_is_one_clear_line_naming_it(
    url: str, named: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app, ["case", "show", "1"], env={"REFERRAL_DATABASE_URL": url.format(tmp=tmp_path)}
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.startswith("error: ")
    assert named.format(tmp=tmp_path) in result.output
    assert "secret" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_missing_sqlite_file_is_named_and_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default URL is relative: run from a directory holding no database.
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["case", "list"], env={"REFERRAL_DATABASE_URL": None})
    assert result.exit_code == 1
    assert f"no database at {tmp_path / 'referral.db'}" in result.stderr
    assert "referral db upgrade" in result.stderr
    assert not (tmp_path / "referral.db").exists()


def test_unmigrated_database_is_refused_naming_the_file_and_the_fix(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    db.touch()
    result = CliRunner().invoke(
        app, ["case", "show", "1"], env={"REFERRAL_DATABASE_URL": f"sqlite:///{db}"}
    )
    assert result.exit_code == 1
    assert f"the database {db} is at migration none" in result.output
    assert "referral db upgrade" in result.output


def test_json_errors_are_one_json_object(tmp_path: Path) -> None:
    env = {"REFERRAL_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"}
    result = CliRunner().invoke(app, ["case", "show", "1", "--json"], env=env)
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "database_not_migrated"
    assert str(tmp_path / "none.db") in error["message"]
    assert set(error) == {"code", "message", "details"}
    assert result.stderr == ""


def test_usage_reads_as_a_command_line() -> None:
    result = CliRunner().invoke(app, ["case", "open", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    text = result.stdout
    assert "Usage: referral case open [OPTIONS] WORKFLOW" in text
    assert "--assign" in text and "ROLE=AGENCY" in text and "KEY=VALUE" in text
    for python_ish in ("<bool>", "<list[str]>", "{workflow}"):
        assert python_ish not in text
    missing = CliRunner().invoke(app, ["diagram"])
    assert missing.exit_code == 2
    assert "Usage: referral diagram [OPTIONS] PATH" in missing.output


def test_usage_errors_under_json_are_one_json_object_too() -> None:
    result = CliRunner().invoke(app, ["case", "show", "not-a-number", "--json"])
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "usage_error" and "'CASE'" in error["message"]
    plain = CliRunner().invoke(app, ["case", "show", "not-a-number"])
    assert plain.exit_code == 2 and "Usage: referral case show" in plain.output
