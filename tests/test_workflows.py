"""The shipped workflows: each validates, deploys, and runs from referral to a final state
through the case service; the reference workflow uses every feature of the language; the
self-referral programme never lets a timer reach the police."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from engine.agencies import add_agency
from engine.cases import service
from engine.cases.views import CaseView
from engine.cli import app
from engine.definitions.loader import load_path
from engine.definitions.model import Definition
from engine.definitions.yamlsource import parse_yaml
from engine.errors import TransitionRejected
from engine.machine.deploy import compiled, deploy, deploy_shipped
from engine.store.db import make_engine, session_factory

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"
SHIPPED = sorted(p.stem for p in WORKFLOWS.glob("*.yaml"))
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

Step = tuple[str, str, Mapping[str, Any]]


def definition(name: str) -> Definition:
    return load_path(str(WORKFLOWS / f"{name}.yaml"))


def test_the_four_workflows_are_shipped() -> None:
    assert SHIPPED == ["community_panel", "minor_school", "prison_release",
                       "self_referral_exit"]
    assert sorted(p.stem for p in (WORKFLOWS / "examples").glob("*.yaml")) == SHIPPED


def test_referral_validate_accepts_every_shipped_workflow() -> None:
    result = CliRunner().invoke(app, ["validate", str(WORKFLOWS)])
    assert result.exit_code == 0, result.output
    for name in SHIPPED:
        assert definition(name).workflow == name


@pytest.mark.parametrize("name", SHIPPED)
def test_referral_diagram_draws_every_shipped_workflow(name: str) -> None:
    result = CliRunner().invoke(app, ["diagram", str(WORKFLOWS / f"{name}.yaml")])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("stateDiagram-v2")


# -- driving cases through the service -----------------------------------------------------

@dataclass
class Driver:
    """One case of a shipped workflow, each role held by an agency of its own."""

    factory: sessionmaker[Session]
    workflow: str
    now: datetime = T0
    agencies: dict[str, int] = field(default_factory=dict)
    case_id: int = 0

    def open(self, data: Mapping[str, Any]) -> CaseView:
        with self.factory() as session, session.begin():
            defn = deploy_shipped_one(session, self.workflow)
            for role in defn.roles:
                agency = add_agency(session, name=f"{self.workflow} {role}", now=self.now)
                self.agencies[role] = agency.agency.id
            view = service.open_case(session, workflow=self.workflow,
                                     assignments=self.agencies, data=dict(data), now=self.now)
        self.case_id = view.id
        return view

    def fire(self, trigger: str, role: str, data: Mapping[str, Any] | None = None) -> CaseView:
        self.now += timedelta(hours=1)
        with self.factory() as session, session.begin():
            return service.fire(session, self.case_id, trigger, role=role,
                                agency_id=self.agencies[role], data=dict(data or {}),
                                now=self.now)

    def run(self, steps: list[Step]) -> CaseView:
        view: CaseView | None = None
        for trigger, role, data in steps:
            view = self.fire(trigger, role, data)
        assert view is not None
        return view

    def view_as(self, role: str) -> CaseView:
        with self.factory() as session:
            return service.view(session, self.case_id, agency_id=self.agencies[role],
                                now=self.now)


def deploy_shipped_one(session: Session, name: str) -> Definition:
    text = (WORKFLOWS / f"{name}.yaml").read_text(encoding="utf-8")
    done = deploy(session, text, f"workflows/{name}.yaml", now=T0)
    return compiled(session, done.workflow, done.version).definition


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    yield session_factory(engine)
    engine.dispose()


def test_every_shipped_workflow_deploys_and_redeploys_as_a_no_op(
    factory: sessionmaker[Session],
) -> None:
    with factory() as session, session.begin():
        first = deploy_shipped(session, T0)
    with factory() as session, session.begin():
        again = deploy_shipped(session, T0)
    assert sorted(r.workflow for r in first) == SHIPPED
    assert all(r.created for r in first) and not any(r.created for r in again)


COMMUNITY_HAPPY: list[Step] = [
    ("accept", "coordinator", {}),
    ("suitable", "police", {"screening_category": "clear_vulnerability",
                            "screening_rationale": "indicators", "risk_level": "high",
                            "police_intelligence": "known associate"}),
    ("send_info_requests", "coordinator", {"info_requests_sent": ["health"],
                                           "legal_basis": "CTSA 2015 s.38"}),
    ("record_partner_response", "partner", {"partner_response": "known to CAMHS"}),
    ("list_for_panel", "coordinator", {}),
    ("adopt", "chair", {"panel_date": "2026-03-20", "panel_attendees": ["council", "police"],
                        "panel_rationale": "high risk"}),
    ("give_consent", "coordinator", {"consent": True, "disclosure_warning_shown": True,
                                     "consent_date": "2026-03-21", "consent_scope": ["all"]}),
    ("begin_sessions", "coordinator", {}),
    ("begin_treatment", "therapist", {}),
    ("log_therapy_attendance", "therapist", {"therapy_attendance": 1,
                                             "therapy_notes": "clinical detail"}),
    ("review_plan", "chair", {}),
    ("record_reassessment", "police", {"assessment_tool": "VERA-2R", "risk_level": "moderate"}),
    ("log_mentoring_session", "mentor", {"mentoring_sessions": 1}),
    ("finish_mentoring", "mentor", {}),
    ("finish_therapy", "therapist", {"therapy_summary": "engaged"}),
    ("confirm_exit_criteria", "chair", {}),
    ("decide_exit", "chair", {"exit_rationale": "goals met"}),
    ("record_six_month_review", "coordinator", {"review_6m_notes": "stable"}),
    ("record_twelve_month_review", "coordinator", {"review_12m_notes": "no concerns"}),
]


def test_community_panel_happy_path(factory: sessionmaker[Session]) -> None:
    case = Driver(factory, "community_panel")
    case.open({"referral_reason": "remarks in class", "referral_source": "school"})
    view = case.run(COMMUNITY_HAPPY[:10])
    assert view.state == ("support.mentoring.sessions", "support.therapy.treatment")
    # Therapy notes stay with the therapist; police intelligence with the police.
    assert "therapy_notes" in case.view_as("coordinator").withheld
    assert case.view_as("therapist").data["therapy_notes"] == "clinical detail"
    assert "police_intelligence" in case.view_as("chair").withheld
    assert case.view_as("police").data["police_intelligence"] == "known associate"
    referrer = case.view_as("referrer")
    assert "referral_reason" in referrer.data and "risk_level" in referrer.withheld
    view = case.run(COMMUNITY_HAPPY[10:16])
    assert view.state == ("exit_review",)
    view = case.run(COMMUNITY_HAPPY[16:])
    assert view.closed and view.state == ("closed_completed",)
    assert {"plan_agreed", "therapy_engaged", "exit_criteria_met",
            "six_month_review_done"} <= set(view.milestones)


def test_community_panel_withdrawal_from_any_stage(factory: sessionmaker[Session]) -> None:
    case = Driver(factory, "community_panel")
    case.open({"referral_reason": "concern"})
    case.run(COMMUNITY_HAPPY[:8])
    view = case.fire("withdraw", "coordinator", {"withdrawal_reason": "consent withdrawn"})
    assert view.closed and view.state == ("closed_withdrawn",)


def test_minor_school_happy_path_and_consent_renewed_at_18(
    factory: sessionmaker[Session],
) -> None:
    case = Driver(factory, "minor_school")
    case.open({"referral_reason": "sharing material"})
    view = case.run([
        ("record_mash_request", "referrer", {"mash_reference": "MASH-1"}),
        ("accept", "coordinator", {}),
        ("route_to_panel", "police", {}),
        ("list_for_panel", "childrens_services", {}),
        ("adopt", "chair", {"panel_date": "2026-03-10", "panel_attendees": ["council"],
                            "panel_rationale": "child at risk"}),
    ])
    assert view.state == ("parental_consent",)
    with pytest.raises(TransitionRejected) as refused:
        case.fire("give_parental_consent", "coordinator",
                  {"parental_consent": True, "disclosure_warning_shown": True,
                   "consent_date": "2026-03-11", "consent_scope": ["all"]})
    assert refused.value.details["reason"] == "missing_required"
    assert refused.value.details["missing"] == ["consent_given_by"]
    view = case.run([
        ("give_parental_consent", "coordinator",
         {"parental_consent": True, "disclosure_warning_shown": True,
          "consent_given_by": "guardian", "consent_date": "2026-03-11",
          "consent_scope": ["all"]}),
        ("begin_mentoring", "coordinator", {}),
        # Turning 18 pauses support until the young adult consents for themself.
        ("turns_18", "childrens_services", {"date_of_birth": "2008-03-12"}),
    ])
    assert view.state == ("consent_renewal",)
    view = case.fire("renew_consent", "coordinator",
                     {"adult_consent": True, "adult_consent_date": "2026-03-13"})
    assert view.state == ("support.family.offered", "support.mentoring.matching",
                          "support.school.active")
    assert "consent_renewed_as_adult" in view.milestones
    view = case.run([
        ("begin_mentoring", "coordinator", {}),
        ("finish_mentoring", "youth_mentor", {}),
        ("finish_school_support", "school", {}),
        ("decline_family_support", "family_worker", {"family_notes": "parents declined"}),
        ("confirm_exit_criteria", "chair", {}),
        ("decide_exit", "chair", {"exit_rationale": "done"}),
        ("record_six_month_review", "coordinator", {"review_6m_notes": "fine"}),
        ("record_twelve_month_review", "childrens_services", {"review_12m_notes": "fine"}),
    ])
    assert view.closed and view.state == ("closed_completed",)
    assert "family_notes" in case.view_as("youth_mentor").withheld


def test_minor_school_police_screening_cannot_close_a_childs_case() -> None:
    defn = definition("minor_school")
    from_screening = {t.dest for t in defn.transitions if "screening" in t.sources}
    assert from_screening == {"screening", "info_gathering", "criminal_track",
                              "closed_withdrawn"}
    default = next(t for t in defn.timers if t.name == "default_to_panel")
    assert default.fire == "route_to_panel" and default.state == "screening"


PRISON_TO_LICENCE: list[Step] = [
    ("log_training_session", "prison", {"training_sessions": 23}),
    ("complete_training", "prison", {}),
    ("record_pre_release_assessment", "prison", {"risk_tool": "erg_r",
                                                 "risk_assessment_date": "2026-03-03",
                                                 "risk_summary": "moderate"}),
    ("prepare_contacts", "coordinator", {"contacts_prepared": ["welfare"]}),
    ("release_on_licence", "probation", {"release_date": "2026-03-05",
                                         "licence_conditions": ["attend DDP"],
                                         "safety_plan": "plan"}),
]


def test_prison_release_happy_path(factory: sessionmaker[Session]) -> None:
    case = Driver(factory, "prison_release")
    case.open({"training_format": "group"})
    view = case.run(PRISON_TO_LICENCE)
    assert view.state == ("on_licence.coaching.active", "on_licence.ddp.sessions",
                          "on_licence.therapy.offered")
    view = case.run([
        ("log_ddp_session", "ddp_mentor", {}),
        ("report_missed_session", "ddp_mentor", {}),
        ("resume_ddp", "probation", {"breach_decision": "warning"}),
        ("complete_ddp", "ddp_mentor", {}),
        ("begin_treatment", "therapist", {}),
        ("finish_therapy", "therapist", {}),
        ("end_coaching", "coach", {}),
    ])
    assert view.state == ("monitoring_6m",)
    view = case.run([
        ("record_six_month_review", "probation", {"review_6m_notes": "settled"}),
        ("record_twelve_month_review", "probation", {"review_12m_notes": "settled"}),
    ])
    assert view.closed and view.state == ("closed_completed",)


def test_prison_release_missed_session_can_end_in_recall(
    factory: sessionmaker[Session],
) -> None:
    case = Driver(factory, "prison_release")
    case.open({"training_format": "individual", "training_sessions": 15})
    case.run(PRISON_TO_LICENCE[1:])
    view = case.fire("report_missed_session", "ddp_mentor")
    assert "on_licence.ddp.missed" in view.state
    with pytest.raises(TransitionRejected):
        case.fire("resume_ddp", "probation", {"breach_decision": "recall_requested"})
    view = case.fire("recall", "probation_manager", {"recall_reason": "licence breach"})
    assert view.closed and view.state == ("recalled",)
    defn = definition("prison_release")
    missed = next(t for t in defn.timers if t.name == "ddp_attendance")
    assert [s.notify for s in missed.escalate] == [("probation",), ("probation_manager",)]


def test_self_referral_exit_happy_path(factory: sessionmaker[Session]) -> None:
    case = Driver(factory, "self_referral_exit")
    case.open({"self_referred": True, "contact_channel": "messenger"})
    view = case.run([
        ("confirm_self_referral", "exit_counsellor", {}),
        ("confirm_motivation", "exit_counsellor", {"motivation": "developing",
                                                   "motivation_notes": "ambivalent"}),
        ("agree_safety_plan", "exit_counsellor", {"threat_level": "low", "safety_plan": "p"}),
        ("disclose_imminent_harm", "therapist", {
            "disclosure_reason": "imminent_harm_to_self", "disclosure_recipient":
            "emergency_services", "disclosure_scope": ["risk"], "disclosure_grounds": "g"}),
        ("record_contacts_cut", "exit_counsellor", {}),
        ("record_critical_reflection", "exit_counsellor", {}),
        ("record_new_network", "exit_counsellor", {}),
        ("finish_exit_counselling", "exit_counsellor", {}),
        ("decline_therapy", "therapist", {}),
        ("finish_practical", "caseworker", {}),
        ("decline_family_counselling", "family_counsellor", {}),
    ])
    assert view.closed and view.state == ("closed_completed",)
    assert "disclosure_grounds" in case.view_as("caseworker").withheld


def test_self_referral_only_the_person_opens_an_exit_case(
    factory: sessionmaker[Session],
) -> None:
    case = Driver(factory, "self_referral_exit")
    case.open({"self_referred": False, "contact_channel": "phone"})
    with pytest.raises(TransitionRejected) as refused:
        case.fire("confirm_self_referral", "exit_counsellor")
    assert refused.value.details["reason"] == "guard_failed"
    assert case.fire("redirect", "exit_counsellor").state == ("redirected",)


# -- what the workflows promise, checked on the definitions --------------------------------

def test_self_referral_never_notifies_the_police_except_by_disclosure() -> None:
    defn = definition("self_referral_exit")
    assert "police" not in defn.roles
    for timer in defn.timers:
        recipients = set(timer.remind) | {r for step in timer.escalate for r in step.notify}
        assert "police" not in recipients and not timer.fire
    for transition in defn.transitions:
        assert "police" not in transition.by
    # "police" is only ever a value of the disclosure's recipient field ...
    mentions = [f.name for f in defn.fields.values() if "police" in f.values]
    assert mentions == ["disclosure_recipient"]
    # ... and only the disclosure requires a reason, a recipient and a scope, from every
    # open stage, without changing the stage.
    disclosing = [t for t in defn.transitions if "disclosure_recipient" in t.requires]
    assert {t.trigger for t in disclosing} == {"disclose_imminent_harm"}
    assert all(t.internal for t in disclosing)
    assert all({"disclosure_reason", "disclosure_scope"} <= set(t.requires) for t in disclosing)
    open_stages = {s.path for s in defn.top_level() if not s.final}
    assert {t.sources[0] for t in disclosing} == open_stages


def _raw(name: str) -> dict[str, Any]:
    text = (WORKFLOWS / f"{name}.yaml").read_text(encoding="utf-8")
    data = parse_yaml(text, name).data
    assert isinstance(data, dict)
    return data


def test_community_panel_uses_every_feature_of_the_language() -> None:
    defn = definition("community_panel")
    raw = _raw("community_panel")
    cal = defn.calendar
    assert (cal.country, cal.subdivision) == ("GB", "ENG")
    assert "workdays" in raw["calendar"] and cal.extra_holidays
    assert {f.type for f in defn.fields.values()} == {
        "string", "text", "int", "bool", "date", "datetime", "enum", "list"}
    assert defn.fields["therapy_notes"].visible_to == frozenset({"therapist"})
    assert defn.fields["police_intelligence"].visible_to == frozenset(
        {"police", "police_supervisor"})
    parallel = [s for s in defn.states.values() if s.kind == "parallel"]
    assert parallel and all(s.join for s in parallel)
    assert any(m.on for m in defn.milestones.values())
    assert any(m.on_enter for m in defn.milestones.values())
    transitions = defn.transitions
    assert any(t.needs for t in transitions) and any(t.requires for t in transitions)
    assert any(t.when for t in transitions)
    assert any(t.internal for t in transitions)
    assert any(t.internal and defn.states[t.dest].kind == "parallel" for t in transitions)
    assert any(len(t.sources) > 1 for t in transitions)
    assert any(t["from"] == "*" for t in raw["transitions"])
    by_trigger: dict[str, int] = {}
    for t in transitions:
        by_trigger[t.trigger] = by_trigger.get(t.trigger, 0) + 1
    assert any(n > 1 for n in by_trigger.values())
    timers = defn.timers
    assert any(t.remind and t.escalate for t in timers)
    assert any(t.fire for t in timers)
    assert any(t.escalate and not t.remind and not t.fire for t in timers)
    assert any(t.restart_on for t in timers)
    assert any(t.state in parallel[0].path for t in timers)
    durations = [t.after for t in timers] + [s.after for t in timers for s in t.escalate]
    assert any(d.business_days for d in durations)
    assert any(d.text.startswith("P") and d.months for d in durations)
    assert any(d.text.startswith("PT") and d.seconds for d in durations)
    assert any(d.text.startswith("P") and d.days for d in durations)
    assert any(d.months and not d.text.startswith("P") for d in durations)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_inferred_number_is_marked(name: str) -> None:
    """The domain brief marks designed numbers as inference; the YAML says so too."""
    text = (WORKFLOWS / f"{name}.yaml").read_text(encoding="utf-8")
    assert "(inference)" in text
    defn = definition(name)
    lines = text.splitlines()
    for timer in defn.timers:
        # Every business-day SLA is designed for this project, not sourced.
        if timer.after.business_days:
            line = lines[next(i for i, line in enumerate(lines)
                              if line.strip() == f"- name: {timer.name}") + 2]
            assert "(inference)" in line, (timer.name, line)



@pytest.mark.parametrize("name", SHIPPED)
def test_the_readme_shows_the_current_diagram(name: str) -> None:
    readme = (WORKFLOWS / "README.md").read_text(encoding="utf-8")
    drawn = CliRunner().invoke(app, ["diagram", str(WORKFLOWS / f"{name}.yaml")]).stdout
    block = f"<!-- diagram: {name} -->\n```mermaid\n{drawn}```\n"
    assert block in readme, f"regenerate the {name} diagram in workflows/README.md"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("community_panel",
         {"referral_reason", "referral_source", "referred_at", "outcome", "signposted_to"}),
        ("minor_school",
         {"referral_reason", "referred_at", "school_name", "mash_reference", "outcome",
          "signposted_to"}),
    ],
)
def test_the_referrer_sees_the_referral_and_its_outcome_only(
    name: str, expected: set[str]
) -> None:
    defn = definition(name)
    assert {f for f in defn.fields if defn.field_visible(f, {"referrer"})} == expected
