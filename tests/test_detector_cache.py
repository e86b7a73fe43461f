"""A rule's kept verdict and texts never stand for a judgement that would say something else."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from cxmon.config import Threshold
from cxmon.detector import Detector, Verdict
from cxmon.snapshot import State
from tests.helpers import one_step_config

KEY = ("help", "voice", "q1")
WAIT = Threshold(
    measure="wait_p90", window=60.0, breach=60.0, warn=30.0, direction="above", for_=30.0, clear=45.0
)
SL = Threshold(
    measure="service_level", window=60.0, breach=0.8, warn=0.85, direction="below", for_=60.0, clear=0.83
)


def fields(verdict: Verdict) -> tuple[object, ...]:
    """A verdict's fields, the sign of a zero value included (it shows in the reason)."""
    value = verdict.value
    sign = None if value is None else math.copysign(1.0, value)
    return verdict.state, verdict.reason, verdict.measure, value, sign, verdict.badness


def test_a_reason_changes_when_the_value_as_shown_changes() -> None:
    """Judged again with a value that formats otherwise, a rule's reason shows the new value."""
    det = Detector(one_step_config())
    first = det.judge_rule(KEY, 0, WAIT, 40.0, 0.0)
    second = det.judge_rule(KEY, 0, WAIT, 41.0, 10.0)
    assert first.reason == "wait p90 40s > warn 30s"
    assert second.reason == "wait p90 41s > warn 30s"
    assert second.value == 41.0


def test_a_value_that_shows_the_same_still_gives_its_own_value() -> None:
    """40.2 s shows as "40s" like 40 s, but the verdict carries 40.2, not the 40 judged before."""
    det = Detector(one_step_config())
    det.judge_rule(KEY, 0, WAIT, 40.0, 0.0)
    verdict = det.judge_rule(KEY, 0, WAIT, 40.2, 10.0)
    assert verdict.reason == "wait p90 40s > warn 30s"
    assert verdict.value == 40.2


def test_an_ok_verdict_carries_its_own_value_when_its_text_is_the_same() -> None:
    """20.2 s after 20 s is OK "wait p90 20s" both times, with the same badness: a verdict of 20.2."""
    det = Detector(one_step_config())
    first = det.judge_rule(KEY, 0, WAIT, 20.0, 0.0)
    second = det.judge_rule(KEY, 0, WAIT, 20.2, 10.0)
    assert (first.state, first.reason) == (second.state, second.reason) == (State.OK, "wait p90 20s")
    assert second.value == 20.2


def test_a_zero_of_the_other_sign_is_shown_with_its_sign() -> None:
    """-0.0 equals 0.0 but formats as "-0%": the text kept for 0.0 is not shown for it."""
    det = Detector(one_step_config())
    assert det.judge_rule(KEY, 0, SL, 0.0, 0.0).reason.startswith("service level 0% < 80%")
    assert det.judge_rule(KEY, 0, SL, -0.0, 10.0).reason.startswith("service level -0% < 80%")


def test_the_same_judgement_gives_an_equal_verdict() -> None:
    """Judged again with nothing changed, a rule gives a verdict equal to its last."""
    det = Detector(one_step_config())
    first = det.judge_rule(KEY, 0, SL, 0.9, 0.0)
    again = det.judge_rule(KEY, 0, SL, 0.9, 10.0)
    assert again == first
    assert again.reason == "service level 90%"


def test_a_pot_hole_reason_says_how_long_at_each_judgement() -> None:
    """A pot hole judged again at the same value shows how long it has lasted, not the last text."""
    det = Detector(one_step_config())
    reasons = [det.judge_rule(KEY, 0, WAIT, 90.0, t).reason for t in (0.0, 40.0, 100.0, 100.0)]
    assert reasons == [
        "wait p90 1m30s > 1m (pot hole if it lasts 30s)",
        "wait p90 1m30s > 1m for 40s",
        "wait p90 1m30s > 1m for 1m40s",
        "wait p90 1m30s > 1m for 1m40s",
    ]


def test_recovering_names_the_reason_it_recovers_from() -> None:
    """A rule recovering from WATCH names its last WATCH reason, even at a value it showed before."""
    det = Detector(one_step_config())
    det.judge_rule(KEY, 0, WAIT, 20.0, 0.0)
    det.judge_rule(KEY, 0, WAIT, 40.0, 10.0)
    verdict = det.judge_rule(KEY, 0, WAIT, 20.0, 20.0)
    assert verdict.state is State.WATCH
    assert verdict.reason == "wait p90 20s, recovering (was: wait p90 40s > warn 30s)"


values = st.sampled_from(
    [0.0, -0.0, 20.0, 29.9, 30.0, 30.4, 40.0, 44.9, 45.0, 59.6, 60.0, 60.4, 90.0, 3600.0]
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.one_of(st.none(), values), st.sampled_from([0.0, 1.0, 10.0, 30.0])), max_size=30)
)
def test_kept_verdicts_are_the_verdicts_worked_out_afresh(steps: list[tuple[float | None, float]]) -> None:
    """Any run of values and times gives the verdicts a detector gives with its kept texts and
    verdicts forgotten before each judgement."""
    kept, fresh = Detector(one_step_config()), Detector(one_step_config())
    now = 0.0
    for value, gap in steps:
        now += gap
        rs = fresh.rules.get((KEY, 0))
        if rs is not None:
            rs.verdict, rs.shown_for = None, math.nan
            rs.fmt = rs.plain = rs.versus_breach = rs.versus_warn = ""
        assert fields(kept.judge_rule(KEY, 0, WAIT, value, now)) == fields(
            fresh.judge_rule(KEY, 0, WAIT, value, now)
        )
