"""The case CLI end to end on a fresh SQLite file: thin commands, JSON output, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from casekit import AGENCY_FOR_ROLE, EXAMPLE_PATH, execute
from clikit import cli_fixture  # noqa: F401  (the `cli` fixture)

from engine.store.db import make_engine


def _json(result: Any) -> Any:
    return json.loads(result.stdout)


def test_refuses_an_unmigrated_database(cli: Any) -> None:
    result = cli("deploy", str(EXAMPLE_PATH), ok=False)
    assert "referral db upgrade" in result.stderr


def test_a_case_through_the_cli(cli: Any) -> None:
    assert _json(cli("db", "upgrade", "--json"))["revision"]
    cli("db", "upgrade")  # again: harmless
    deployed = _json(cli("deploy", str(EXAMPLE_PATH), "--json"))
    assert deployed[0]["created"] and deployed[0]["version"] == 1
    assert "unchanged: community_panel version 1" in cli("deploy", str(EXAMPLE_PATH)).stdout
    assert "community_panel v1" in cli("workflows").stdout

    tokens = {}
    for role, name in AGENCY_FOR_ROLE.items():
        extra = ["--webhook", "https://example.org/hook"] if role == "therapist" else []
        made = _json(cli("agency", "add", name, *extra, "--json"))
        assert set(made) == {"id", "name", "token", "webhook_secret"}
        tokens[role] = made["token"]
        assert (made["webhook_secret"] or "whsec_").startswith("whsec_")
        assert (made["webhook_secret"] is not None) == (role == "therapist")
    human = cli("agency", "add", "Other Agency").stdout
    assert "shown once" in human
    assert "Other Agency" in cli("agency", "list").stdout

    assigns = [f"--assign={role}={name}" for role, name in AGENCY_FOR_ROLE.items()]
    opened = _json(
        cli(
            "case",
            "open",
            "community_panel",
            *assigns,
            "--data",
            "risk_level=high",
            "--data",
            "consent=yes",
            "--agency",
            AGENCY_FOR_ROLE["referrer"],
            "--json",
        )
    )
    cid = str(opened["id"])
    assert opened["state"] == ["referred"]
    assert opened["data"]["consent"] is True

    def fire(trigger: str, role: str, *data: str) -> Any:
        args = ["case", "fire", cid, trigger, "--as", role, "--agency", AGENCY_FOR_ROLE[role]]
        for pair in data:
            args += ["--data", pair]
        return _json(cli(*args, "--json"))

    fire("accept", "police")
    fire("refer_to_panel", "police")
    assert fire("adopt", "chair")["state"] == [
        "support.mentoring.matching",
        "support.therapy.intake",
    ]
    shown = fire("begin_treatment", "therapist", "therapy_notes=private words")
    assert shown["data"]["therapy_notes"] == "private words"

    as_chair = _json(
        cli("case", "show", cid, "--as", "chair", "--agency", AGENCY_FOR_ROLE["chair"], "--json")
    )
    assert "therapy_notes" not in as_chair["data"] and as_chair["withheld"] == ["therapy_notes"]
    text = cli("case", "show", cid, "--agency", AGENCY_FOR_ROLE["therapist"]).stdout
    assert "private words" in text and "support.therapy.treatment" in text

    history = _json(cli("case", "history", cid, "--json"))
    assert [e["kind"] for e in history][:2] == ["opened", "transition"]
    assert "private words" not in json.dumps(history)
    assert "begin_treatment" in cli("case", "history", cid).stdout

    assert "intact" in cli("audit", "verify").stdout
    assert _json(cli("audit", "verify", cid, "--json")) == {"ok": True, "faults": []}

    # Errors: clear message on stderr, exit 1, nothing changed.
    err = cli("case", "fire", cid, "close", "--as", "chair", "--agency", "Nobody", ok=False)
    assert "no agency named 'Nobody'" in err.stderr
    err = cli(
        "case",
        "fire",
        cid,
        "adopt",
        "--as",
        "chair",
        "--agency",
        AGENCY_FOR_ROLE["chair"],
        ok=False,
    )
    assert "adopt" in err.stderr
    err = cli(
        "case",
        "fire",
        cid,
        "log_session",
        "--as",
        "mentor",
        "--agency",
        AGENCY_FOR_ROLE["mentor"],
        "--data",
        "shoe=9",
        ok=False,
    )
    assert "unknown field 'shoe'" in err.stderr
    err = cli("case", "show", cid, "--agency", "Other Agency", ok=False)
    assert f"case {cid} not found" in err.stderr
    err = cli(
        "case",
        "fire",
        cid,
        "withdraw",
        "--as",
        "coordinator",
        "--agency",
        "Other Agency",
        "--data",
        "shoe=9",
        ok=False,
    )
    assert "not found" in err.stderr and "shoe" not in err.stderr
    cli("case", "show", "9999", ok=False)
    cli("case", "open", "community_panel", "--assign", "referrer", ok=False)

    # Tampering is named, with exit status 1.
    engine = make_engine(cli.url)
    execute(engine, "UPDATE case_events SET role = 'x' WHERE seq = 2")
    engine.dispose()
    err = cli("audit", "verify", ok=False)
    assert f"case {cid} seq 2" in err.stderr
    faults = _json(cli("audit", "verify", cid, "--json", ok=False))
    assert faults["ok"] is False and faults["faults"][0]["seq"] == 2


def test_deploy_reports_every_problem_and_stores_nothing(cli: Any, tmp_path: Path) -> None:
    cli("db", "upgrade")
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE_PATH.read_text().replace("to: review", "to: revue"))
    err = cli("deploy", str(EXAMPLE_PATH), str(bad), ok=False)
    assert "bad.yaml" in err.stderr
    assert "no workflows deployed" in cli("workflows").stdout
    err = cli("deploy", str(tmp_path / "missing.yaml"), ok=False)
    assert "cannot read" in err.stderr
