"""``referral subject ...`` on a fresh SQLite file: the re-referral example, hostile
agencies refused without a traceback, and every command's ``--json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from casekit import AGENCY_FOR_ROLE, EXAMPLE_PATH, OUTSIDER
from typer.testing import CliRunner

from engine.cli import app

POLICE, COUNCIL = AGENCY_FOR_ROLE["police"], AGENCY_FOR_ROLE["coordinator"]
SCHOOL = AGENCY_FOR_ROLE["referrer"]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("REFERRAL_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()

    def run(*args: str, ok: bool = True) -> Any:
        result = runner.invoke(app, list(args))
        if ok:
            assert result.exit_code == 0, (args, result.output, result.stderr)
        else:
            assert result.exit_code == 1, (args, result.output)
            assert "Traceback" not in result.output + result.stderr
        return result

    run("db", "upgrade")
    run("deploy", str(EXAMPLE_PATH))
    for name in [*AGENCY_FOR_ROLE.values(), OUTSIDER]:
        run("agency", "add", name)
    return run


def _open(cli: Any) -> int:
    assigns = [f"--assign={role}={name}" for role, name in AGENCY_FOR_ROLE.items()]
    opened = cli("case", "open", "community_panel", *assigns, "--agency", SCHOOL, "--json")
    return int(json.loads(opened.stdout)["id"])


def test_the_re_referral_example_through_the_cli(cli: Any) -> None:
    earlier, new = _open(cli), _open(cli)
    cli("subject", "set", str(earlier), "--name", "Mohammed/Al-Hassan", "--born", "2008-03-01",
        "--locality", "Southport", "--agency", COUNCIL)
    recorded = json.loads(cli("subject", "set", str(new), "--name", "Muhammad/Alhasan",
                              "--script-name", "محمد/الحسن", "--born", "2008-03-01",
                              "--agency", POLICE, "--json").stdout)
    assert [n["kind"] for n in recorded["names"]] == ["primary", "script"]
    found = json.loads(cli("subject", "candidates", str(new), "--agency", POLICE,
                           "--json").stdout)
    assert [c["case_id"] for c in found] == [earlier]
    assert "Al-Hassan" not in json.dumps(found)
    assert "date_of_birth: exact" in cli("subject", "candidates", str(new), "--agency",
                                         COUNCIL).stdout
    linked = json.loads(cli("subject", "link", str(new), str(earlier), "--agency", COUNCIL,
                            "--json").stdout)
    assert linked["decision"] == "linked"
    shown = json.loads(cli("subject", "show", str(new), "--agency", POLICE, "--json").stdout)
    assert [p["case_id"] for p in shown["prior_contacts"]] == [earlier]
    assert "prior contacts: 1" in cli("subject", "show", str(new), "--agency", POLICE).stdout
    unlinked = json.loads(cli("subject", "unlink", str(new), str(earlier), "--agency", POLICE,
                              "--json").stdout)
    assert unlinked == {"case_id": new, "other_case_id": earlier, "linked": False}
    rejected = json.loads(cli("subject", "link", str(new), str(earlier), "--reject",
                              "--agency", POLICE, "--json").stdout)
    assert rejected["decision"] == "rejected"


def test_the_referrer_and_an_outsider_get_a_clear_refusal_and_no_data(cli: Any) -> None:
    case_id = _open(cli)
    cli("subject", "set", str(case_id), "--name", "Muhammad/Alhasan", "--agency", POLICE)
    for agency in (SCHOOL, OUTSIDER, AGENCY_FOR_ROLE["therapist"]):
        for command in ("show", "candidates"):
            refused = cli("subject", command, str(case_id), "--agency", agency, ok=False)
            assert "not found" in refused.stderr or "no subject visible" in refused.stderr
            assert "Alhasan" not in refused.output + refused.stderr
    bad = cli("subject", "set", str(case_id), "--name", "NoSlash", "--agency", POLICE, ok=False)
    assert "GIVEN/FAMILY" in bad.stderr
    assert "YYYY" in cli("subject", "set", str(case_id), "--name", "A/B", "--born", "3/1/08",
                         "--agency", POLICE, ok=False).stderr
