"""The CLI's ``--json`` and the API write the same JSON for the same view.

Both read one database: the real API server on loopback, and the CLI pointed at it by
``REFERRAL_DATABASE_URL``. Each reader (an agency in one role, an agency in all its roles,
the administrator) gets the case and its history from both, which must be equal objects,
times written as ``...Z`` in both; so must a re-deploy's result and the workflow list.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from api_server import EXAMPLE, World, fire, live_server, world_on
from casekit import EXAMPLE_PATH
from typer.testing import CliRunner

from engine.cli import app

SECRET = "disclosed family conflict"


@pytest.fixture
def served(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("REFERRAL_DATABASE_URL", db_url)
    with live_server(db_url) as server, world_on(server) as made:
        yield made


@pytest.fixture
def world(served: World) -> World:
    """A case in treatment: milestones reached, timers running, the notes written."""
    case_id = served.open_case()["id"]
    fire(served.council, case_id, "accept", "coordinator")
    fire(served.police, case_id, "refer_to_panel", "police")
    fire(served.council, case_id, "adopt", "chair", risk_level="moderate", consent=True)
    fire(served.council, case_id, "begin_sessions", "coordinator")
    fire(served.health, case_id, "begin_treatment", "therapist", therapy_notes=SECRET)
    served.case_id = case_id
    return served


def cli_json(*args: str) -> Any:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (args, result.output, result.stderr)
    return json.loads(result.stdout)


def _times(view: dict[str, Any]) -> list[str]:
    found = [view["opened_at"]]
    found += [info["at"] for info in view["milestones"].values()]
    found += [timer["due_at"] for timer in view["timers"]]
    return found


# (the API client, its ``?role=``; the CLI's --agency, its --as): one reader, both ways.
READERS = [
    pytest.param("council", "chair", id="an agency in one role"),
    pytest.param("health", None, id="an agency in all its roles"),
    pytest.param(None, None, id="the administrator"),
]


@pytest.mark.parametrize(("agency", "role"), READERS)
def test_case_show_prints_what_the_api_answers(
    world: World, agency: str | None, role: str | None
) -> None:
    client = world.admin if agency is None else world.agencies[agency]
    params = {} if role is None else {"role": role}
    options = [*(["--agency", agency] if agency else []), *(["--as", role] if role else [])]
    case_id = str(world.case_id)

    answered = client.get(f"/cases/{case_id}", params=params)
    assert answered.status_code == 200, answered.text
    printed = cli_json("case", "show", case_id, *options)
    assert printed == answered.json()
    assert "plan_agreed" in printed["milestones"] and printed["timers"]
    assert all(time.endswith("Z") for time in _times(printed)), _times(printed)
    # The same filtering both ways: the notes reach the therapist and no one else.
    assert (SECRET in json.dumps(printed)) == (agency == "health")

    history = client.get(f"/cases/{case_id}/history", params=params).json()
    assert cli_json("case", "history", case_id, *options) == history
    assert all(event["at"].endswith("Z") for event in history)


def test_deploy_and_workflows_print_what_the_api_answers(served: World) -> None:
    again = served.admin.post("/workflows", content=EXAMPLE,
                              headers={"Content-Type": "text/yaml"})
    assert again.status_code == 200, again.text
    assert cli_json("deploy", str(EXAMPLE_PATH)) == [again.json()]

    listed = served.police.get("/workflows").json()
    assert cli_json("workflows") == listed
    assert listed[0]["deployed_at"].endswith("Z")
