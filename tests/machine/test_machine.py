"""The compiled machine: allowed triggers, decisions, joins, rejections, sharing."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cel
import pytest

from engine.definitions.model import (
    CalendarDef,
    Definition,
    Duration,
    MilestoneDef,
    StateDef,
    TimerDef,
    TransitionDef,
)
from engine.errors import InvalidInput, TransitionRejected
from engine.machine.compiled import Allowed, CompiledWorkflow, Decision, compile_definition

FIXTURE = Path(__file__).parent.parent / "fixtures" / "machine_example.yaml"
NONE: frozenset[str] = frozenset()


class _Guard:
    """A CEL ``when`` like the loader's, enough for hand-built definitions."""

    def __init__(self, text: str) -> None:
        self._program = cel.compile(text)

    def evaluate(self, data: Mapping[str, Any]) -> bool:
        return self._program.execute(dict(data)) is True


def build(
    states: Mapping[str, Any],
    transitions: list[dict[str, Any]],
    *,
    workflow: str = "wf",
    version: int = 1,
    content_hash: str = "",
    timers: tuple[TimerDef, ...] = (),
    milestones: Mapping[str, MilestoneDef] | None = None,
) -> Definition:
    """A Definition from a YAML-shaped spec, as the loader would produce it."""
    out: dict[str, StateDef] = {}

    def add(name: str, spec: Mapping[str, Any], parent: str | None) -> None:
        path = f"{parent}.{name}" if parent else name
        if "parallel" not in spec:
            out[path] = StateDef(
                path,
                name,
                "atomic",
                parent,
                initial=spec.get("initial", False),
                final=spec.get("final", False),
                owner=spec.get("owner"),
            )
            return
        tracks = spec["parallel"]
        out[path] = StateDef(
            path,
            name,
            "parallel",
            parent,
            initial=spec.get("initial", False),
            join=spec.get("join"),
            children=tuple(f"{path}.{t}" for t in tracks),
        )
        for track, tspec in tracks.items():
            tpath = f"{path}.{track}"
            out[tpath] = StateDef(
                tpath,
                track,
                "track",
                path,
                children=tuple(f"{tpath}.{s}" for s in tspec["states"]),
                initial_child=f"{tpath}.{tspec['initial']}",
            )
            for child, cspec in tspec["states"].items():
                add(child, cspec, tpath)

    for name, spec in states.items():
        add(name, spec, None)
    everywhere = tuple(s.path for s in out.values() if s.parent is None and not s.final)
    tdefs = []
    for index, t in enumerate(transitions):
        source = t["from"]
        sources = everywhere if source == "*" else (source,) if isinstance(source, str) else source
        tdefs.append(
            TransitionDef(
                trigger=t["trigger"],
                sources=tuple(sources),
                dest=t["to"],
                by=frozenset(t["by"]),
                requires=tuple(t.get("requires", ())),
                needs=tuple(t.get("needs", ())),
                when=t.get("when"),
                index=index,
            )
        )
    whens = {t.when for t in tdefs if t.when}
    return Definition(
        workflow=workflow,
        version=version,
        title=workflow,
        timezone="UTC",
        calendar=CalendarDef(),
        roles=tuple(sorted({r for t in tdefs for r in t.by})),
        fields={},
        states=out,
        transitions=tuple(tdefs),
        timers=timers,
        milestones=milestones or {},
        content_hash=content_hash,
        guards={w: _Guard(w) for w in whens},
    )


def _track(initial: str, *names: str, final: str = "done") -> dict[str, Any]:
    states: dict[str, Any] = {n: {} for n in names}
    states[final] = {"final": True}
    return {"initial": initial, "states": states}


