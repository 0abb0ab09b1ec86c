"""Every error the API answers, in its one shape ``{"error": {"code", "message", "details"}}``.

Against the real server on loopback; each status and stable code is produced and asserted,
and an agency with no role on a case can neither read it, fire on it nor acknowledge its
escalations: for it, the case does not exist.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from api_server import EXAMPLE, LiveServer, World, fire, live_server, world_on
from fastapi import FastAPI

from engine.store.db import make_engine, session_factory
from engine.timers.tick import tick

LIMIT = 16 * 1024


@pytest.fixture
def server(db_url: str) -> Iterator[LiveServer]:
    with live_server(db_url, max_request_bytes=LIMIT) as running:
        yield running


@pytest.fixture
def world(server: LiveServer) -> Iterator[World]:
    with world_on(server) as made:
        yield made


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert the status and the error shape; the error's details."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert "Traceback" not in response.text
    return dict(body["error"]["details"])


def screening_reminder(world: World) -> tuple[int, int]:
    """A case in screening whose deadline has passed: (case id, reminder escalation id)."""
    case = world.open_case()
    fire(world.council, case["id"], "accept", "coordinator")
    world.server.clock.advance(timedelta(days=8))
    engine = make_engine(world.server.settings.database_url)
    try:
        tick(session_factory(engine), now=world.server.clock(), batch_size=100)
    finally:
        engine.dispose()
    items = world.police.get("/queue").json()["items"]
    return case["id"], next(i["escalation_id"] for i in items if i["kind"] == "escalation")


def test_401_without_a_valid_bearer_token(world: World) -> None:
    anonymous = world.server.client()
    answer = anonymous.get("/cases/1")
    error_of(answer, 401, "unauthenticated")
    assert answer.headers["www-authenticate"] == "Bearer"
    error_of(world.server.client("not-a-token").get("/queue"), 401, "unauthenticated")
    basic = anonymous.get("/queue", headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
    error_of(basic, 401, "unauthenticated")
    error_of(anonymous.post("/workflows", content=EXAMPLE), 401, "unauthenticated")


def test_403_for_admin_work_and_roles_not_held(world: World) -> None:
    details = error_of(
        world.council.post("/workflows", content=EXAMPLE, headers={"Content-Type": "text/yaml"}),
        403, "forbidden",
    )
    assert details == {"caller": "council"}
    error_of(world.police.post("/agencies", json={"name": "rogue"}), 403, "forbidden")
    case = world.open_case()
    # The police hold roles on the case, but not the coordinator's.
    details = error_of(
        world.police.post(f"/cases/{case['id']}/events",
                          json={"trigger": "accept", "role": "coordinator"}),
        403, "forbidden",
    )
    assert details["role"] == "coordinator"
    assert details["held"] == ["police", "police_supervisor"]
    error_of(world.police.get(f"/cases/{case['id']}", params={"role": "therapist"}),
             403, "forbidden")
    _, escalation_id = screening_reminder(world)
    error_of(world.admin.post(f"/escalations/{escalation_id}/ack"), 403, "forbidden")


def test_404_for_unknown_things_and_other_agencies_cases(world: World) -> None:
    case_id, escalation_id = screening_reminder(world)
    unknown = error_of(world.council.get("/cases/999999"), 404, "not_found")
    assert unknown == {"case_id": 999999}
    # The outsider holds no role on the case: exactly as if it did not exist.
    outsider = world.outsider
    assert error_of(outsider.get(f"/cases/{case_id}"), 404, "not_found") == {"case_id": case_id}
    error_of(outsider.get(f"/cases/{case_id}/history"), 404, "not_found")
    error_of(
        outsider.post(f"/cases/{case_id}/events", json={"trigger": "withdraw",
                                                         "role": "coordinator"}),
        404, "not_found",
    )
    error_of(outsider.post(f"/escalations/{escalation_id}/ack"), 404, "not_found")
    error_of(outsider.post("/escalations/999999/ack"), 404, "not_found")
    # Nothing changed: the police still see the case in screening and the reminder open.
    assert world.police.get(f"/cases/{case_id}").json()["state"] == ["screening"]
    assert escalation_id in {i["escalation_id"] for i in world.police.get("/queue").json()["items"]}
    error_of(world.council.get("/workflows/unknown_flow/versions/1"), 404, "not_found")
    error_of(world.council.get("/workflows/community_panel/versions/7/diagram"), 404, "not_found")
    error_of(world.council.get("/no/such/route"), 404, "not_found")


def test_405_for_an_unsupported_method(world: World) -> None:
    answer = world.council.delete("/cases/1")
    error_of(answer, 405, "method_not_allowed")
    assert answer.headers["allow"] == "GET"
    # Two routes share the path: Allow names the methods of both.
    answer = world.council.request("OPTIONS", "/workflows")
    error_of(answer, 405, "method_not_allowed")
    assert answer.headers["allow"] == "GET, POST"


def test_409_version_ack_and_deploy_conflicts(world: World) -> None:
    case = world.open_case()
    fire(world.council, case["id"], "accept", "coordinator")
    details = error_of(
        world.police.post(
            f"/cases/{case['id']}/events",
            json={"trigger": "refer_to_panel", "role": "police",
                  "expected_version": case["version"]},
        ),
        409, "version_conflict",
    )
    assert details["expected_version"] == case["version"]
    assert details["current_version"] == case["version"] + 1
    assert world.police.get(f"/cases/{case['id']}").json()["state"] == ["screening"]

    changed = EXAMPLE.replace("title: Community referral", "title: Changed referral")
    assert changed != EXAMPLE
    details = error_of(
        world.admin.post("/workflows", content=changed, headers={"Content-Type": "text/yaml"}),
        409, "deploy_conflict",
    )
    assert details == {"workflow": "community_panel", "version": 1}

    _, escalation_id = screening_reminder(world)
    assert world.police.post(f"/escalations/{escalation_id}/ack").status_code == 200
    details = error_of(world.police.post(f"/escalations/{escalation_id}/ack"),
                       409, "ack_not_allowed")
    assert details["acknowledged_by"] == world.ids["police"]


def test_racing_requests_for_one_unique_value_get_4xx_never_500(world: World) -> None:
    # On PostgreSQL both may pass the engine's "name taken?" check before either
    # commits; the loser's unique-constraint failure is a conflict, not a server error.
    start = threading.Barrier(12)

    def add() -> int:
        with world.server.admin() as admin:
            start.wait(timeout=30)
            return admin.post("/agencies", json={"name": "twin"}).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda _: add(), range(12)))
    assert statuses.count(201) == 1
    assert set(statuses) <= {201, 409, 422}


def test_413_for_bodies_over_the_limit_with_or_without_a_length(world: World) -> None:
    big = "#" * (LIMIT + 1)
    details = error_of(
        world.admin.post("/workflows", content=big, headers={"Content-Type": "text/yaml"}),
        413, "request_too_large",
    )
    assert details == {"max_bytes": LIMIT, "content_length": LIMIT + 1}

    def chunks() -> Iterator[bytes]:
        for _ in range(LIMIT // 1024 + 2):
            yield b"#" * 1024

    streamed = world.admin.post("/workflows", content=chunks(),
                                headers={"Content-Type": "text/yaml"})
    assert "content-length" not in streamed.request.headers
    assert error_of(streamed, 413, "request_too_large") == {"max_bytes": LIMIT}
    # Under the limit the same endpoint parses the body as usual.
    error_of(world.admin.post("/workflows", content="#" * 100,
                              headers={"Content-Type": "text/yaml"}),
             422, "invalid_definition")


def test_415_for_a_definition_that_is_not_yaml_text(world: World) -> None:
    answer = world.admin.post("/workflows", content=b"workflow=x",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    details = error_of(answer, 415, "unsupported_media_type")
    assert "text/yaml" in details["accepted"] and "application/json" in details["accepted"]
    # JSON must carry the YAML text as "source", and nothing else.
    error_of(world.admin.post("/workflows", json={"workflow": "x"}), 422, "invalid_input")
    error_of(world.admin.post("/workflows", json={"source": ""}), 422, "invalid_input")


def test_a_definition_deploys_from_json_as_from_yaml(world: World) -> None:
    from api_server import EXAMPLE

    again = world.admin.post("/workflows", json={"source": EXAMPLE})
    assert again.status_code == 200, again.text  # world_on deployed the same text as YAML
    assert again.json()["workflow"] == "community_panel"


def test_415_for_a_json_body_sent_as_another_media_type(world: World) -> None:
    body = b'{"name": "plain"}'
    for headers in ({"Content-Type": "text/plain"},
                    {"Content-Type": "application/x-www-form-urlencoded"}, {}):
        answer = world.admin.post("/agencies", content=body, headers=headers)
        details = error_of(answer, 415, "unsupported_media_type")
        assert details == {"accepted": ["application/json"]}
        assert "application/json" in answer.json()["error"]["message"]
    case = world.open_case()
    error_of(world.council.post(f"/cases/{case['id']}/events",
                                content=b'{"trigger": "accept", "role": "coordinator"}',
                                headers={"Content-Type": "text/plain"}),
             415, "unsupported_media_type")
    # The token is checked first; JSON that is not an object stays invalid input.
    error_of(world.server.client().post("/agencies", content=body,
                                        headers={"Content-Type": "text/plain"}),
             401, "unauthenticated")
    error_of(world.admin.post("/agencies", json=["plain"]), 422, "invalid_input")
    assert world.council.get(f"/cases/{case['id']}").json()["state"] == ["referred"]


def test_422_invalid_definition_lists_every_problem_with_its_position(world: World) -> None:
    broken = EXAMPLE.replace("to: screening, by: [coordinator, police]",
                             "to: screeening, by: [coordinator, police]")
    broken = broken.replace("timezone: Europe/London", "timezone: Mars/Olympus")
    assert broken.count("screeening") == 1
    details = error_of(
        world.admin.post("/workflows", content=broken, headers={"Content-Type": "text/yaml"}),
        422, "invalid_definition",
    )
    problems = details["problems"]
    assert len(problems) >= 2
    for problem in problems:
        assert problem["line"] >= 1 and problem["col"] >= 1 and problem["message"]
    lines = EXAMPLE.splitlines()
    tz_line = next(n for n, text in enumerate(lines, 1) if text.startswith("timezone:"))
    assert tz_line in {p["line"] for p in problems}
    typo_line = next(n for n, text in enumerate(lines, 1) if "trigger: accept" in text)
    assert typo_line in {p["line"] for p in problems}
    error_of(world.admin.post("/workflows", content=b"\xff\xfe",
                              headers={"Content-Type": "text/yaml"}),
             422, "invalid_input")


def test_422_transition_not_allowed_names_the_allowed_triggers(world: World) -> None:
    case = world.open_case()
    details = error_of(
        world.council.post(f"/cases/{case['id']}/events",
                           json={"trigger": "close", "role": "chair"}),
        422, "transition_not_allowed",
    )
    assert details["case_id"] == case["id"]
    assert details["trigger"] == "close"
    assert details["state"] == ["referred"]
    assert details["role"] == "chair"
    assert details["allowed"] == []
    details = error_of(
        world.council.post(f"/cases/{case['id']}/events",
                           json={"trigger": "close", "role": "coordinator"}),
        422, "transition_not_allowed",
    )
    assert set(details["allowed"]) == {"accept", "withdraw"}


def test_422_invalid_input_from_validation_and_from_the_engine(world: World) -> None:
    case = world.open_case()
    events = f"/cases/{case['id']}/events"
    details = error_of(world.council.post(events, json={"role": "coordinator"}),
                       422, "invalid_input")
    assert [p["location"] for p in details["problems"]] == ["body.trigger"]
    error_of(world.council.post(events, content=b"{not json",
                                headers={"Content-Type": "application/json"}),
             422, "invalid_input")
    error_of(world.council.post(events, json={"trigger": "accept", "role": "coordinator",
                                              "surprise": 1}),
             422, "invalid_input")
    # The engine checks event data against the declared field types.
    error_of(world.council.post(events, json={"trigger": "accept", "role": "coordinator",
                                              "data": {"risk_level": "extreme"}}),
             422, "invalid_input")
    error_of(world.council.post(events, json={"trigger": "accept", "role": "coordinator",
                                              "data": {"no_such_field": 1}}),
             422, "invalid_input")
    assert world.council.get(f"/cases/{case['id']}").json()["state"] == ["referred"]
    error_of(world.council.get("/cases/0"), 422, "invalid_input")
    error_of(world.council.get(f"/cases/{2**40}"), 422, "invalid_input")
    error_of(world.council.get("/queue", params={"limit": 0}), 422, "invalid_input")
    error_of(
        world.council.post("/cases", json={"workflow": "community_panel",
                                           "assignments": {"coordinator": "nobody"}}),
        422, "invalid_input",
    )
    error_of(world.admin.post("/agencies", json={"name": "council"}), 409, "conflict")
    # JSON's true is not the id 1, for an agency or a version.
    error_of(world.admin.put(f"/cases/{case['id']}/assignments/police", json={"agency": True}),
             422, "invalid_input")
    error_of(world.council.post(events, json={"trigger": "accept", "role": "coordinator",
                                              "expected_version": True}),
             422, "invalid_input")


def test_422_for_text_no_store_can_hold(world: World) -> None:
    # JSON may escape a lone surrogate; UTF-8 (the database, the audit hash) cannot hold it.
    opened = world.council.post(
        "/cases", headers={"Content-Type": "application/json"},
        content=b'{"workflow": "community_panel", "assignments": {"coordinator": "council"},'
                b' "data": {"referral_reason": "a\\ud800b"}}',
    )
    details = error_of(opened, 422, "invalid_input")
    assert [p["location"] for p in details["problems"]] == ["body.data"]
    case = world.open_case()
    fired = world.council.post(
        f"/cases/{case['id']}/events", headers={"Content-Type": "application/json"},
        content=b'{"trigger": "accept", "role": "coordinator",'
                b' "data": {"referral_reason": ["\\udfff"]}}',
    )
    error_of(fired, 422, "invalid_input")
    assert world.council.get(f"/cases/{case['id']}").json()["version"] == case["version"]
    # Only the second case was opened; the refused one left nothing behind.
    assert 'referral_case_events_total{kind="opened"} 1.0' in world.admin.get("/metrics").text


def test_422_when_the_admin_asks_to_read_as_an_agency_role(world: World) -> None:
    case_id = world.open_case()["id"]
    for path in (f"/cases/{case_id}", f"/cases/{case_id}/history"):
        details = error_of(world.admin.get(path, params={"role": "therapist"}),
                           422, "invalid_input")
        assert details == {"case_id": case_id, "role": "therapist"}
        assert world.admin.get(path, params={"role": "system"}).status_code == 200
    schema = httpx.get(f"{world.server.url}/openapi.json").json()
    read = schema["paths"]["/cases/{case_id}"]["get"]
    assert "admin" in read["responses"]["422"]["description"]
    role = next(p for p in read["parameters"] if p["name"] == "role")
    assert "422" in role["description"]


def test_500_is_the_same_shape_without_a_traceback(db_url: str) -> None:
    def broken_route(app: FastAPI) -> None:
        @app.get("/boom")
        def boom() -> None:
            raise RuntimeError("secret internals")

    with live_server(db_url, configure=broken_route) as running, running.admin() as admin:
        answer = admin.get("/boom")
        assert error_of(answer, 500, "internal") == {}
        assert "secret internals" not in answer.text


def test_422_for_an_email_header_injection_and_nothing_stored(world: World) -> None:
    for address in ("a@b.c\nBcc:evil@x.y", "a@.", "a@b."):
        details = error_of(
            world.admin.post("/agencies", json={"name": "Mailer", "email": address}),
            422, "invalid_input")
        assert details["field"] == "email"
    # Nothing was stored: the name is still free.
    made = world.admin.post("/agencies", json={"name": "Mailer", "email": "m@x.example"})
    assert made.status_code == 201, made.text


def test_409_for_a_duplicate_agency_name(world: World) -> None:
    details = error_of(world.admin.post("/agencies", json={"name": "council"}), 409,
                       "conflict")
    assert details["field"] == "name"


def test_a_whole_number_float_is_an_integer_id_and_a_fraction_is_refused(
    world: World,
) -> None:
    case = world.open_case()
    body = {"trigger": "accept", "role": "coordinator",
            "expected_version": float(case["version"]) + 0.5}
    error_of(world.council.post(f"/cases/{case['id']}/events", json=body), 422,
             "invalid_input")
    body["expected_version"] = float(case["version"])
    answer = world.council.post(f"/cases/{case['id']}/events", json=body)
    assert answer.status_code == 200, answer.text


def test_the_schema_says_what_the_server_enforces(world: World) -> None:
    schema = world.admin.get("/openapi.json").json()
    assignments = schema["components"]["schemas"]["ReferralIn"]["properties"]["assignments"]
    assert assignments["propertyNames"]["pattern"] == "^[A-Za-z_][A-Za-z0-9_]*$"
    deploy = schema["paths"]["/workflows"]["post"]
    assert deploy["operationId"] == "post_workflow"
    content = deploy["requestBody"]["content"]
    assert content["text/yaml"]["schema"]["minLength"] == 1
    assert content["application/json"]["schema"]["required"] == ["source"]
    error_of(world.council.post("/cases", json={
        "workflow": "community_panel", "assignments": {"not a role!": "council"}}),
        422, "invalid_input")
