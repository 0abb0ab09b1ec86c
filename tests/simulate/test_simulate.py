"""``referral simulate``: golden timelines of the shipped example scripts, refusals, errors.

Every expected time below was worked out by hand from the workflow's timers and its
country's public holidays (comments show the arithmetic; "+5bd" is five business days,
"[...]" lists the closed days skipped). They are compared with what the real service and
tick did on the virtual clock, so a change to the engine's calendar, ladder or cancellation
behaviour shows up here as a moved or missing row.

Holidays used: England 2026: Fri 3 Apr (Good Friday), Mon 6 Apr (Easter Monday), Mon 4 May,
Mon 25 May, Fri 25 Dec, Mon 28 Dec (Boxing Day observed); 2027: Fri 1 Jan. community_panel
also closes Thu 24 Dec and Thu 31 Dec (extra_holidays). Berlin 2026: Fri 1 May, Thu 14 May
(Ascension), Mon 25 May (Whit Monday). Clocks change: London and Berlin on 29 Mar 2026 (+1h)
and 25 Oct 2026 (back).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.cli.simulate import state_label
from engine.errors import InvalidInput
from engine.simulate.run import Simulation, run_simulation, simulate, workflow_source

REPO = Path(__file__).resolve().parent.parent.parent
EXAMPLES = REPO / "workflows" / "examples"

Expected = tuple[str, str, str | None, int | None, str]


def run_example(name: str) -> Simulation:
    script = EXAMPLES / f"{name}.yaml"
    return simulate(name, script.read_text(encoding="utf-8"), str(script))


def timeline(sim: Simulation) -> list[Expected]:
    """(local ISO time, kind, timer or trigger, ladder step, roles) for every row."""
    return [
        (r.at.isoformat(), r.kind, r.timer or r.trigger, r.step, ",".join(r.roles))
        for r in sim.rows
    ]


def check(sim: Simulation, expected: list[Expected]) -> None:
    got = timeline(sim)
    for i, (g, e) in enumerate(zip(got, expected, strict=False)):
        assert g == e, f"row {i}: got {g}, expected {e}"
    assert len(got) == len(expected), got[len(expected):] or expected[len(got):]


def rejections(sim: Simulation) -> list[tuple[str | None, str | None]]:
    return [(r.trigger or r.timer, r.reason) for r in sim.rows if r.kind == "rejected"]


GMT, BST = "+00:00", "+01:00"


def test_community_panel_golden() -> None:
    sim = run_example("community_panel")
    check(sim, [
        (f"2026-03-02T09:00:00{GMT}", "transition", None, None, "system"),   # opened: referred
        (f"2026-03-03T08:55:00{GMT}", "rejected", "accept", None, "referrer"),
        (f"2026-03-03T09:00:00{GMT}", "transition", "accept", None, "coordinator"),
        # triage: Mon 2 Mar +2bd = Wed 4 Mar, still pending when the case leaves referred
        (f"2026-03-03T09:00:00{GMT}", "cancelled", "triage", None, ""),
        # screening_nudge: Tue 3 Mar +3bd: W4 T5 F6
        (f"2026-03-06T09:00:00{GMT}", "reminder", "screening_nudge", 0, "police"),
        # screening_deadline: Tue 3 Mar +5bd: W4 T5 F6 M9 T10
        (f"2026-03-10T09:00:00{GMT}", "reminder", "screening_deadline", 0, "police"),
        # step 1: T10 +2bd: W11 T12; step 2: T12 +3bd: F13 M16 T17
        (f"2026-03-12T09:00:00{GMT}", "escalation", "screening_deadline", 1, "police_supervisor"),
        (f"2026-03-17T09:00:00{GMT}", "escalation", "screening_deadline", 2, "coordinator"),
        (f"2026-03-18T10:00:00{GMT}", "transition", "suitable", None, "police"),
        # restarts info_request_response (no "cancelled" row for a restart)
        (f"2026-03-18T11:00:00{GMT}", "transition", "send_info_requests", None, "coordinator"),
        # Wed 18 Mar 11:00 +10bd: T19 F20 M23 T24 W25 T26 F27 M30 T31 W1 Apr (BST from 29 Mar,
        # the wall-clock time is kept)
        (f"2026-04-01T11:00:00{BST}", "reminder", "info_request_response", 0, "partner"),
        # W1 +2bd: T2 [F3 Good Friday, M6 Easter Monday] T7
        (f"2026-04-07T11:00:00{BST}", "escalation", "info_request_response", 1, "coordinator"),
        (f"2026-04-07T15:00:00{BST}", "ack", "info_request_response", 1, "coordinator"),
        (f"2026-04-08T09:30:00{BST}", "transition", "record_partner_response", None, "partner"),
        # step 2 was stopped by the acknowledgement: nothing left to cancel
        (f"2026-04-08T10:00:00{BST}", "transition", "list_for_panel", None, "coordinator"),
        # panel_listing (escalate only): Wed 8 Apr +30 days = Fri 8 May, no reminder
        (f"2026-05-08T10:00:00{BST}", "fired", "panel_listing", 0, "system"),
        # F8 May +2bd: M11 T12
        (f"2026-05-12T10:00:00{BST}", "escalation", "panel_listing", 1, "chair"),
        (f"2026-05-13T14:00:00{BST}", "rejected", "adopt", None, "chair"),
        (f"2026-05-13T14:15:00{BST}", "transition", "adopt", None, "chair"),
        # step 2 (T12 +3bd: W13 T14 F15) was still pending
        (f"2026-05-13T14:15:00{BST}", "cancelled", "panel_listing", None, ""),
        # consent_chase: +12 calendar days = Mon 25 May (a bank holiday: calendar time ignores it)
        (f"2026-05-25T14:15:00{BST}", "reminder", "consent_chase", 0, "coordinator"),
        # consent_deadline P14D = Wed 27 May: fires consent_lapsed as the system
        (f"2026-05-27T14:15:00{BST}", "fired", "consent_deadline", 0, "system"),
        (f"2026-05-27T14:15:00{BST}", "transition", "consent_lapsed", None, "system"),
        # chair_decision PT48H: elapsed time, Fri 29 May 14:15
        (f"2026-05-29T14:15:00{BST}", "reminder", "chair_decision", 0, "chair"),
        (f"2026-06-01T09:00:00{BST}", "rejected", "give_consent", None, "coordinator"),
        (f"2026-06-01T09:10:00{BST}", "transition", "give_consent", None, "coordinator"),
        # "+1 business day" from Mon 1 Jun = Tue 2 Jun
        (f"2026-06-02T09:10:00{BST}", "transition", "begin_sessions", None, "coordinator"),
        # matching_deadline (Mon 1 Jun +10bd = Mon 15 Jun) was pending
        (f"2026-06-02T09:10:00{BST}", "cancelled", "matching_deadline", None, ""),
        (f"2026-06-02T10:10:00{BST}", "transition", "begin_treatment", None, "therapist"),
        (f"2026-06-09T14:00:00{BST}", "transition", "log_mentoring_session", None, "mentor"),
        (f"2026-06-12T11:00:00{BST}", "transition", "finish_therapy", None, "therapist"),
        # therapy_heartbeat: Tue 2 Jun +21 days = Tue 23 Jun, pending
        (f"2026-06-12T11:00:00{BST}", "cancelled", "therapy_heartbeat", None, ""),
        # both tracks final: the join moves the case to exit_review
        (f"2026-06-19T16:00:00{BST}", "transition", "finish_mentoring", None, "mentor"),
        (f"2026-06-19T16:00:00{BST}", "cancelled", "mentoring_heartbeat", None, ""),  # 30 Jun
        (f"2026-06-19T16:00:00{BST}", "cancelled", "plan_review", None, ""),  # P1M: 1 Jul
        (f"2026-06-23T16:00:00{BST}", "rejected", "decide_exit", None, "chair"),
        (f"2026-06-23T16:05:00{BST}", "transition", "confirm_exit_criteria", None, "chair"),
        (f"2026-06-23T16:10:00{BST}", "transition", "decide_exit", None, "chair"),
        # six_month_review: Tue 23 Jun +6 months = Wed 23 Dec (GMT again)
        (f"2026-12-23T16:10:00{GMT}", "reminder", "six_month_review", 0, "coordinator"),
        # W23 Dec +10bd: [T24 extra, F25 Christmas, M28 Boxing Day observed] T29 W30
        # [T31 extra, F1 Jan New Year] M4 T5 W6 T7 F8 M11 T12 W13
        (f"2027-01-13T16:10:00{GMT}", "escalation", "six_month_review", 1, "chair"),
        (f"2027-01-14T10:00:00{GMT}", "transition", "record_six_month_review", None,
         "coordinator"),
        # twelve_month_review P12M: Wed 23 Jun 2027
        (f"2027-06-23T16:10:00{BST}", "reminder", "twelve_month_review", 0, "coordinator"),
        # the last track final: the join closes the case
        (f"2027-06-24T10:00:00{BST}", "transition", "record_twelve_month_review", None,
         "coordinator"),
        # its step 1 (W23 Jun +10bd = W7 Jul) was pending
        (f"2027-06-24T10:00:00{BST}", "cancelled", "twelve_month_review", None, ""),
    ])
    assert sim.closed and sim.state == ("closed_completed",)
    assert rejections(sim) == [
        ("accept", "role_not_allowed"),
        ("adopt", "missing_required"),
        ("give_consent", "guard_failed"),
        ("decide_exit", "milestones_missing"),
    ]


def test_minor_school_golden() -> None:
    sim = run_example("minor_school")
    check(sim, [
        (f"2026-09-07T09:00:00{BST}", "transition", None, None, "system"),
        (f"2026-09-07T11:00:00{BST}", "transition", "accept", None, "coordinator"),
        (f"2026-09-07T12:00:00{BST}", "transition", "record_mash_request", None,
         "childrens_services"),
        # screening_deadline: Mon 7 Sep +5bd: T8 W9 T10 F11 M14
        (f"2026-09-14T11:00:00{BST}", "reminder", "screening_deadline", 0, "police"),
        # M14 +2bd: T15 W16
        (f"2026-09-16T11:00:00{BST}", "escalation", "screening_deadline", 1, "police_supervisor"),
        (f"2026-09-16T14:00:00{BST}", "ack", "screening_deadline", 1, "police_supervisor"),
        # default_to_panel: Mon 7 Sep +10bd: ... M14 T15 W16 T17 F18 M21; the child's case
        # goes on by itself
        (f"2026-09-21T11:00:00{BST}", "fired", "default_to_panel", 0, "system"),
        (f"2026-09-21T11:00:00{BST}", "transition", "route_to_panel", None, "system"),
        (f"2026-09-23T10:00:00{BST}", "transition", "record_partner_response", None, "school"),
        (f"2026-09-24T10:00:00{BST}", "rejected", "list_for_panel", None, "referrer"),
        (f"2026-09-24T10:05:00{BST}", "transition", "list_for_panel", None,
         "childrens_services"),
        # info_request_response: Mon 21 Sep +10bd = Mon 5 Oct, pending
        (f"2026-09-24T10:05:00{BST}", "cancelled", "info_request_response", None, ""),
        (f"2026-10-15T14:00:00{BST}", "transition", "adopt", None, "chair"),
        # panel_listing: Thu 24 Sep +30 days = Sat 24 Oct, pending
        (f"2026-10-15T14:00:00{BST}", "cancelled", "panel_listing", None, ""),
        # consent_deadline: Thu 15 Oct +14 days = Thu 29 Oct, 14:00 on the wall clock after
        # the clocks went back on 25 Oct
        (f"2026-10-29T14:00:00{GMT}", "reminder", "consent_deadline", 0, "coordinator"),
        (f"2026-10-30T16:00:00{GMT}", "transition", "give_parental_consent", None,
         "coordinator"),
        # step 1: T29 +2bd: F30 M2 Nov, pending
        (f"2026-10-30T16:00:00{GMT}", "cancelled", "consent_deadline", None, ""),
        # "+1 business day" from Fri 30 Oct = Mon 2 Nov
        (f"2026-11-02T16:00:00{GMT}", "transition", "begin_mentoring", None, "coordinator"),
        (f"2026-11-02T17:00:00{GMT}", "transition", "begin_family_support", None,
         "family_worker"),
        # restarts mentoring_heartbeat: Fri 20 Nov +21 days = Fri 11 Dec
        (f"2026-11-20T15:00:00{GMT}", "transition", "log_mentoring_session", None,
         "youth_mentor"),
        # school_heartbeat: Fri 30 Oct +4 weeks = Fri 27 Nov
        (f"2026-11-27T16:00:00{GMT}", "reminder", "school_heartbeat", 0, "school"),
        # plan_review: Fri 30 Oct +1 month = Mon 30 Nov
        (f"2026-11-30T16:00:00{GMT}", "reminder", "plan_review", 0, "chair"),
        # restarts school_heartbeat (its step 1, F27 +5bd = F4 Dec, is replaced): Tue 29 Dec
        (f"2026-12-01T10:00:00{GMT}", "transition", "log_school_review", None, "school"),
        # restarts plan_review: Tue 1 Dec +1 month = Fri 1 Jan
        (f"2026-12-01T11:00:00{GMT}", "transition", "review_plan", None, "chair"),
        # family_heartbeat: Mon 2 Nov +5 weeks = Mon 7 Dec
        (f"2026-12-07T17:00:00{GMT}", "reminder", "family_heartbeat", 0, "family_worker"),
        (f"2026-12-10T09:00:00{GMT}", "transition", "turns_18", None, "childrens_services"),
        # family step 1 (M7 +5bd = M14 Dec), mentoring (F11 Dec), plan_review (F1 Jan) and
        # school (T29 Dec) were all pending; cancellations come sorted by name
        (f"2026-12-10T09:00:00{GMT}", "cancelled", "family_heartbeat", None, ""),
        (f"2026-12-10T09:00:00{GMT}", "cancelled", "mentoring_heartbeat", None, ""),
        (f"2026-12-10T09:00:00{GMT}", "cancelled", "plan_review", None, ""),
        (f"2026-12-10T09:00:00{GMT}", "cancelled", "school_heartbeat", None, ""),
        # adult_consent_deadline: Thu 10 Dec +14 days = Thu 24 Dec
        (f"2026-12-24T09:00:00{GMT}", "reminder", "adult_consent_deadline", 0, "coordinator"),
        # T24 +2bd: [F25 Christmas, M28 Boxing Day observed] T29 W30
        (f"2026-12-30T09:00:00{GMT}", "escalation", "adult_consent_deadline", 1,
         "chair,childrens_services"),
        (f"2027-01-05T10:00:00{GMT}", "rejected", "renew_consent", None, "coordinator"),
        (f"2027-01-05T10:10:00{GMT}", "transition", "renew_consent", None, "coordinator"),
        (f"2027-01-05T11:10:00{GMT}", "transition", "begin_mentoring", None, "coordinator"),
        (f"2027-01-05T11:15:00{GMT}", "transition", "decline_family_support", None,
         "family_worker"),
        (f"2027-01-20T10:00:00{GMT}", "transition", "finish_school_support", None, "school"),
        # school_heartbeat: Tue 5 Jan +4 weeks = Tue 2 Feb, pending
        (f"2027-01-20T10:00:00{GMT}", "cancelled", "school_heartbeat", None, ""),
        (f"2027-01-22T10:00:00{GMT}", "transition", "finish_mentoring", None, "youth_mentor"),
        # mentoring (T5 Jan +21 days = T26 Jan) and plan_review (T5 Jan +1 month = F5 Feb)
        (f"2027-01-22T10:00:00{GMT}", "cancelled", "mentoring_heartbeat", None, ""),
        (f"2027-01-22T10:00:00{GMT}", "cancelled", "plan_review", None, ""),
        (f"2027-01-22T11:00:00{GMT}", "transition", "confirm_exit_criteria", None, "chair"),
        (f"2027-01-22T11:05:00{GMT}", "transition", "decide_exit", None, "chair"),
        # six_month_review: Fri 22 Jan +6 months = Thu 22 Jul (BST)
        (f"2027-07-22T11:05:00{BST}", "reminder", "six_month_review", 0, "coordinator"),
        # T22 +10bd: F23 M26 T27 W28 T29 F30 M2 T3 W4 T5 Aug
        (f"2027-08-05T11:05:00{BST}", "escalation", "six_month_review", 1, "chair"),
    ])
    assert not sim.closed and sim.state == ("monitoring_6m",)
    assert rejections(sim) == [("list_for_panel", "role_not_allowed"),
                               ("renew_consent", "guard_failed")]


def test_prison_release_golden() -> None:
    sim = run_example("prison_release")
    check(sim, [
        (f"2026-01-05T09:00:00{GMT}", "transition", None, None, "system"),
        # restarts training_heartbeat (Mon 5 Jan +10 days = Thu 15 Jan): Mon 12 Jan +10 = Thu 22
        (f"2026-01-12T10:00:00{GMT}", "transition", "log_training_session", None, "prison"),
        (f"2026-01-20T10:00:00{GMT}", "rejected", "complete_training", None, "prison"),
        (f"2026-01-22T10:00:00{GMT}", "reminder", "training_heartbeat", 0, "prison"),
        # T22 +5bd: F23 M26 T27 W28 T29
        (f"2026-01-29T10:00:00{GMT}", "escalation", "training_heartbeat", 1, "coordinator"),
        (f"2026-02-02T10:00:00{GMT}", "transition", "log_training_session", None, "prison"),
        (f"2026-02-02T11:00:00{GMT}", "transition", "complete_training", None, "prison"),
        # restarted at 10:00 Mon 2 Feb, due Thu 12 Feb
        (f"2026-02-02T11:00:00{GMT}", "cancelled", "training_heartbeat", None, ""),
        (f"2026-02-10T10:00:00{GMT}", "transition", "record_pre_release_assessment", None,
         "prison"),
        (f"2026-02-20T10:00:00{GMT}", "rejected", "release_on_licence", None, "probation"),
        (f"2026-02-24T10:00:00{GMT}", "transition", "prepare_contacts", None, "coordinator"),
        # transition_plan: Mon 2 Feb 11:00 +20bd: T3 W4 T5 F6 | M9..F13 | M16..F20 | M23..F27
        # | M2 Mar (no holidays in between)
        (f"2026-03-02T11:00:00{GMT}", "reminder", "transition_plan", 0, "coordinator"),
        (f"2026-03-06T09:00:00{GMT}", "transition", "release_on_licence", None, "probation"),
        # step 1: M2 +5bd: T3 W4 T5 F6 M9, pending
        (f"2026-03-06T09:00:00{GMT}", "cancelled", "transition_plan", None, ""),
        # restarts ddp_attendance (Fri 6 Mar +8 days = Sat 14 Mar): Thu 12 +8 days = Fri 20 Mar
        (f"2026-03-12T15:00:00{GMT}", "transition", "log_ddp_session", None, "ddp_mentor"),
        (f"2026-03-13T10:00:00{GMT}", "transition", "decline_therapy", None, "therapist"),
        (f"2026-03-20T15:00:00{GMT}", "reminder", "ddp_attendance", 0, "ddp_mentor"),
        (f"2026-03-23T09:00:00{GMT}", "transition", "report_missed_session", None, "ddp_mentor"),
        # step 1: F20 +1bd = M23 15:00, pending
        (f"2026-03-23T09:00:00{GMT}", "cancelled", "ddp_attendance", None, ""),
        # breach_decision_due: Mon 23 Mar 09:00 +2bd: T24 W25
        (f"2026-03-25T09:00:00{GMT}", "reminder", "breach_decision_due", 0, "probation"),
        (f"2026-03-25T14:00:00{GMT}", "transition", "resume_ddp", None, "probation"),
        # step 1: W25 +1bd = T26, pending
        (f"2026-03-25T14:00:00{GMT}", "cancelled", "breach_decision_due", None, ""),
        # coaching_heartbeat: Fri 6 Mar +21 days = Fri 27 Mar (still GMT)
        (f"2026-03-27T09:00:00{GMT}", "reminder", "coaching_heartbeat", 0, "coach"),
        # restarts it (step 1, F27 +21 days = F17 Apr, is replaced): Tue 31 Mar +21 = Tue 21 Apr
        (f"2026-03-31T10:00:00{BST}", "transition", "log_coaching_session", None, "coach"),
        # ddp_attendance again: Wed 25 Mar 14:00 +8 days = Thu 2 Apr 14:00 BST
        (f"2026-04-02T14:00:00{BST}", "reminder", "ddp_attendance", 0, "ddp_mentor"),
        # T2 +1bd: [F3 Good Friday, M6 Easter Monday] T7
        (f"2026-04-07T14:00:00{BST}", "escalation", "ddp_attendance", 1, "probation"),
        (f"2026-04-08T10:00:00{BST}", "transition", "complete_ddp", None, "probation"),
        # step 2: T7 +2bd: W8 T9, pending
        (f"2026-04-08T10:00:00{BST}", "cancelled", "ddp_attendance", None, ""),
        (f"2026-04-21T10:00:00{BST}", "reminder", "coaching_heartbeat", 0, "coach"),
        # stops step 1 (T21 +21 days = T12 May)
        (f"2026-05-05T11:00:00{BST}", "ack", "coaching_heartbeat", 0, "coach"),
        # coaching_review and risk_reassessment: Fri 6 Mar +6 months = Sun 6 Sep
        (f"2026-09-06T09:00:00{BST}", "reminder", "coaching_review", 0, "coach,probation"),
        (f"2026-09-06T09:00:00{BST}", "reminder", "risk_reassessment", 0, "probation"),
        # restarts risk_reassessment (its step 1, Sun 6 Sep +5bd = F11 Sep, is replaced):
        # Tue 8 Sep +6 months = Mon 8 Mar 2027
        (f"2026-09-08T10:00:00{BST}", "transition", "record_risk_assessment", None, "probation"),
        # coaching_end: Fri 6 Mar +12 months = Sat 6 Mar 2027: fires end_coaching; every track
        # is final, so the join moves the case to monitoring_6m
        (f"2027-03-06T09:00:00{GMT}", "fired", "coaching_end", 0, "system"),
        (f"2027-03-06T09:00:00{GMT}", "transition", "end_coaching", None, "system"),
        (f"2027-03-06T09:00:00{GMT}", "cancelled", "risk_reassessment", None, ""),
    ])
    assert sim.state == ("monitoring_6m",)
    assert rejections(sim) == [("complete_training", "guard_failed"),
                               ("release_on_licence", "milestones_missing")]


CEST = "+02:00"


def test_self_referral_exit_golden() -> None:
    sim = run_example("self_referral_exit")
    check(sim, [
        (f"2026-04-30T10:00:00{CEST}", "transition", None, None, "system"),
        # first_response: Thu 30 Apr +2bd: [F1 May Labour Day] M4 T5 (4 May is a holiday in
        # England, not in Berlin)
        (f"2026-05-05T10:00:00{CEST}", "reminder", "first_response", 0, "exit_counsellor"),
        # T5 +1bd: W6
        (f"2026-05-06T10:00:00{CEST}", "escalation", "first_response", 1, "coordinator"),
        (f"2026-05-06T14:00:00{CEST}", "transition", "confirm_self_referral", None,
         "exit_counsellor"),
        (f"2026-05-12T11:00:00{CEST}", "rejected", "disclose_imminent_harm", None,
         "exit_counsellor"),
        (f"2026-05-12T11:05:00{CEST}", "transition", "disclose_imminent_harm", None,
         "exit_counsellor"),
        (f"2026-05-20T10:00:00{CEST}", "rejected", "confirm_motivation", None, "therapist"),
        (f"2026-05-20T10:10:00{CEST}", "transition", "confirm_motivation", None,
         "exit_counsellor"),
        # motivation_check_due: Wed 6 May +15bd: T7 F8 M11 T12 W13 [T14 Ascension] F15 M18
        # T19 W20 T21 F22 [M25 Whit Monday] T26 W27 T28 F29, pending
        (f"2026-05-20T10:10:00{CEST}", "cancelled", "motivation_check_due", None, ""),
        # safety_plan_due: Wed 20 May +10bd: T21 F22 [M25] T26 W27 T28 F29 M1 T2 W3 T4 Jun
        (f"2026-06-04T10:10:00{CEST}", "reminder", "safety_plan_due", 0, "exit_counsellor"),
        # stops step 1 (T4 +2bd: F5 M8)
        (f"2026-06-05T09:00:00{CEST}", "ack", "safety_plan_due", 0, "exit_counsellor"),
        (f"2026-06-09T10:00:00{CEST}", "transition", "agree_safety_plan", None,
         "exit_counsellor"),
        (f"2026-06-10T10:00:00{CEST}", "transition", "begin_treatment", None, "therapist"),
        (f"2026-06-11T10:00:00{CEST}", "transition", "begin_family_counselling", None,
         "family_counsellor"),
        # restarts exit_heartbeat: Mon 15 Jun +21 days = Mon 6 Jul
        (f"2026-06-15T10:00:00{CEST}", "transition", "record_contacts_cut", None,
         "exit_counsellor"),
        # therapy_heartbeat: Wed 10 Jun +21 days = Wed 1 Jul
        (f"2026-07-01T10:00:00{CEST}", "reminder", "therapy_heartbeat", 0, "therapist"),
        # restarts it: Thu 2 Jul +21 days = Thu 23 Jul
        (f"2026-07-02T10:00:00{CEST}", "transition", "log_therapy_session", None, "therapist"),
        (f"2026-07-06T10:00:00{CEST}", "reminder", "exit_heartbeat", 0, "exit_counsellor"),
        # practical_heartbeat: Tue 9 Jun +1 month = Thu 9 Jul
        (f"2026-07-09T10:00:00{CEST}", "reminder", "practical_heartbeat", 0, "caseworker"),
        # restarts it: Fri 10 Jul +1 month = Mon 10 Aug
        (f"2026-07-10T10:00:00{CEST}", "transition", "log_practical_step", None, "caseworker"),
        (f"2026-07-15T10:00:00{CEST}", "rejected", "finish_exit_counselling", None,
         "exit_counsellor"),
        # restarts exit_heartbeat (its step 1, M6 Jul +21 days = M27 Jul, is replaced)
        (f"2026-07-16T10:00:00{CEST}", "transition", "record_critical_reflection", None,
         "exit_counsellor"),
        (f"2026-07-23T10:00:00{CEST}", "reminder", "therapy_heartbeat", 0, "therapist"),
        (f"2026-07-28T10:00:00{CEST}", "transition", "record_new_network", None,
         "exit_counsellor"),
        (f"2026-07-28T11:00:00{CEST}", "transition", "finish_exit_counselling", None,
         "exit_counsellor"),
        # restarted 28 Jul 10:00, due 18 Aug
        (f"2026-07-28T11:00:00{CEST}", "cancelled", "exit_heartbeat", None, ""),
        (f"2026-07-30T10:00:00{CEST}", "transition", "finish_therapy", None, "therapist"),
        (f"2026-07-31T10:00:00{CEST}", "transition", "finish_family_counselling", None,
         "family_counsellor"),
        # the last track: the join closes the case
        (f"2026-08-05T10:00:00{CEST}", "transition", "finish_practical", None, "caseworker"),
        # Mon 10 Aug, pending
        (f"2026-08-05T10:00:00{CEST}", "cancelled", "practical_heartbeat", None, ""),
    ])
    assert sim.closed and sim.state == ("closed_completed",)
    assert rejections(sim) == [
        ("disclose_imminent_harm", "missing_required"),
        ("confirm_motivation", "role_not_allowed"),
        ("finish_exit_counselling", "milestones_missing"),
    ]
    notified = {role for r in sim.rows if r.kind in ("reminder", "escalation") for role in r.roles}
    assert "police" not in notified


# -- refusals and odd steps ----------------------------------------------------------------

SMALL = """\
start: 2026-03-02 09:00
assign: {coordinator: Council, police: Prevent, police_supervisor: Prevent Lead}
data: {referral_reason: test}
steps:
{steps}
until: {until}
"""


def run_small(steps: str, until: str = "+1 month") -> Simulation:
    text, path = workflow_source("community_panel")
    script = SMALL.replace("{steps}", steps).replace("{until}", until)
    return run_simulation(text, path, script, "small.yaml")


def test_rejected_steps_are_reported_and_the_run_goes_on() -> None:
    sim = run_small(
        "  - {at: +1 hour, fire: accept, as: mentor}\n"            # role nobody holds
        "  - {at: +1 hour, fire: screen_out, as: police}\n"        # not in screening yet
        "  - {at: +1 hour, ack: screening_deadline, as: police}\n"  # nothing sent yet
        "  - {at: +1 hour, fire: accept, as: coordinator}\n"
        "  - {at: +1 hour, fire: screen_out, as: police}\n"        # rationale missing
        "  - {at: +1 hour, fire: accept, as: coordinator, data: {risk_level: extreme}}\n"
        "  - {at: +1 hour, fire: screen_out, as: police, data: {screening_rationale: ok}}\n"
    )
    rejected = [(r.at.strftime("%H:%M"), r.trigger or r.timer, r.reason, r.state)
                for r in sim.rows if r.kind == "rejected"]
    assert rejected == [
        ("10:00", "accept", "role_not_assigned", ("referred",)),
        ("11:00", "screen_out", "not_in_state", ("referred",)),
        ("12:00", "screening_deadline", "nothing_to_acknowledge", ("referred",)),
        ("14:00", "screen_out", "missing_required", ("screening",)),
        ("15:00", "accept", "invalid_input", ("screening",)),
    ]
    assert all(r.message for r in sim.rows if r.kind == "rejected")
    assert sim.state == ("closed_no_concern",) and sim.closed


def test_ack_by_an_agency_not_notified_is_rejected() -> None:
    sim = run_small(
        "  - {at: +1 minute, fire: accept, as: coordinator}\n"
        "  - {at: 2026-03-10 10:00, ack: screening_deadline, as: coordinator}\n"
        "  - {at: +1 minute, ack: screening_deadline, as: police}\n"
        "  - {at: +1 minute, ack: screening_deadline, as: police}\n"
    )
    acks = [(r.kind, r.roles, r.reason) for r in sim.rows if r.kind in ("ack", "rejected")]
    assert acks == [
        ("rejected", ("coordinator",), "ack_not_allowed"),
        ("ack", ("police",), None),
        ("rejected", ("police",), "ack_not_allowed"),
    ]
    # The acknowledgement stopped the ladder: no escalation to the supervisor.
    assert not [r for r in sim.rows if r.kind == "escalation"]


def test_without_until_the_run_stops_when_nothing_is_left() -> None:
    text, path = workflow_source("community_panel")
    script = SMALL.replace("{steps}", "  - {at: +1 hour, fire: accept, as: coordinator}")
    sim = run_simulation(text, path, script.replace("until: {until}\n", ""), "s.yaml")
    # screening_deadline ladder from Mon 2 Mar 10:00: +5bd = M9, +2bd = W11, +3bd = M16;
    # then nothing is pending.
    assert sim.rows[-1].kind == "escalation" and sim.rows[-1].step == 2
    assert sim.rows[-1].at.isoformat() == "2026-03-16T10:00:00+00:00"


def test_a_workflow_file_path_works_like_a_name(tmp_path: Path) -> None:
    source = tmp_path / "panel.yaml"
    source.write_text(workflow_source("community_panel")[0], encoding="utf-8")
    script = EXAMPLES / "community_panel.yaml"
    sim = simulate(str(source), script.read_text(encoding="utf-8"), str(script))
    assert timeline(sim) == timeline(run_example("community_panel"))


def test_a_year_of_case_time_is_fast() -> None:
    run_example("prison_release")  # warm the caches a CLI run also pays for once
    began = time.perf_counter()
    sim = run_example("prison_release")
    elapsed = time.perf_counter() - began
    assert (sim.rows[-1].at - sim.rows[0].at).days > 365
    # Target 0.5 s; the bound is loose because CI machines are shared.
    assert elapsed < 2.0, elapsed


# -- script errors -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("start: 2026-03-02 09:00\nassign: {coordinator: C}\nstpes: []\n",
         "s.yaml:3:1: error: unknown key 'stpes' in script\n  hint: did you mean 'steps'?"),
        ("start: 2026-03-02 09:00\nassign: {coordinator: C}\nsteps:\n"
         "  - {at: +1 hour, fire: acept, as: coordinator}\n",
         "s.yaml:4:25: error: workflow community_panel has no trigger 'acept'\n"
         "  hint: did you mean 'accept'?"),
        ("start: 2026-03-02 09:00\nassign: {coordinator: C}\nsteps:\n"
         "  - {at: 3 business days, fire: accept, as: coordinator}\n",
         "s.yaml:4:10: error: expected a local time such as '2026-03-02 09:00' or an offset "
         "such as '+3 business days', got '3 business days'\n"
         "  hint: write an offset with a leading '+': '+3 business days'"),
        ("start: 2026-03-02 09:00\nassign: {coordinator: C}\nsteps:\n"
         "  - {at: +3 fortnights, fire: accept, as: coordinator}\n",
         "s.yaml:4:10: error: bad offset '+3 fortnights'"),
        ("start: 2026-03-02 09:00\nassign: {coordinator: C}\nsteps:\n"
         "  - {at: 2026-03-01 09:00, fire: accept, as: coordinator}\n",
         "s.yaml:4:10: error: this step is at 2026-03-01 09:00 GMT, before the previous step "
         "or the start (2026-03-02 09:00 GMT)"),
        ("start: 2026-03-02 09:00\nassign: {coordinator: C}\nsteps:\n"
         "  - {at: +1 hour, fire: accept, ack: triage, as: coordinator}\n",
         "s.yaml:4:5: error: a step needs exactly one of 'fire: TRIGGER' or 'ack: TIMER'"),
        ("start: 2026-03-02 09:00\nassign: {cordinator: C}\n",
         "s.yaml:2:10: error: workflow community_panel has no role 'cordinator'\n"
         "  hint: did you mean 'coordinator'?"),
        ("start: next monday\nassign: {coordinator: C}\n",
         "s.yaml:1:8: error: expected a local time such as '2026-03-02 09:00', got 'next monday'"),
        ("start: 2026-03-02 09:00\nassign: {coordinator: C}\nsteps:\n"
         "  - {at: +1 hour, fire: accept, as: coordinator}\nuntil: 2026-03-02 09:30\n",
         "s.yaml:4:10: error: this step is at 2026-03-02 10:00 GMT, after until "
         "(2026-03-02 09:30 GMT)"),
        ("start: 9999-12-31 23:00\nassign: {coordinator: C}\n",
         "s.yaml:1:8: error: '9999-12-31 23:00' is outside the years a simulation covers "
         "(1970 to 2199)"),
        ("start: 2199-12-01 09:00\nassign: {coordinator: C}\nuntil: +2 months\n",
         "s.yaml:3:8: error: offset '+2 months' ends in 2200, after the years a simulation "
         "covers"),
        ("start: 2026-03-29 01:30\nassign: {coordinator: C}\n",
         "s.yaml:1:8: error: '2026-03-29 01:30' does not exist in Europe/London: the clocks "
         "go forward at that time\n  hint: pick a time an hour later"),
        ("start: 2026-03-02 09:00\nassign: {coordinator: C}\nuntil: 2026-03-01 09:00\n",
         "s.yaml:3:8: error: until is 2026-03-01 09:00 GMT, before the start "
         "(2026-03-02 09:00 GMT)"),
        ("start: 2026-03-02 09:00\nassign: {coordinator: C\n",
         "s.yaml:3:1: error: YAML syntax error"),
        ("", "s.yaml:1:1: error: the script is empty"),
        ("- start\n- assign\n",
         "s.yaml:1:1: error: a script is a mapping with start, assign, data, steps and until"),
        ("start: 2026-03-02 09:00\nassign: {coordinator: C}\nsteps:\n"
         "  - {at: +1 hour, ack: triage, as: system}\n",
         "s.yaml:4:36: error: the system does not acknowledge escalations"),
    ],
)
def test_script_errors_name_the_line(script: str, expected: str) -> None:
    text, path = workflow_source("community_panel")
    with pytest.raises(InvalidInput) as caught:
        run_simulation(text, path, script, "s.yaml")
    assert caught.value.message.startswith(expected), caught.value.message


def test_every_problem_of_a_script_is_reported() -> None:
    text, path = workflow_source("community_panel")
    script = ("start: 2026-03-02 09:00\nassign: {coordinator: C, nobody: X}\nsteps:\n"
              "  - {at: +1 hour, fire: accept, as: coordinator, colour: red}\n"
              "  - {at: +1 hour, ack: no_such_timer, as: coordinator}\n")
    with pytest.raises(InvalidInput) as caught:
        run_simulation(text, path, script, "s.yaml")
    lines = [p["line"] for p in caught.value.details["problems"]]
    assert lines == [2, 4, 5]


def test_bad_initial_data_names_the_data_line() -> None:
    text, path = workflow_source("community_panel")
    script = "start: 2026-03-02 09:00\nassign: {coordinator: C}\ndata: {risk_level: extreme}\n"
    with pytest.raises(InvalidInput) as caught:
        run_simulation(text, path, script, "s.yaml")
    # At the refused key, in the same shape as every other script problem.
    assert caught.value.message.startswith(
        "s.yaml:3:8: error: the case cannot be opened with this data: field 'risk_level'")
    assert [p["line"] for p in caught.value.details["problems"]] == [3]


def test_cli_bad_initial_data_is_a_located_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("start: 2026-03-02 09:00\nassign: {coordinator: C}\ndata:\n  colour: red\n")
    result = CliRunner().invoke(app, ["simulate", "community_panel", "--script", str(bad)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{bad}:4:3: error: the case cannot be opened with this "
                                    "data: unknown field 'colour'")


# -- the command ---------------------------------------------------------------------------

def test_cli_json_lines() -> None:
    script = EXAMPLES / "community_panel.yaml"
    result = CliRunner().invoke(app, ["simulate", "community_panel", "--script", str(script),
                                      "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == len(run_example("community_panel").rows)
    assert set(rows[0]) == {"at", "kind", "timer", "step", "roles", "trigger", "state"}
    assert rows[1]["kind"] == "rejected" and rows[1]["reason"] == "role_not_allowed"
    assert rows[4] == {
        "at": "2026-03-06T09:00:00+00:00", "kind": "reminder", "timer": "screening_nudge",
        "step": 0, "roles": ["police"], "trigger": None, "state": ["screening"],
    }


def test_cli_table() -> None:
    script = EXAMPLES / "self_referral_exit.yaml"
    result = CliRunner().invoke(app, ["simulate", "self_referral_exit", "--script",
                                      str(script)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "first_response [1]" in result.stdout
    assert "case closed in closed_completed" in result.stdout


def test_cli_an_undecodable_workflow_file_is_a_located_error(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00workflow")
    result = CliRunner().invoke(app, ["simulate", str(binary), "--script",
                                      str(EXAMPLES / "community_panel.yaml")])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{binary}:1:1: error: the file is not UTF-8 text")


def test_cli_table_reads_well_in_80_columns() -> None:
    # A pipe or a plain terminal: the time and kind never wrap; each event is a sentence.
    script = EXAMPLES / "community_panel.yaml"
    result = CliRunner().invoke(app, ["simulate", "community_panel", "--script", str(script)],
                                env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for expected in (
        "2026-03-02 Mon 09:00   transition   case opened → referred",
        "2026-03-03 Tue 08:55   rejected     accept by referrer refused",
        "2026-03-03 Tue 09:00   transition   accept by coordinator → screening",
        "2026-03-03 Tue 09:00   cancelled    triage, cancelled by accept",
        "2026-03-17 Tue 09:00   escalation   screening_deadline [2] to coordinator",
        "2026-04-07 Tue 15:00   ack          info_request_response [1] acknowledged by",
        "2026-05-27 Wed 14:15   fired        consent_deadline [0] fires consent_lapsed",
    ):
        assert any(line.strip() == expected for line in lines), expected
    # Every row starts with its whole time: rows are never split in the time column.
    rows = [line for line in lines if line[:5].strip().isdigit()]
    assert len(rows) == len(run_example("community_panel").rows)


def test_the_readme_shows_the_current_timeline() -> None:
    command = ("$ referral simulate community_panel --script "
               "workflows/examples/community_panel.yaml\n")
    readme = (REPO / "workflows" / "README.md").read_text(encoding="utf-8")
    start = readme.index(command) + len(command)
    shown = readme[start:readme.index("```\n", start)]
    result = CliRunner().invoke(app, ["simulate", "community_panel", "--script",
                                      str(EXAMPLES / "community_panel.yaml")],
                                env={"COLUMNS": "80"})
    current = "".join(line.rstrip() + "\n" for line in result.stdout.splitlines())
    assert shown == current, "regenerate the timeline in workflows/README.md (COLUMNS=80)"


def test_state_label_groups_parallel_tracks() -> None:
    assert state_label(("screening",)) == "screening"
    assert state_label(("support.mentoring.matching", "support.therapy.intake")) == (
        "support: mentoring.matching + therapy.intake")


def test_cli_an_undecodable_script_is_a_located_error(tmp_path: Path) -> None:
    binary = tmp_path / "script.yaml"
    binary.write_bytes(b"start: \xff\xfe\n")
    result = CliRunner().invoke(app, ["simulate", "community_panel", "--script", str(binary)])
    assert result.exit_code == 1
    assert result.stderr == (f"{binary}:1:1: error: the script is not UTF-8 text: "
                             "invalid start byte\n")


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("start: 2026-03-02 09:00\nassign: {coordinator: C}\nstpes: []\n")
    result = CliRunner().invoke(app, ["simulate", "community_panel", "--script", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:3:1: error: unknown key 'stpes'" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    result = CliRunner().invoke(app, ["simulate", "no_such_flow", "--script", str(bad)])
    assert result.exit_code == 1
    assert "no shipped workflow of that name" in result.stderr
    assert "community_panel" in result.stderr


def test_the_readme_script_runs_as_documented() -> None:
    readme = (REPO / "workflows" / "README.md").read_text(encoding="utf-8")
    start = readme.index("```yaml\nstart: ")
    script = readme[start + len("```yaml\n"): readme.index("```\n", start + 8)]
    text, path = workflow_source("community_panel")
    sim = run_simulation(text, path, script, "README.md")
    assert not [r for r in sim.rows if r.kind == "rejected"]
    assert [(r.at.isoformat(), r.kind, r.timer or r.trigger, r.step) for r in sim.rows][1:7] == [
        ("2026-03-03T09:00:00+00:00", "transition", "accept", None),
        ("2026-03-03T09:00:00+00:00", "cancelled", "triage", None),
        ("2026-03-06T09:00:00+00:00", "reminder", "screening_nudge", 0),     # T3 +3bd
        ("2026-03-10T09:00:00+00:00", "reminder", "screening_deadline", 0),  # T3 +5bd
        # "+6 business days" after the first step: W4 T5 F6 M9 T10 W11; it acknowledges
        # the reminder of the 10th, so step 1 (Thu 12) never fires
        ("2026-03-11T09:00:00+00:00", "ack", "screening_deadline", 0),
        ("2026-03-11T11:00:00+00:00", "transition", "suitable", None),
    ]
    assert "escalation" not in [r.kind for r in sim.rows if r.timer == "screening_deadline"]
    # until +1 month: Thu 2 Apr 09:00; info_request_response W11 Mar 11:00 +10bd = W25,
    # +2bd = F27, +3bd = W1 Apr.
    assert [(r.at.date().isoformat(), r.step) for r in sim.rows
            if r.timer == "info_request_response"] == [
        ("2026-03-25", 0), ("2026-03-27", 1), ("2026-04-01", 2)]