EXAMPLE_STATES: dict[str, Any] = {
    "referred": {"initial": True},
    "screening": {"owner": "police"},
    "panel": {"owner": "chair"},
    "support": {
        "parallel": {
            "mentoring": _track("matching", "matching", "sessions"),
            "therapy": _track("intake", "intake", "treatment"),
        },
        "join": "review",
    },
    "review": {"owner": "chair"},
    "closed_no_concern": {"final": True},
    "closed_completed": {"final": True},
    "closed_withdrawn": {"final": True},
}
M, T = "support.mentoring", "support.therapy"
EXAMPLE_TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "accept", "from": "referred", "to": "screening", "by": ["coordinator", "police"]},
    {"trigger": "refer_to_panel", "from": "screening", "to": "panel", "by": ["police"]},
    {
        "trigger": "screen_out",
        "from": "screening",
        "to": "closed_no_concern",
        "by": ["police"],
        "requires": ["screening_rationale"],
    },
    {
        "trigger": "adopt",
        "from": "panel",
        "to": "support",
        "by": ["chair"],
        "when": 'risk_level != "low" && consent',
    },
    {
        "trigger": "begin_sessions",
        "from": f"{M}.matching",
        "to": f"{M}.sessions",
        "by": ["coordinator"],
    },
    {"trigger": "log_session", "from": f"{M}.sessions", "to": f"{M}.sessions", "by": ["mentor"]},
    {"trigger": "finish_mentoring", "from": f"{M}.sessions", "to": f"{M}.done", "by": ["mentor"]},
    {
        "trigger": "begin_treatment",
        "from": f"{T}.intake",
        "to": f"{T}.treatment",
        "by": ["therapist"],
    },
    {"trigger": "finish_therapy", "from": f"{T}.treatment", "to": f"{T}.done", "by": ["therapist"]},
    {"trigger": "confirm_exit_criteria", "from": "review", "to": "review", "by": ["chair"]},
    {
        "trigger": "close",
        "from": "review",
        "to": "closed_completed",
        "by": ["chair"],
        "needs": ["exit_criteria_met"],
    },
    {"trigger": "withdraw", "from": "*", "to": "closed_withdrawn", "by": ["coordinator"]},
]
REVIEW_DUE = TimerDef(name="review_due", state="review", after=Duration(months=6), fire="close")


def example(**kwargs: Any) -> Definition:
    return build(
        EXAMPLE_STATES,
        EXAMPLE_TRANSITIONS,
        workflow="community_panel",
        timers=(REVIEW_DUE,),
        **kwargs,
    )


def loaded_example() -> Definition:
    loader = pytest.importorskip("engine.definitions.loader")
    defn: Definition = loader.load_definition(FIXTURE.read_text(), str(FIXTURE))
    return defn


@pytest.fixture(params=["hand_built", "yaml"])
def compiled(request: pytest.FixtureRequest) -> CompiledWorkflow:
    return compile_definition(example() if request.param == "hand_built" else loaded_example())


SUPPORT_START = (f"{M}.matching", f"{T}.intake")
ADOPTABLE = {"risk_level": "high", "consent": True}


def rejected(excinfo: pytest.ExceptionInfo[TransitionRejected]) -> dict[str, Any]:
    return excinfo.value.details


# --- the whole path --------------------------------------------------------------------


