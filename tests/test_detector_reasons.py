"""Reasons never contradict themselves: the value shown is on the bad side of the limit it is compared to."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from cxmon.config import Threshold
from cxmon.detector import Detector
from cxmon.snapshot import State
from tests.helpers import one_step_config

KEY = ("help", "voice", "q1")
SL = Threshold(
    measure="service_level", window=60.0, breach=0.8, warn=0.85, direction="below", for_=60.0, clear=0.83
)
WAIT = Threshold(
    measure="wait_p90", window=60.0, breach=60.0, warn=30.0, direction="above", for_=30.0, clear=45.0
)


def shown_percent(reason: str) -> float:
    """The first percentage in a reason, as a number of percent."""
    match = re.search(r"(\d+(?:\.\d+)?)%", reason)
    assert match, reason
    return float(match.group(1))


def test_a_service_level_just_under_warn_is_shown_under_it() -> None:
    """84.96 % against warn 85 % reads "84.96% < warn 85%", not "85% < warn 85%"."""
    verdict = Detector(one_step_config()).judge_rule(KEY, 0, SL, 0.8496, 0.0)
    assert verdict.state is State.WATCH
    assert verdict.reason == "service level 84.96% < warn 85%"


@given(st.floats(min_value=0.80, max_value=0.85, exclude_min=True, exclude_max=True))
def test_a_watch_reason_states_a_value_on_the_bad_side_of_warn(value: float) -> None:
    """For any service level strictly between breach and warn, the value shown is below 85 % (or "at")."""
    reason = Detector(one_step_config()).judge_rule(KEY, 0, SL, value, 0.0).reason
    if reason.startswith("service level at "):
        return
    assert shown_percent(reason) < 85.0, reason


@given(st.floats(min_value=0.70, max_value=0.80, exclude_max=True))
def test_a_breach_reason_states_a_value_on_the_bad_side_of_breach(value: float) -> None:
    """For any service level under the 80 % breach, the value shown is below 80 % (or "at")."""
    reason = Detector(one_step_config()).judge_rule(KEY, 0, SL, value, 0.0).reason
    if reason.startswith("service level at "):
        return
    assert shown_percent(reason) < 80.0, reason


def test_a_wait_a_fraction_over_breach_is_shown_over_it() -> None:
    """A wait p90 of 60.4 s against a 60 s breach reads "60.4s > 1m", never "1m > 1m"."""
    reason = Detector(one_step_config()).judge_rule(KEY, 0, WAIT, 60.4, 0.0).reason
    assert reason.startswith("wait p90 60.4s > 1m"), reason
