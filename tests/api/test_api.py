"""The HTTP API end to end: the real server on loopback, three agencies with their own tokens.

A whole case of the contract example (made runnable: ``tests/fixtures/cases_example.yaml``)
runs from referral to closure through the parallel tracks and their join; each agency sees
only what its roles allow, the therapy notes stay with the therapist, and a reminder
reaches the police's queue and is acknowledged there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_server import EXAMPLE, LiveServer, World, fire, live_server, world_on
from conftest import REPO, free_port
from prometheus_client.parser import text_string_to_metric_families

from engine.store.db import make_engine, session_factory
from engine.timers.tick import tick


@pytest.fixture
def server(db_url: str) -> Iterator[LiveServer]:
    with live_server(db_url) as running:
        yield running


@pytest.fixture
def world(server: LiveServer) -> Iterator[World]:
    with world_on(server) as made:
        yield made


def open_case(world: World, **data: Any) -> dict[str, Any]:
    return world.open_case(**data)


def run_tick(world: World) -> None:
    engine = make_engine(world.server.settings.database_url)
    try:
        tick(session_factory(engine), now=world.server.clock(), batch_size=100)
    finally:
        engine.dispose()


def test_deploying_again_is_a_no_op_and_versions_are_listed(world: World) -> None:
    again = world.admin.post("/workflows", content=EXAMPLE, headers={"Content-Type": "text/yaml"})
    assert again.status_code == 200
    assert again.json()["created"] is False
    listed = world.police.get("/workflows").json()
    assert [(w["workflow"], w["version"]) for w in listed] == [("community_panel", 1)]
    detail = world.police.get("/workflows/community_panel/versions/1").json()
    assert detail["source"] == EXAMPLE
    assert {"therapy_notes"} <= {f["name"] for f in detail["fields"]}
    notes = next(f for f in detail["fields"] if f["name"] == "therapy_notes")
    assert notes["visible_to"] == ["therapist"]
    diagram = world.police.get("/workflows/community_panel/versions/1/diagram")
    assert diagram.status_code == 200
    assert diagram.headers["content-type"].startswith("text/plain")
    assert diagram.text.startswith("stateDiagram-v2")


def test_a_whole_case_through_three_agencies(world: World) -> None:
    case = open_case(world)
    case_id = case["id"]
    assert case["state"] == ["referred"]
    assert case["assignments"]["therapist"] == {"agency_id": world.ids["health"],
                                                "agency": "health"}

    fire(world.council, case_id, "accept", "coordinator")
    screened = fire(world.police, case_id, "refer_to_panel", "police")
    assert screened["state"] == ["panel"]

    adopted = fire(world.council, case_id, "adopt", "chair", risk_level="moderate", consent=True)
    assert adopted["state"] == ["support.mentoring.matching", "support.therapy.intake"]
    assert "plan_agreed" in adopted["milestones"]

    fire(world.council, case_id, "begin_sessions", "coordinator")
    treated = fire(world.health, case_id, "begin_treatment", "therapist",
                   therapy_notes="disclosed family conflict")
    # The therapist's own view carries the notes; the response is filtered for the caller.
    assert treated["data"]["therapy_notes"] == "disclosed family conflict"
    assert treated["roles"] == ["therapist"]

    # Each agency reads the same case through its own roles.
    as_council = world.council.get(f"/cases/{case_id}").json()
    as_police = world.police.get(f"/cases/{case_id}").json()
    as_health = world.health.get(f"/cases/{case_id}").json()
    assert "therapy_notes" not in as_council["data"]
    assert "therapy_notes" in as_council["withheld"]
    assert "therapy_notes" not in as_police["data"]
    assert as_health["data"]["therapy_notes"] == "disclosed family conflict"
    assert as_health["withheld"] == []
    assert sorted(as_police["roles"]) == ["police", "police_supervisor"]
    # The admin reads as the system, which `visible_to` restricts like anyone else.
    as_admin = world.admin.get(f"/cases/{case_id}").json()
    assert "therapy_notes" not in as_admin["data"]
    # The triggers offered are those the reader's roles may fire now.
    assert {a["trigger"] for a in as_health["allowed"]} == {"finish_therapy"}
    assert "finish_mentoring" in {a["trigger"] for a in as_council["allowed"]}

    # History: the therapy notes' value never reaches another agency's copy.
    council_history = world.council.get(f"/cases/{case_id}/history").json()
    treatment = next(e for e in council_history if e["trigger"] == "begin_treatment")
    assert "therapy_notes" not in treatment["data"]["changes"]
    assert treatment["withheld"] == ["therapy_notes"]
    health_history = world.health.get(f"/cases/{case_id}/history").json()
    treatment = next(e for e in health_history if e["trigger"] == "begin_treatment")
    assert treatment["data"]["changes"]["therapy_notes"] == "disclosed family conflict"
    assert [e["seq"] for e in health_history] == sorted(e["seq"] for e in health_history)

    fire(world.council, case_id, "finish_mentoring", "mentor")
    joined = fire(world.health, case_id, "finish_therapy", "therapist")
    assert joined["state"] == ["review"]

    fire(world.council, case_id, "confirm_exit_criteria", "chair")
    closed = fire(world.council, case_id, "close", "chair")
    assert closed["state"] == ["closed_completed"]
    assert closed["closed"] is True
    assert closed["allowed"] == []
    kinds = [e["kind"] for e in world.admin.get(f"/cases/{case_id}/history").json()]
    assert kinds[0] == "opened"
    assert kinds.count("transition") == 9


def test_expected_version_guards_against_lost_updates(world: World) -> None:
    case = open_case(world)
    moved = world.council.post(
        f"/cases/{case['id']}/events",
        json={"trigger": "accept", "role": "coordinator", "expected_version": case["version"]},
    )
    assert moved.status_code == 200
    assert moved.json()["version"] == case["version"] + 1


def test_queue_shows_owned_states_and_reminders_oldest_first_and_ack_stops_them(
    world: World,
) -> None:
    clock = world.server.clock
    first = open_case(world)
    fire(world.council, first["id"], "accept", "coordinator")
    clock.advance(timedelta(hours=1))
    second = open_case(world)
    fire(world.council, second["id"], "accept", "coordinator")

    queue = world.police.get("/queue").json()
    assert [(i["kind"], i["case_id"], i["state"], i["role"]) for i in queue["items"]] == [
        ("state", first["id"], "screening", "police"),
        ("state", second["id"], "screening", "police"),
    ]
    assert queue["total"] == 2
    assert queue["next_offset"] is None
    page = world.police.get("/queue", params={"limit": 1, "offset": 1}).json()
    assert [i["case_id"] for i in page["items"]] == [second["id"]]
    assert page["total"] == 2
    assert world.police.get("/queue", params={"limit": 1}).json()["next_offset"] == 1
    # The health agency owns nothing in screening; the outsider holds no role at all.
    assert world.health.get("/queue").json()["items"] == []
    assert world.outsider.get("/queue").json()["items"] == []

    # Five business days later the screening deadline is missed: a reminder to the police.
    clock.advance(timedelta(days=8))
    run_tick(world)
    queue = world.police.get("/queue").json()["items"]
    reminders = [i for i in queue if i["kind"] == "escalation"]
    overdue = [i for i in queue if i["kind"] == "overdue_timer"]
    assert {(i["case_id"], i["timer"], i["step"]) for i in reminders} == {
        (first["id"], "screening_deadline", 0),
        (second["id"], "screening_deadline", 0),
    }
    assert {(i["case_id"], i["timer"]) for i in overdue} == {
        (first["id"], "screening_deadline"),
        (second["id"], "screening_deadline"),
    }
    since = [i["since"] for i in queue]
    assert since == sorted(since)

    escalation_id = next(i["escalation_id"] for i in reminders if i["case_id"] == first["id"])
    acked = world.police.post(f"/escalations/{escalation_id}/ack")
    assert acked.status_code == 200, acked.text
    assert acked.json()["agency_id"] == world.ids["police"]
    # Only the next ladder step was waiting; it will not fire now.
    assert acked.json()["stopped_steps"] == [1]
    left = world.police.get("/queue").json()["items"]
    assert escalation_id not in {i["escalation_id"] for i in left}
    history = world.police.get(f"/cases/{first['id']}/history").json()
    assert "ack" in [e["kind"] for e in history]

    # Leaving the state takes the case's work out of the police's queue.
    fire(world.police, first["id"], "refer_to_panel", "police")
    assert first["id"] not in {i["case_id"] for i in world.police.get("/queue").json()["items"]}
    admin_queue = world.admin.get("/queue").json()["items"]
    assert ("state", first["id"], "panel", "chair") in {
        (i["kind"], i["case_id"], i["state"], i["role"]) for i in admin_queue
    }


def test_queue_forgets_a_deadline_that_a_restart_moved_on(world: World) -> None:
    clock = world.server.clock
    case_id = open_case(world)["id"]
    fire(world.council, case_id, "accept", "coordinator")
    fire(world.police, case_id, "refer_to_panel", "police")
    fire(world.council, case_id, "adopt", "chair", risk_level="moderate", consent=True)
    fire(world.council, case_id, "begin_sessions", "coordinator")

    def overdue(kind: str = "overdue_timer") -> list[tuple[str, str]]:
        items = world.council.get("/queue").json()["items"]
        return [(i["timer"], i["since"]) for i in items if i["kind"] == kind]

    clock.advance(timedelta(days=22))
    run_tick(world)
    assert [timer for timer, _ in overdue()] == ["mentoring_heartbeat"]
    assert [timer for timer, _ in overdue("escalation")] == ["mentoring_heartbeat"]
    # A session restarts the heartbeat: the fired deadline and its reminder are history,
    # and the new deadline is not due yet.
    restarted = fire(world.council, case_id, "log_session", "mentor")
    assert overdue() == []
    assert overdue("escalation") == []
    due = next(t["due_at"] for t in restarted["timers"] if t["name"] == "mentoring_heartbeat")
    clock.advance(timedelta(days=22))
    assert [(timer, since[:19]) for timer, since in overdue()] == [
        ("mentoring_heartbeat", due[:19])
    ]


def test_health_and_metrics(world: World) -> None:
    health = httpx.get(f"{world.server.url}/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok", "broker": "not_configured",
                             "worker": "embedded"}
    case = open_case(world)
    fire(world.council, case["id"], "accept", "coordinator")
    world.server.clock.advance(timedelta(days=8))
    run_tick(world)
    metrics = httpx.get(f"{world.server.url}/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    # The exposition parses, and holds every family an operator alerts on.
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    assert {"referral_case_events", "referral_timers_fired", "referral_tick_lag_seconds",
            "referral_notifications_delivered", "referral_delivery_attempts_failed",
            "referral_notifications_dead_lettered"} <= set(families)
    assert families["referral_timers_fired"].type == "counter"
    lines = metrics.text.splitlines()
    assert 'referral_case_events_total{kind="opened"} 1.0' in lines
    assert 'referral_case_events_total{kind="transition"} 1.0' in lines
    assert "referral_timers_fired_total 1.0" in lines
    assert "referral_notifications_delivered_total 0.0" in lines
    assert "referral_notifications_dead_lettered_total 0.0" in lines
    assert "referral_delivery_attempts_failed_total 0.0" in lines
    assert "referral_cases_open 1.0" in lines
    # Nothing due is waiting for a tick, so no lag; a day later the next step is a day late.
    assert "referral_tick_lag_seconds 0.0" in lines
    world.server.clock.advance(timedelta(days=3))
    lines = httpx.get(f"{world.server.url}/metrics").text.splitlines()
    lag = next(line for line in lines if line.startswith("referral_tick_lag_seconds "))
    assert float(lag.split()[1]) > 0


def test_openapi_schema_documents_auth_and_errors(server: LiveServer) -> None:
    schema = httpx.get(f"{server.url}/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    event = schema["paths"]["/cases/{case_id}/events"]["post"]
    for status in ("401", "403", "404", "409", "413", "422", "500"):
        ref = event["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorOut")
    deploy = schema["paths"]["/workflows"]["post"]
    assert "text/yaml" in deploy["requestBody"]["content"]


@pytest.mark.slow
def test_referral_serve_gives_a_running_engine_from_nothing(tmp_path: Path) -> None:
    """One command on a fresh machine: migrate, deploy the shipped workflows, worker, API."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFERRAL_")}
    env["REFERRAL_DATABASE_URL"] = f"sqlite:///{tmp_path / 'fresh.db'}"
    env["REFERRAL_LOG_CHANNEL_PATH"] = str(tmp_path / "notifications.jsonl")
    # Set but empty counts as unset: an empty token would lock the administrator out.
    env["REFERRAL_ADMIN_TOKEN"] = ""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from engine.cli import main; main()", "serve",
         "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        # With no REFERRAL_ADMIN_TOKEN the command makes one for the run and says so first.
        first = proc.stderr.readline()
        assert first.startswith("admin token for this run: "), first
        token = first.split(": ", 1)[1].strip()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "referral serve exited during startup"
            try:
                health = httpx.get(f"{url}/healthz", timeout=1.0)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "referral serve did not answer in time"
                time.sleep(0.05)
        assert health.json()["worker"] == "embedded"
        shipped = sorted(p.stem for p in (REPO / "workflows").glob("*.yaml"))
        listed = httpx.get(f"{url}/workflows", headers={"Authorization": f"Bearer {token}"})
        assert sorted(w["workflow"] for w in listed.json()) == shipped
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_referral_serve_names_a_database_it_cannot_use_without_a_traceback(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFERRAL_")}
    env["REFERRAL_ADMIN_TOKEN"] = "serve-test-admin"
    env["REFERRAL_DATABASE_URL"] = "postgresql://postgres:hunter2@127.0.0.1:1/nothing"
    done = subprocess.run(
        [sys.executable, "-c", "from engine.cli import main; main()", "serve",
         "--port", str(free_port())],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert "cannot use the database postgresql://postgres:***@127.0.0.1:1/nothing" in done.stderr
    assert "Traceback" not in done.stderr
    assert "hunter2" not in done.stderr and "serve-test-admin" not in done.stderr