def test_whole_contract_path_with_parallel_tracks_and_automatic_join(
    compiled: CompiledWorkflow,
) -> None:
    config = compiled.initial_configuration()
    assert config == ("referred",)
    milestones: set[str] = set()

    def step(trigger: str, role: str, data: Mapping[str, Any] | None = None) -> Decision:
        nonlocal config
        decision = compiled.decide(config, trigger, role, data or {}, milestones, case_id=7)
        assert decision.source == config
        assert decision.transition.trigger == trigger
        config = decision.target
        return decision

    d = step("accept", "coordinator")
    assert (d.target, d.exited, d.entered, d.joined) == (
        ("screening",),
        ("referred",),
        ("screening",),
        None,
    )
    assert step("refer_to_panel", "police").target == ("panel",)

    d = step("adopt", "chair", ADOPTABLE)
    assert d.target == SUPPORT_START
    assert d.exited == ("panel",)
    assert d.entered[0] == "support"  # the parent first, then each track's initial state
    assert set(d.entered) == {"support", M, T, f"{M}.matching", f"{T}.intake"}
    assert compiled.active_states(config) == {"support", M, T, f"{M}.matching", f"{T}.intake"}

    d = step("begin_sessions", "coordinator")
    assert d.target == (f"{M}.sessions", f"{T}.intake")
    assert (d.exited, d.entered) == ((f"{M}.matching",), (f"{M}.sessions",))

    d = step("log_session", "mentor")  # internal: recorded, nothing left or entered
    assert d.internal and d.target == d.source and (d.exited, d.entered) == ((), ())

    d = step("finish_mentoring", "mentor")
    assert d.target == (f"{M}.done", f"{T}.intake") and d.joined is None
    assert not compiled.is_final(config)
    step("begin_treatment", "therapist")

    d = step("finish_therapy", "therapist")  # the last track ends: the join fires by itself
    assert d.joined == "support"
    assert d.target == ("review",)
    assert d.exited[0] == f"{T}.treatment"
    assert set(d.exited) == {f"{T}.treatment", f"{M}.done", f"{T}.done", M, T, "support"}
    assert d.exited[-1] == "support"  # children before parents
    assert d.entered == (f"{T}.done", "review")  # passed through the track's final state
    assert compiled.active_states(d.target) == {"review"}

    d = step("confirm_exit_criteria", "chair")
    assert d.internal and d.target == ("review",)
    milestones.add("exit_criteria_met")

    d = step("close", "chair")
    assert d.target == ("closed_completed",)
    assert compiled.is_final(config)
    assert compiled.allowed(config, {}, milestones) == []


def test_a_step_in_one_track_after_the_other_track_finished_then_the_join(
    compiled: CompiledWorkflow,
) -> None:
    # transitions 0.9.3 crashed here ("'scoped_enter' does not exist on <Machine>"):
    # its final-state check took the last track's finality for the whole parallel state.
    config: tuple[str, ...] = (f"{M}.matching", f"{T}.treatment")
    config = compiled.decide(config, "finish_therapy", "therapist", {}, NONE).target
    assert config == (f"{M}.matching", f"{T}.done")
    d = compiled.decide(config, "begin_sessions", "coordinator", {}, NONE)
    assert (d.target, d.joined) == ((f"{M}.sessions", f"{T}.done"), None)
    d = compiled.decide(d.target, "finish_mentoring", "mentor", {}, NONE)
    assert (d.target, d.joined) == (("review",), "support")
    assert d.entered == (f"{M}.done", "review")


def test_withdraw_from_star_leaves_every_track_of_a_nested_parallel_configuration(
    compiled: CompiledWorkflow,
) -> None:
    config = (f"{M}.sessions", f"{T}.treatment")
    d = compiled.decide(config, "withdraw", "coordinator", {}, NONE)
    assert d.target == ("closed_withdrawn",)
    assert set(d.exited) == {f"{M}.sessions", f"{T}.treatment", M, T, "support"}
    assert d.exited[-1] == "support"
    assert d.entered == ("closed_withdrawn",) and d.joined is None
    for state in ("referred", "screening", "panel", "review"):
        assert compiled.decide((state,), "withdraw", "coordinator", {}, NONE).target == (
            "closed_withdrawn",
        )
    with pytest.raises(TransitionRejected) as exc:
        compiled.decide(("closed_completed",), "withdraw", "coordinator", {}, NONE)
    assert rejected(exc)["reason"] == "not_in_state"


# --- rejections --------------------------------------------------------------------------


def test_rejection_message_names_case_trigger_state_role_reason_and_allowed() -> None:
    compiled = compile_definition(example())
    with pytest.raises(TransitionRejected) as exc:
        compiled.decide(("review",), "close", "chair", {}, NONE, case_id=12)
    assert exc.value.message == (
        "case 12: 'close' is not allowed in state review for role chair: milestone "
        "exit_criteria_met not reached; allowed now: confirm_exit_criteria"
    )
    assert exc.value.code == "transition_not_allowed"
    assert exc.value.details == {
        "case_id": 12,
        "trigger": "close",
        "state": ["review"],
        "role": "chair",
        "reason": "milestones_missing",
        "allowed": ["confirm_exit_criteria"],
        "missing": ["exit_criteria_met"],
    }


