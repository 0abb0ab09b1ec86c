"""What a newcomer meets on the CLI: names printed as text, readable output, case list,
acting through an agency, "did you mean", folders for deploy, and history's order."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from casekit import AGENCY_FOR_ROLE, EXAMPLE_PATH
from clikit import cli_fixture  # noqa: F401  (the `cli` fixture)

from engine.clock import utcnow


def _json(result: Any) -> Any:
    return json.loads(result.stdout)


@pytest.fixture
def world(cli: Any) -> Any:
    """A migrated database with the example workflow and one agency per role."""
    cli("db", "upgrade")
    cli("deploy", str(EXAMPLE_PATH))
    for name in AGENCY_FOR_ROLE.values():
        cli("agency", "add", name)
    return cli


def _open(cli: Any, *data: str) -> str:
    assigns = [f"--assign={role}={name}" for role, name in AGENCY_FOR_ROLE.items()]
    extra = [arg for pair in data for arg in ("--data", pair)]
    opened = _json(cli("case", "open", "community_panel", *assigns, *extra, "--json"))
    return str(opened["id"])


@pytest.mark.parametrize("name", ["ACME[/]", "[bold]Police[/bold]", "x[link=y]z", ":smile:"])
def test_a_name_that_looks_like_markup_is_printed_as_itself(cli: Any, name: str) -> None:
    cli("db", "upgrade")
    added = cli("agency", "add", name).stdout
    assert f"agency {name} (id 1) added" in added
    assert "API token (shown once): " in added
    assert f"1: {name}  (-)" in cli("agency", "list").stdout


def test_print_token_prints_the_token_alone(cli: Any) -> None:
    cli("db", "upgrade")
    token = cli("agency", "add", "City Council", "--print-token").stdout.strip()
    assert token and " " not in token
    assert cli("agency", "add", "Other", "--print-token").stdout.strip() != token


def test_a_role_acts_only_through_an_agency(world: Any) -> None:
    cid = _open(world)
    before = _json(world("case", "history", cid, "--json"))
    err = world("case", "fire", cid, "accept", "--as", "police", ok=False).stderr
    assert "--as police needs --agency AGENCY" in err
    err = world("case", "fire", cid, "accept", "--agency", AGENCY_FOR_ROLE["police"],
                ok=False).stderr
    assert "--agency needs --as ROLE" in err
    # Neither: the system acts, and the workflow says the system may not accept.
    err = world("case", "fire", cid, "accept", ok=False).stderr
    assert "system" in err
    assert _json(world("case", "history", cid, "--json")) == before
    fired = world("case", "fire", cid, "accept", "--as", "police", "--agency",
                  AGENCY_FOR_ROLE["police"], "--json")
    assert _json(fired)["state"] == ["screening"]


def test_a_mistyped_role_gets_a_suggestion(world: Any) -> None:
    cid = _open(world)
    err = world("case", "fire", cid, "accept", "--as", "polise", "--agency",
                AGENCY_FOR_ROLE["police"], ok=False).stderr
    assert "no role 'polise'; did you mean 'police'?" in err
    err = world("case", "open", "community_panel", "--assign", "cordinator=Panel Chair",
                ok=False).stderr
    assert "no role 'cordinator'; did you mean 'coordinator'?" in err
    err = world("case", "show", cid, "--as", "theraplist", "--agency",
                AGENCY_FOR_ROLE["therapist"], ok=False).stderr
    assert "did you mean 'therapist'?" in err
    # A stranger still learns nothing about the case, not even its roles.
    world("agency", "add", "Stranger")
    err = world("case", "fire", cid, "accept", "--as", "polise", "--agency", "Stranger",
                ok=False).stderr
    assert f"case {cid} not found" in err and "police" not in err
    err = world("case", "history", cid, "--as", "polise", "--agency", "Stranger",
                ok=False).stderr
    assert f"case {cid} not found" in err and "police" not in err


def test_human_output_has_words_not_python(world: Any) -> None:
    cid = _open(world, "consent=no", "risk_level=high")
    shown = world("case", "show", cid).stdout
    assert "data consent: false" in shown and "data risk_level: high" in shown
    assert "(open, revision 1)" in shown and "version 1" not in shown
    world("case", "fire", cid, "accept", "--as", "police", "--agency",
          AGENCY_FOR_ROLE["police"], "--data", "consent=yes")
    history = world("case", "history", cid).stdout
    assert "changes: consent=true" in history
    for python_ish in ("{", "}", "'", "True", "False"):
        assert python_ish not in history, history


def test_case_list_filters_and_json(world: Any) -> None:
    first, second, third = _open(world), _open(world), _open(world)
    police = ["--as", "police", "--agency", AGENCY_FOR_ROLE["police"]]
    world("case", "fire", second, "accept", *police)
    world("case", "fire", third, "withdraw", "--as", "coordinator", "--agency",
          AGENCY_FOR_ROLE["coordinator"])

    def ids(*args: str) -> list[int]:
        return [c["id"] for c in _json(world("case", "list", *args, "--json"))["cases"]]

    assert ids() == [int(first), int(second), int(third)]
    assert ids("--status", "open") == [int(first), int(second)]
    assert ids("--status", "closed") == [int(third)]
    assert ids("--state", "screening") == [int(second)]
    assert ids("--workflow", "other") == []
    world("agency", "add", "Stranger")
    assert ids("--agency", "Stranger") == []
    listed = _json(world("case", "list", "--agency", AGENCY_FOR_ROLE["police"], "--json"))
    assert listed["more"] is False and listed["cases"][0]["roles"] == ["police"]
    assert "data" not in listed["cases"][0]
    assert _json(world("case", "list", "--limit", "1", "--json"))["more"] is True
    text = world("case", "list", "--status", "closed").stdout
    assert f"{third}  community_panel v1  closed_withdrawn  (closed " in text
    assert "no cases match" in world("case", "list", "--workflow", "other").stdout


def test_json_errors_of_a_command_are_one_object(world: Any) -> None:
    cid = _open(world)
    result = world("case", "fire", cid, "adopt", "--as", "chair", "--agency",
                   AGENCY_FOR_ROLE["chair"], "--json", ok=False)
    error = _json(result)["error"]
    assert error["code"] == "transition_not_allowed" and "adopt" in error["message"]
    result = world("deploy", "missing.yaml", "--json", ok=False)
    assert _json(result)["error"]["code"] == "invalid_input"


def test_deploy_takes_a_folder_and_reads_files_before_the_database(
    cli: Any, tmp_path: Path
) -> None:
    # No database yet: the missing file is what is wrong, and is what is said.
    err = cli("deploy", str(tmp_path / "missing.yaml"), ok=False).stderr
    assert "cannot read" in err and "database" not in err
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "panel.yaml").write_text(EXAMPLE_PATH.read_text())
    cli("db", "upgrade")
    deployed = _json(cli("deploy", str(folder), "--json"))
    assert [(d["workflow"], d["created"]) for d in deployed] == [("community_panel", True)]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no *.yaml files" in cli("deploy", str(empty), ok=False).stderr


def test_history_says_why_a_virtual_tick_is_out_of_time_order(world: Any) -> None:
    cid = _open(world)
    police = ["--as", "police", "--agency", AGENCY_FOR_ROLE["police"]]
    world("case", "fire", cid, "accept", *police)
    ahead = (utcnow() + timedelta(days=30)).astimezone(UTC)
    ticked = world("tick", "--now", ahead.isoformat())
    assert f"case {cid} timer screening_deadline: reminder to 1 agency" in ticked.stdout
    # Without a log channel file, each notice is one line on stderr with no case details.
    assert "log channel: reminder " in ticked.stderr
    assert "details not shown" in ticked.stderr
    world("case", "fire", cid, "refer_to_panel", *police)
    result = world("case", "history", cid)
    events = _json(world("case", "history", cid, "--json"))
    times = [datetime.fromisoformat(e["at"]) for e in events]
    assert times != sorted(times)  # the store's order (seq), not time order
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert "listed in the order recorded (seq)" in result.stderr
    assert "referral tick --now" in result.stderr


def test_simulate_json_errors_are_one_object(cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("start: 2026-03-02 09:00\nassign: {cordinator: C}\n")
    result = cli("simulate", "community_panel", "--script", str(bad), "--json", ok=False)
    error = _json(result)["error"]
    assert error["code"] == "invalid_input"
    assert error["details"]["problems"][0]["line"] == 2


def test_a_changed_definition_under_a_deployed_version_is_refused_naming_the_file(
    cli: Any, tmp_path: Path
) -> None:
    cli("db", "upgrade")
    cli("deploy", str(EXAMPLE_PATH))
    edited = tmp_path / "edited.yaml"
    edited.write_text(EXAMPLE_PATH.read_text().replace("title:", "title: Edited", 1))
    err = cli("deploy", str(edited), ok=False).stderr
    assert f"error: {edited}: community_panel version 1 is already deployed" in err


def test_an_edited_shipped_workflow_is_named_by_its_file(sqlite_url: str) -> None:
    from conftest import REPO

    from engine.errors import DeployConflict
    from engine.machine.deploy import deploy, deploy_shipped
    from engine.store.db import make_engine, session_factory

    shipped = REPO / "workflows" / "community_panel.yaml"
    engine = make_engine(sqlite_url)
    try:
        with session_factory(engine)() as session:
            text = shipped.read_text(encoding="utf-8")
            deploy(session, text.replace("title:", "title: Edited", 1), "old.yaml",
                   now=utcnow())
            with pytest.raises(DeployConflict) as caught:
                deploy_shipped(session, utcnow())
    finally:
        engine.dispose()
    assert caught.value.message.startswith(f"{shipped}: community_panel version 1 ")
