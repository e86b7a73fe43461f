"""The pot-hole detector's state machine: for, hysteresis, trend, roll-up, staleness."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from cxmon.config import Threshold
from cxmon.detector import Detector, Verdict
from cxmon.snapshot import State
from tests.helpers import one_step_config

KEY = ("help", "voice", "q1")
TH = Threshold(
    measure="wait_p90", window=60.0, breach=60.0, warn=30.0, direction="above", for_=30.0, clear=45.0
)
SL = Threshold(
    measure="service_level", window=60.0, breach=0.8, warn=0.85, direction="below", for_=60.0, clear=0.83
)


def run(det: Detector, th: Threshold, values: Sequence[float | None], step: float = 1.0) -> list[State]:
    return [det.judge_rule(KEY, 0, th, v, i * step).state for i, v in enumerate(values)]


def transitions(states: list[State]) -> list[tuple[State, State]]:
    return [(a, b) for a, b in itertools.pairwise(states) if a is not b]


def test_breach_becomes_pothole_only_after_for() -> None:
    """Past breach is WATCH until it has held for `for`, then POTHOLE."""
    states = run(Detector(one_step_config()), TH, [70.0] * 40)
    assert states[0] is State.WATCH
    assert states[29] is State.WATCH
    assert states[30] is State.POTHOLE


def test_flapping_around_the_breach_line_makes_no_alert_storm() -> None:
    """A value flipping across breach every few seconds never holds for `for`: no pot hole at all."""
    values = [65.0 if (i // 5) % 2 == 0 else 55.0 for i in range(600)]
    states = run(Detector(one_step_config()), TH, values)
    assert State.POTHOLE not in states
    assert set(states) == {State.WATCH}


def test_flapping_inside_a_pothole_keeps_one_pothole() -> None:
    """Once a pot hole, values hovering between clear and breach keep it one pot hole (hysteresis)."""
    values = [70.0] * 31 + [50.0 if i % 2 else 62.0 for i in range(300)]
    states = run(Detector(one_step_config()), TH, values)
    assert transitions(states) == [(State.WATCH, State.POTHOLE)]


def test_recovery_goes_back_through_watch_to_ok() -> None:
    """Back past clear leaves the pot hole; calm for `for` returns to OK."""
    values = [70.0] * 31 + [20.0] * 80
    states = run(Detector(one_step_config()), TH, values)
    assert transitions(states) == [
        (State.WATCH, State.POTHOLE),
        (State.POTHOLE, State.WATCH),
        (State.WATCH, State.OK),
    ]
    assert states[-1] is State.OK


def test_below_direction_uses_the_other_side() -> None:
    """For service level (bad when low), a low value breaches and a high one clears."""
    states = run(Detector(one_step_config()), SL, [0.7] * 61 + [0.9] * 100)
    assert State.POTHOLE in states
    assert states[-1] is State.OK


def test_rising_trend_is_watched_before_the_breach() -> None:
    """A value still under warn but rising fast toward breach is WATCH, with the projection as reason."""
    det = Detector(one_step_config())
    verdicts: list[Verdict] = []
    for i in range(30):
        verdicts.append(det.judge_rule(KEY, 0, TH, 5.0 + i * 0.8, i * 10.0))
    assert verdicts[0].state is State.OK
    last = verdicts[-1]
    assert last.value is not None and last.value < 30.0
    assert last.state is State.WATCH
    assert "rising" in last.reason


def test_no_data_is_not_a_pothole() -> None:
    """With too few contacts to judge, the rule says so instead of inventing a state."""
    v = Detector(one_step_config()).judge_rule(KEY, 0, TH, None, 0.0)
    assert v.state is State.OK
    assert "too few" in v.reason


def test_a_pot_hole_whose_window_empties_ends_with_too_few_to_judge() -> None:
    """At closing time the calls stop: a pot hole whose window falls under ``min_volume`` has no verdict
    any more and its series is OK with "too few contacts to judge", not held until ``clear``."""
    det = Detector(one_step_config())
    for i in range(31):
        v = det.judge_rule(KEY, 0, TH, 212.0, float(i))
    assert v.state is State.POTHOLE
    v = det.judge_rule(KEY, 0, TH, None, 31.0)
    assert v.state is State.OK and "too few contacts to judge" in v.reason


def test_reason_is_readable() -> None:
    """A pot hole's reason names the measure, the value, the limit and how long."""
    det = Detector(one_step_config())
    for i in range(31):
        v = det.judge_rule(KEY, 0, TH, 212.0, float(i))
    assert v.reason == "wait p90 3m32s > 1m for 30s"


def test_stale_step_overrides_its_figures() -> None:
    """A step whose sources are silent is STALE, never OK, and the transition says why."""
    config = one_step_config()
    det = Detector(config)
    step = config.steps[0]
    ok = {KEY: Verdict(State.OK, "wait p90 3s", "wait_p90", 3.0)}
    state, _, t = det.roll_up(step, ok, stale=False, stale_reason="", now=0.0)
    assert state is State.OK and t is None
    state, reason, t = det.roll_up(step, ok, stale=True, stale_reason="nothing from sim for 75s", now=75.0)
    assert state is State.STALE
    assert t is not None and t.from_state is State.OK and t.to_state is State.STALE
    assert reason == "nothing from sim for 75s"


def test_trend_slope_matches_the_textbook_least_squares_fit() -> None:
    """slope() equals statistics.linear_regression over the samples of the last TREND_SPAN seconds,
    and says nothing with too few points or too short a span."""
    import random
    import statistics
    from collections import deque

    from cxmon.detector import TREND_SPAN, slope

    rng = random.Random(3)
    for _ in range(200):
        now = 1_767_600_000.0 + rng.uniform(0, 86400)
        samples = deque(
            sorted(
                (now - rng.uniform(0, 2 * TREND_SPAN), rng.uniform(-50, 500))
                for _ in range(rng.randint(0, 40))
            )
        )
        recent = [(t, v) for t, v in samples if t >= now - TREND_SPAN]
        got = slope(samples, now)
        if len(recent) < 5 or recent[-1][0] - recent[0][0] < 60.0:
            assert got is None
            continue
        ts, vs = zip(*recent, strict=True)
        expected = statistics.linear_regression(ts, vs).slope
        assert got is not None and abs(got - expected) <= 1e-6 * max(1.0, abs(expected))