@pytest.mark.parametrize(
    ("config", "trigger", "role", "data", "reason", "missing", "says"),
    [
        (
            ("review",),
            "clos",
            "chair",
            {},
            "unknown_trigger",
            [],
            "workflow community_panel v1 has no trigger 'clos' (did you mean 'close'?)",
        ),
        (("screening",), "close", "chair", {}, "not_in_state", [], "it fires only from review"),
        (
            ("referred",),
            "accept",
            "mentor",
            {},
            "role_not_allowed",
            [],
            "only coordinator or police may fire it here",
        ),
        (
            ("panel",),
            "adopt",
            "chair",
            {"risk_level": "low", "consent": True},
            "guard_failed",
            [],
            'condition not met: risk_level != "low" && consent',
        ),
        (
            ("screening",),
            "screen_out",
            "police",
            {"screening_rationale": ""},
            "missing_required",
            ["screening_rationale"],
            "required field screening_rationale not set",
        ),
        (
            ("review",),
            "close",
            "chair",
            {},
            "milestones_missing",
            ["exit_criteria_met"],
            "milestone exit_criteria_met not reached",
        ),
    ],
)
def test_every_rejection_reason(
    config: tuple[str, ...],
    trigger: str,
    role: str,
    data: dict[str, Any],
    reason: str,
    missing: list[str],
    says: str,
) -> None:
    compiled = compile_definition(example())
    with pytest.raises(TransitionRejected) as exc:
        compiled.decide(config, trigger, role, data, NONE, case_id=3)
    details = rejected(exc)
    assert (details["reason"], details["missing"], details["trigger"], details["role"]) == (
        reason,
        missing,
        trigger,
        role,
    )
    assert details["state"] == list(config) and details["case_id"] == 3
    assert details["allowed"] == [a.trigger for a in compiled.allowed(config, data, NONE, [role])]
    assert exc.value.message.startswith(f"case 3: '{trigger}' is not allowed in state ")
    assert f": {says}; allowed now: " in exc.value.message


def test_rejection_in_a_parallel_configuration_names_every_active_state() -> None:
    compiled = compile_definition(example())
    with pytest.raises(TransitionRejected) as exc:
        compiled.decide(SUPPORT_START, "finish_therapy", "therapist", {}, NONE)
    assert exc.value.message == (
        f"'finish_therapy' is not allowed in states {M}.matching, {T}.intake for role "
        f"therapist: it fires only from {T}.treatment; allowed now: begin_treatment"
    )
    assert rejected(exc)["case_id"] is None


def test_checks_run_in_order_state_then_role_then_guard_then_requires_then_needs() -> None:
    compiled = compile_definition(
        build(
            {"a": {"initial": True}, "b": {}, "end": {"final": True}},
            [
                {
                    "trigger": "go",
                    "from": "a",
                    "to": "end",
                    "by": ["r"],
                    "when": "ok",
                    "requires": ["note"],
                    "needs": ["m"],
                },
                {"trigger": "back", "from": "b", "to": "a", "by": ["r"]},
                {"trigger": "to_b", "from": "a", "to": "b", "by": ["r"]},
            ],
        )
    )

    def reason(
        config: tuple[str, ...], role: str, data: dict[str, Any], milestones: frozenset[str] = NONE
    ) -> str:
        with pytest.raises(TransitionRejected) as exc:
            compiled.decide(config, "go", role, data, milestones)
        return str(rejected(exc)["reason"])

    assert reason(("b",), "stranger", {"ok": False}) == "not_in_state"
    assert reason(("a",), "stranger", {"ok": False}) == "role_not_allowed"
    assert reason(("a",), "r", {"ok": False}) == "guard_failed"
    assert reason(("a",), "r", {"ok": True, "note": None}) == "missing_required"
    assert reason(("a",), "r", {"ok": True, "note": "x"}) == "milestones_missing"
    done = compiled.decide(("a",), "go", "r", {"ok": True, "note": "x"}, frozenset({"m"}))
    assert done.target == ("end",)


