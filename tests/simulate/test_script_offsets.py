"""Script offsets: ``+0 hours`` is the previous step's moment; a negative one is refused."""

from __future__ import annotations

import pytest

from engine.errors import InvalidInput
from engine.simulate.run import run_simulation, workflow_source

SCRIPT = """\
start: 2026-03-02 09:00
assign: {coordinator: Council, police: Prevent, police_supervisor: Prevent Lead}
data: {referral_reason: test}
steps:
  - {at: +1 hour, fire: accept, as: coordinator}
  - {at: OFFSET, fire: screen_out, as: police, data: {screening_rationale: ok}}
until: +1 day
"""


@pytest.mark.parametrize("offset", ["+0 hours", "+0 business days", "+PT0H", "+P0D"])
def test_a_zero_offset_is_the_same_moment_taken_after_the_step_before(offset: str) -> None:
    text, path = workflow_source("community_panel")
    sim = run_simulation(text, path, SCRIPT.replace("OFFSET", offset), "s.yaml")
    moves = [(r.trigger, r.at.strftime("%H:%M")) for r in sim.rows if r.kind == "transition"]
    assert moves[1:] == [("accept", "10:00"), ("screen_out", "10:00")]
    assert sim.state == ("closed_no_concern",)


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        ("+-1 hours", "a duration must be positive"),
        ("+0 parsecs", "bad offset '+0 parsecs'"),
    ],
)
def test_other_offsets_stay_refused_at_their_line(offset: str, message: str) -> None:
    text, path = workflow_source("community_panel")
    with pytest.raises(InvalidInput) as caught:
        run_simulation(text, path, SCRIPT.replace("OFFSET", offset), "s.yaml")
    assert caught.value.message.startswith("s.yaml:6:")
    assert message in caught.value.message
