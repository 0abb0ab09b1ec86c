"""Re-referral linking through the real API server, on SQLite and PostgreSQL.

The issue's example end to end: a closed case about "Mohammed Al-Hassan, 2008-03-01"
is found for a new referral of "Muhammad Alhasan, 1 March 2008" by the police and the
coordinator, linked, shown as a prior contact and unlinked; the referrer, an agency with
no role on the case and the administrator see none of it, in any route or in history.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from api_server import EXAMPLE, LiveServer, live_server

# Who holds which role: the school only refers; nobody else shares an agency with it.
ROLES = {
    "school": ["referrer"],
    "police": ["police", "police_supervisor"],
    "council": ["coordinator", "chair", "mentor"],
    "health": ["therapist"],
}
EARLIER = {"names": [{"given": "Mohammed", "family": "Al-Hassan"}],
           "date_of_birth": "2008-03-01", "locality": "Southport"}
NAMESAKE = {"names": [{"given": "Mohammed", "family": "Hassan"}],
            "date_of_birth": "1990-07-12", "locality": "Southport"}
REFERRAL = {"names": [{"given": "Muhammad", "family": "Alhasan"}],
            "date_of_birth": "2008-03-01"}
# What must never reach a caller about the earlier case or its subject.
SECRETS = ("Al-Hassan", "Mohammed", "Southport", "remark taken out of context")


@dataclass
class Agencies:
    server: LiveServer
    admin: httpx.Client
    clients: dict[str, httpx.Client]

    def __getattr__(self, name: str) -> httpx.Client:
        try:
            return self.clients[name]
        except KeyError:
            raise AttributeError(name) from None

    def open_case(self) -> int:
        assignments = {role: agency for agency, roles in ROLES.items() for role in roles}
        opened = self.school.post("/cases", json={"workflow": "community_panel",
                                                  "assignments": assignments})
        assert opened.status_code == 201, opened.text
        return int(opened.json()["id"])


@pytest.fixture
def world(db_url: str) -> Iterator[Agencies]:
    with live_server(db_url) as server:
        admin = server.admin()
        deployed = admin.post("/workflows", content=EXAMPLE,
                              headers={"Content-Type": "text/yaml"})
        assert deployed.status_code == 201, deployed.text
        clients = {}
        for name in [*ROLES, "outsider"]:
            made = admin.post("/agencies", json={"name": name})
            assert made.status_code == 201, made.text
            clients[name] = server.client(made.json()["token"])
        try:
            yield Agencies(server, admin, clients)
        finally:
            for client in [admin, *clients.values()]:
                client.close()


def _ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json() if answer.content else None


def _fire(client: httpx.Client, case_id: int, trigger: str, role: str, **data: Any) -> None:
    body: dict[str, Any] = {"trigger": trigger, "role": role, "data": data}
    _ok(client.post(f"/cases/{case_id}/events", json=body))


def _closed_earlier_case(w: Agencies) -> int:
    case_id = w.open_case()
    _ok(w.council.put(f"/cases/{case_id}/subject", json=EARLIER))
    _fire(w.council, case_id, "accept", "coordinator")
    _fire(w.police, case_id, "screen_out", "police",
          screening_rationale="remark taken out of context")
    w.server.clock.advance(timedelta(days=200))
    return case_id


def _not_found(answer: httpx.Response) -> None:
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["code"] == "not_found"
    assert not any(s in answer.text for s in SECRETS)


def test_a_misspelt_re_referral_finds_the_closed_case_for_police_and_coordinator(
    world: Agencies,
) -> None:
    earlier = _closed_earlier_case(world)
    namesake = world.open_case()
    _ok(world.council.put(f"/cases/{namesake}/subject", json=NAMESAKE))
    new = world.open_case()
    recorded = _ok(world.police.put(f"/cases/{new}/subject", json=REFERRAL))
    assert recorded["names"][0] == {"given": "Muhammad", "family": "Alhasan", "kind": "primary"}

    for client in (world.police, world.council):
        found = _ok(client.get(f"/cases/{new}/candidates"))
        assert [c["case_id"] for c in found] == [earlier]
        candidate = found[0]
        assert candidate["workflow"] == "community_panel"
        assert candidate["outcome"] == "closed_no_concern"
        assert candidate["closed_at"] is not None and candidate["decision"] is None
        assert candidate["score"] >= world.server.settings.match_threshold
        reasons = {r["factor"]: r["detail"] for r in candidate["reasons"]}
        assert reasons["date_of_birth"] == "exact"
        assert set(candidate) == {"case_id", "workflow", "opened_at", "closed_at", "outcome",
                                  "score", "reasons", "decision"}
        assert not any(s in json.dumps(found) for s in SECRETS)

    linked = _ok(world.police.post(f"/cases/{new}/links", json={"case_id": earlier}))
    assert linked["decision"] == "linked"
    panel = _ok(world.council.get(f"/cases/{new}/prior-contacts"))
    assert [(p["case_id"], p["outcome"], p["decided_on"]) for p in panel] == [
        (earlier, "closed_no_concern", new)]
    # The link counts for the earlier case too.
    assert [p["case_id"] for p in _ok(world.police.get(f"/cases/{earlier}/prior-contacts"))] == [
        new]
    history = _ok(world.police.get(f"/cases/{new}/history"))
    kinds = [(e["kind"], e["data"]) for e in history if e["kind"].startswith("subject_")]
    assert kinds[0] == ("subject_recorded", {"subject_id": recorded["subject_id"]})
    assert kinds[1][0] == "subject_linked" and kinds[1][1]["other_case_id"] == earlier
    assert not any(s in json.dumps(history) for s in (*SECRETS, "Alhasan", "2008-03-01"))

    _ok(world.council.delete(f"/cases/{new}/links/{earlier}"), 204)
    assert _ok(world.council.get(f"/cases/{new}/prior-contacts")) == []
    assert _ok(world.police.get(f"/cases/{earlier}/prior-contacts")) == []
    unlinked = [e for e in _ok(world.police.get(f"/cases/{earlier}/history"))
                if e["kind"] == "subject_unlinked"]
    assert unlinked[0]["data"] == {"other_case_id": new}
    _not_found(world.council.delete(f"/cases/{new}/links/{earlier}"))


def test_a_rejected_candidate_stays_listed_as_rejected_and_links_nothing(
    world: Agencies,
) -> None:
    earlier = _closed_earlier_case(world)
    new = world.open_case()
    _ok(world.police.put(f"/cases/{new}/subject", json=REFERRAL))
    rejected = _ok(world.council.post(f"/cases/{new}/links",
                                      json={"case_id": earlier, "decision": "rejected"}))
    assert rejected["decision"] == "rejected"
    assert [c["decision"] for c in _ok(world.police.get(f"/cases/{new}/candidates"))] == [
        "rejected"]
    assert _ok(world.council.get(f"/cases/{new}/prior-contacts")) == []
    history = _ok(world.police.get(f"/cases/{new}/history"))
    assert [e["kind"] for e in history][-1] == "subject_rejected"


def test_a_case_that_is_no_candidate_cannot_be_linked(world: Agencies) -> None:
    _closed_earlier_case(world)
    namesake = world.open_case()
    _ok(world.council.put(f"/cases/{namesake}/subject", json=NAMESAKE))
    new = world.open_case()
    _ok(world.police.put(f"/cases/{new}/subject", json=REFERRAL))
    _not_found(world.police.post(f"/cases/{new}/links", json={"case_id": namesake}))
    _not_found(world.police.post(f"/cases/{new}/links", json={"case_id": 999_999}))
    assert _ok(world.council.get(f"/cases/{new}/prior-contacts")) == []


def test_the_referrer_an_outsider_and_the_admin_see_no_subject_candidates_or_contacts(
    world: Agencies,
) -> None:
    earlier = _closed_earlier_case(world)
    new = world.open_case()
    _ok(world.police.put(f"/cases/{new}/subject", json=REFERRAL))
    _ok(world.police.post(f"/cases/{new}/links", json={"case_id": earlier}))
    for client in (world.school, world.health, world.outsider, world.admin):
        for case_id in (new, earlier):
            _not_found(client.get(f"/cases/{case_id}/subject"))
            _not_found(client.get(f"/cases/{case_id}/candidates"))
            _not_found(client.get(f"/cases/{case_id}/prior-contacts"))
            _not_found(client.put(f"/cases/{case_id}/subject", json=REFERRAL))
            _not_found(client.post(f"/cases/{case_id}/links", json={"case_id": earlier}))
            _not_found(client.delete(f"/cases/{case_id}/links/{earlier}"))
    # A role the agency holds narrows, never widens: police acting as supervisor only.
    _not_found(world.police.get(f"/cases/{new}/subject", params={"role": "police_supervisor"}))
    # Nothing about the subject or the link is in what the referrer reads of the case.
    history = _ok(world.school.get(f"/cases/{new}/history"))
    hidden = [e for e in history if e["kind"] == "restricted"]
    assert len(hidden) == 2
    assert all(e["data"] == {} and e["withheld"] == ["subject"] for e in hidden)
    assert not any(e["kind"].startswith("subject_") for e in history)
    case = _ok(world.school.get(f"/cases/{new}"))
    assert not any(s in json.dumps([history, case]) for s in (*SECRETS, "Alhasan"))
    # Both cases exist and the link stands: the 404s above were about visibility.
    assert [p["case_id"] for p in _ok(world.council.get(f"/cases/{new}/prior-contacts"))] == [
        earlier]


def test_bad_subjects_are_refused_and_change_nothing(world: Agencies) -> None:
    new = world.open_case()
    bad = [
        {"names": []},
        {"names": [{"given": "!!", "family": "--"}]},
        {"names": [{"given": "A", "family": "B", "kind": "alias"}]},
        {"names": [{"given": "A", "family": "B"}], "date_of_birth": "2008-03-01",
         "birth_year": 2007},
        {"names": [{"given": "A", "family": "B"}], "birth_year": 1700},
        {"names": [{"given": "A", "family": "B"}], "nickname": "x"},
    ]
    for body in bad:
        answer = world.police.put(f"/cases/{new}/subject", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["error"]["code"] == "invalid_input"
    _not_found(world.police.get(f"/cases/{new}/subject"))
    history = _ok(world.police.get(f"/cases/{new}/history"))
    assert [e["kind"] for e in history] == ["opened"]


def test_a_referral_carries_its_subject_which_the_referrer_never_reads_back(
    world: Agencies,
) -> None:
    earlier = _closed_earlier_case(world)
    assignments = {role: agency for agency, roles in ROLES.items() for role in roles}
    opened = world.school.post("/cases", json={
        "workflow": "community_panel", "assignments": assignments, "subject": REFERRAL})
    assert opened.status_code == 201, opened.text
    assert "Alhasan" not in opened.text and "subject" not in opened.json()
    new = int(opened.json()["id"])
    assert world.school.get(f"/cases/{new}/subject").status_code == 404
    assert world.school.get(f"/cases/{new}/candidates").status_code == 404
    shown = _ok(world.police.get(f"/cases/{new}/subject"))
    assert shown["names"][0]["family"] == "Alhasan"
    found = _ok(world.police.get(f"/cases/{new}/candidates"))
    assert [c["case_id"] for c in found] == [earlier]
    history = world.school.get(f"/cases/{new}/history").text
    assert "Alhasan" not in history and "subject_recorded" not in history