def test_a_guard_that_cannot_be_evaluated_does_not_hold_and_says_why() -> None:
    compiled = compile_definition(example())
    with pytest.raises(TransitionRejected) as exc:
        compiled.decide(("panel",), "adopt", "chair", {}, NONE)  # no risk_level at all
    assert rejected(exc)["reason"] == "guard_failed"
    assert "could not be evaluated" in exc.value.message


# --- guards, requires, needs -----------------------------------------------------------


def test_guards_are_evaluated_against_the_case_data(compiled: CompiledWorkflow) -> None:
    for data in ({"risk_level": "low", "consent": True}, {"risk_level": "high", "consent": False}):
        with pytest.raises(TransitionRejected) as exc:
            compiled.decide(("panel",), "adopt", "chair", data, NONE)
        assert rejected(exc)["reason"] == "guard_failed"
    for level in ("moderate", "high"):
        data = {"risk_level": level, "consent": True}
        assert compiled.decide(("panel",), "adopt", "chair", data, NONE).target == SUPPORT_START


def test_first_transition_in_file_order_whose_guard_holds_wins() -> None:
    compiled = compile_definition(
        build(
            {
                "a": {"initial": True},
                "high": {"final": True},
                "mid": {"final": True},
                "low": {"final": True},
            },
            [
                {"trigger": "triage", "from": "a", "to": "high", "by": ["r"], "when": "score > 7"},
                {"trigger": "triage", "from": "a", "to": "mid", "by": ["r"], "when": "score > 3"},
                {"trigger": "triage", "from": "a", "to": "low", "by": ["r"]},
            ],
        )
    )
    assert compiled.decide(("a",), "triage", "r", {"score": 9}, NONE).target == ("high",)
    assert compiled.decide(("a",), "triage", "r", {"score": 5}, NONE).target == ("mid",)
    assert compiled.decide(("a",), "triage", "r", {"score": 1}, NONE).target == ("low",)
    assert compiled.allowed(("a",), {"score": 5}, NONE) == [Allowed("triage", "mid", ("r",))]


def test_requires_means_non_empty_after_the_events_data() -> None:
    compiled = compile_definition(
        build(
            {"a": {"initial": True}, "end": {"final": True}},
            [
                {
                    "trigger": "go",
                    "from": "a",
                    "to": "end",
                    "by": ["r"],
                    "requires": ["note", "tags", "flag"],
                }
            ],
        )
    )
    empties: tuple[Any, ...] = (None, "", [])
    for empty in empties:
        data = {"note": empty, "tags": ["x"], "flag": False}
        with pytest.raises(TransitionRejected) as exc:
            compiled.decide(("a",), "go", "r", data, NONE)
        assert rejected(exc)["missing"] == ["note"]
    with pytest.raises(TransitionRejected) as exc:
        compiled.decide(("a",), "go", "r", {}, NONE)
    assert rejected(exc)["missing"] == ["note", "tags", "flag"]
    assert "required fields note, tags and flag not set" in exc.value.message
    # False and 0 are values, not emptiness.
    data = {"note": "why", "tags": ["x"], "flag": False}
    assert compiled.decide(("a",), "go", "r", data, NONE).target == ("end",)
    # allowed() does not hold requires against the case: the event may supply them.
    assert [a.trigger for a in compiled.allowed(("a",), {}, NONE)] == ["go"]


def test_needs_names_every_missing_milestone() -> None:
    compiled = compile_definition(
        build(
            {"a": {"initial": True}, "end": {"final": True}},
            [{"trigger": "go", "from": "a", "to": "end", "by": ["r"], "needs": ["m1", "m2"]}],
        )
    )
    with pytest.raises(TransitionRejected) as exc:
        compiled.decide(("a",), "go", "r", {}, ["m2"])
    assert rejected(exc)["missing"] == ["m1"]
    with pytest.raises(TransitionRejected) as exc:
        compiled.decide(("a",), "go", "r", {}, [])
    assert "milestones m1 and m2 not reached" in exc.value.message
    assert compiled.decide(("a",), "go", "r", {}, {"m1", "m2"}).target == ("end",)


# --- allowed, roles, system ------------------------------------------------------------


def test_allowed_per_role(compiled: CompiledWorkflow) -> None:
    review = ("review",)
    assert compiled.allowed(review, {}, NONE) == [
        Allowed("confirm_exit_criteria", "review", ("chair",)),
        Allowed("withdraw", "closed_withdrawn", ("coordinator",)),
    ]
    reached = frozenset({"exit_criteria_met"})
    # review_due fires close, so the system may close too.
    assert Allowed("close", "closed_completed", ("chair", "system")) in compiled.allowed(
        review, {}, reached
    )
    assert [a.trigger for a in compiled.allowed(review, {}, reached, ["chair"])] == [
        "confirm_exit_criteria",
        "close",
    ]
    assert compiled.allowed(review, {}, reached, ["chair"])[1].roles == ("chair",)
    assert compiled.allowed(review, {}, reached, ["mentor"]) == []
    assert compiled.allowed(SUPPORT_START, {}, NONE, ["coordinator", "therapist"]) == [
        Allowed("begin_sessions", f"{M}.sessions", ("coordinator",)),
        Allowed("begin_treatment", f"{T}.treatment", ("therapist",)),
        Allowed("withdraw", "closed_withdrawn", ("coordinator",)),
    ]
    # The guard is honoured.
    assert (
        compiled.allowed(("panel",), {"risk_level": "low", "consent": True}, NONE, ["chair"]) == []
    )
    assert compiled.allowed(("panel",), ADOPTABLE, NONE, ["chair"]) == [
        Allowed("adopt", "support", ("chair",))
    ]


def test_system_fires_timer_triggers_whatever_by_says(compiled: CompiledWorkflow) -> None:
    reached = {"exit_criteria_met"}
    assert compiled.decide(("review",), "close", "system", {}, reached).target == (
        "closed_completed",
    )
    with pytest.raises(TransitionRejected) as exc:
        compiled.decide(("referred",), "accept", "system", {}, reached)
    assert rejected(exc)["reason"] == "role_not_allowed"
    # Still subject to needs, like anyone.
    with pytest.raises(TransitionRejected) as exc:
        compiled.decide(("review",), "close", "system", {}, NONE)
    assert rejected(exc)["reason"] == "milestones_missing"


# --- parallel semantics ----------------------------------------------------------------

PAIR_STATES: dict[str, Any] = {
    "start": {"initial": True},
    "p": {
        "parallel": {"a": _track("a1", "a1", "a2"), "b": _track("b1", "b1", "b2")},
        "join": "after",
    },
    "after": {},
    "out": {"final": True},
}


def pair(transitions: list[dict[str, Any]]) -> CompiledWorkflow:
    return compile_definition(
        build(
            PAIR_STATES,
            [
                {"trigger": "enter", "from": "start", "to": "p", "by": ["r"]},
                *transitions,
                {"trigger": "stop", "from": "after", "to": "out", "by": ["r"]},
            ],
        )
    )


def test_one_event_fires_one_transition_even_when_two_tracks_could_take_it() -> None:
    compiled = pair(
        [
            {"trigger": "step", "from": "p.a.a1", "to": "p.a.a2", "by": ["r"]},
            {"trigger": "step", "from": "p.b.b1", "to": "p.b.b2", "by": ["r"]},
            {"trigger": "both", "from": ["p.a.a2", "p.b.b1"], "to": "out", "by": ["r"]},
        ]
    )
    config = compiled.decide(("start",), "enter", "r", {}, NONE).target
    assert config == ("p.a.a1", "p.b.b1")
    config = compiled.decide(config, "step", "r", {}, NONE).target
    assert config == ("p.a.a2", "p.b.b1")
    d = compiled.decide(config, "step", "r", {}, NONE)
    assert d.target == ("p.a.a2", "p.b.b2")
    # A transition listing sources in two tracks still fires once and leaves the parallel.
    d = compiled.decide(("p.a.a2", "p.b.b1"), "both", "r", {}, NONE)
    assert d.target == ("out",)
    assert set(d.exited) == {"p.a.a2", "p.b.b1", "p.a", "p.b", "p"}
    assert d.entered == ("out",)


def test_leaving_from_inside_one_track_leaves_every_track_and_a_join_in_one_event() -> None:
    compiled = pair(
        [
            {"trigger": "escape", "from": "p.a.a1", "to": "out", "by": ["r"]},
            {"trigger": "finish", "from": "p.a.a1", "to": "p.a.done", "by": ["r"]},
            {"trigger": "finish", "from": "p.b.b1", "to": "p.b.done", "by": ["r"]},
        ]
    )
    d = compiled.decide(("p.a.a1", "p.b.b1"), "escape", "r", {}, NONE)
    assert d.target == ("out",)
    assert set(d.exited) == {"p.a.a1", "p.b.b1", "p.a", "p.b", "p"}
    d = compiled.decide(("p.a.done", "p.b.b1"), "finish", "r", {}, NONE)
    assert (d.target, d.joined) == (("after",), "p")
    d = compiled.decide(("p.a.a1", "p.b.b1"), "finish", "r", {}, NONE)
    assert (d.target, d.joined) == (("p.a.done", "p.b.b1"), None)


def test_a_join_inside_a_track_can_complete_the_outer_join_in_the_same_event() -> None:
    inner = {"parallel": {"x": _track("x1", "x1"), "y": _track("y1", "y1")}, "join": "p.a.fin"}
    states = {
        "s": {"initial": True},
        "p": {
            "parallel": {
                "a": {"initial": "q", "states": {"q": inner, "fin": {"final": True}}},
                "b": _track("b1", "b1"),
            },
            "join": "after",
        },
        "after": {"final": True},
    }
    compiled = compile_definition(
        build(
            states,
            [
                {"trigger": "go", "from": "s", "to": "p", "by": ["r"]},
                {"trigger": "fx", "from": "p.a.q.x.x1", "to": "p.a.q.x.done", "by": ["r"]},
                {"trigger": "fy", "from": "p.a.q.y.y1", "to": "p.a.q.y.done", "by": ["r"]},
                {"trigger": "fb", "from": "p.b.b1", "to": "p.b.done", "by": ["r"]},
            ],
        )
    )
    config = compiled.decide(("s",), "go", "r", {}, NONE).target
    assert config == ("p.a.q.x.x1", "p.a.q.y.y1", "p.b.b1")
    config = compiled.decide(config, "fx", "r", {}, NONE).target
    config = compiled.decide(config, "fb", "r", {}, NONE).target
    d = compiled.decide(config, "fy", "r", {}, NONE)
    assert (d.target, d.joined) == (("after",), "p")  # the outermost join is reported
    assert d.entered == ("p.a.q.y.done", "p.a.fin", "after")
    assert d.exited[-1] == "p" and "p.a.q" in d.exited and "p.a.fin" in d.exited
    assert compiled.is_final(d.target)


# --- configurations, sharing, cache ----------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        (),
        ("nowhere",),
        ("support",),
        (f"{M}.matching",),
        ("referred", "screening"),
        (f"{M}.matching", f"{M}.sessions", f"{T}.intake"),
    ],
)
def test_a_configuration_that_does_not_fit_is_refused(config: tuple[str, ...]) -> None:
    compiled = compile_definition(example())
    with pytest.raises(InvalidInput) as exc:
        compiled.decide(config, "withdraw", "coordinator", {}, NONE)
    assert "does not fit workflow community_panel v1" in exc.value.message


def test_a_list_or_unsorted_configuration_is_accepted() -> None:
    compiled = compile_definition(example())
    d = compiled.decide([f"{T}.intake", f"{M}.matching"], "begin_treatment", "therapist", {}, NONE)
    assert d.source == SUPPORT_START and d.target == (f"{M}.matching", f"{T}.treatment")


def test_compile_is_cached_per_workflow_version_and_content() -> None:
    defn = example(content_hash="abc")
    assert compile_definition(defn) is compile_definition(defn)
    assert compile_definition(example(content_hash="abc")) is compile_definition(defn)
    assert compile_definition(example(content_hash="def")) is not compile_definition(defn)
    assert compile_definition(example(version=2, content_hash="abc")) is not (
        compile_definition(defn)
    )
    # Without a hash (hand-built), equal content shares and different content does not.
    assert compile_definition(example()) is compile_definition(example())
    other = build(EXAMPLE_STATES, EXAMPLE_TRANSITIONS[:-1], workflow="community_panel")
    assert compile_definition(other).definition == other


def test_one_shared_machine_and_no_model_per_case(compiled: CompiledWorkflow) -> None:
    machine = compiled.machine
    assert machine.auto_transitions is False
    assert machine.get_state(f"{T}.intake").name == "intake"
    for _ in range(3):
        compiled.decide(("panel",), "adopt", "chair", ADOPTABLE, NONE)
        compiled.decide(SUPPORT_START, "withdraw", "coordinator", {}, NONE)
    assert machine.models == []
    assert compiled.machine is machine


def test_cases_decided_alternately_on_the_same_machine_do_not_interfere() -> None:
    compiled = compile_definition(example())
    one: tuple[str, ...] = ("panel",)
    two: tuple[str, ...] = ("referred",)
    script_one = [
        ("adopt", "chair"),
        ("begin_sessions", "coordinator"),
        ("begin_treatment", "therapist"),
        ("finish_mentoring", "mentor"),
    ]
    script_two = [
        ("accept", "police"),
        ("refer_to_panel", "police"),
        ("adopt", "chair"),
        ("withdraw", "coordinator"),
    ]
    for (t1, r1), (t2, r2) in zip(script_one, script_two, strict=True):
        one = compiled.decide(one, t1, r1, ADOPTABLE, NONE).target
        two = compiled.decide(two, t2, r2, ADOPTABLE, NONE).target
    assert one == (f"{M}.done", f"{T}.treatment")
    assert two == ("closed_withdrawn",)
    # Memoised outcomes are the same object, whoever asked first.
    a = compiled.decide(SUPPORT_START, "withdraw", "coordinator", {}, NONE)
    assert compiled.decide(list(SUPPORT_START), "withdraw", "coordinator", {}, NONE) is a


def test_concurrent_decisions_from_many_threads_agree() -> None:
    compiled = compile_definition(example(content_hash="threads"))
    paths = [
        (("panel",), "adopt", "chair", SUPPORT_START),
        (SUPPORT_START, "begin_sessions", "coordinator", (f"{M}.sessions", f"{T}.intake")),
        ((f"{M}.done", f"{T}.treatment"), "finish_therapy", "therapist", ("review",)),
        ((f"{M}.sessions", f"{T}.treatment"), "withdraw", "coordinator", ("closed_withdrawn",)),
    ]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(paths))

    def worker(config: tuple[str, ...], trigger: str, role: str, want: tuple[str, ...]) -> None:
        barrier.wait()
        try:
            for _ in range(200):
                assert compiled.decide(config, trigger, role, ADOPTABLE, NONE).target == want
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=p) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors


SAMPLE = {
    "string": "x",
    "text": "x",
    "int": 1,
    "bool": True,
    "list": ["x"],
    "date": "2026-01-01",
    "datetime": "2026-01-01T00:00:00Z",
}


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).parent.parent.parent / "workflows").glob("*.yaml")), ids=str
)
def test_every_allowed_trigger_of_a_shipped_workflow_decides(path: Path) -> None:
    """Walk every configuration reachable through allowed(): each allowed trigger decides
    to a configuration the machine accepts, and some final configuration is reached."""
    loader = pytest.importorskip("engine.definitions.loader")
    defn: Definition = loader.load_path(path)
    compiled = compile_definition(defn)
    data = {
        f.name: f.values[-1] if f.type == "enum" else SAMPLE[f.type] for f in defn.fields.values()
    }
    reached = frozenset(defn.milestones)
    seen = {compiled.initial_configuration()}
    todo = list(seen)
    while todo:
        config = todo.pop()
        for allowed in compiled.allowed(config, data, reached):
            for role in allowed.roles:
                target = compiled.decide(config, allowed.trigger, role, data, reached).target
                assert compiled.active_states(target)
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
    assert any(compiled.is_final(c) for c in seen)
