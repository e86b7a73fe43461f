"""WATCH beyond noise: a share or score past `warn` and a trend towards `breach` count only when they
stand out of their noise, checked against references computed here (brute-force sums, textbook tables,
seeded simulations of healthy and degrading queues)."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import statistics
from fractions import Fraction

from cxmon.config import Threshold
from cxmon.detector import Detector
from cxmon.noise import binomial_tail, fit, score_tail, t_quantile
from cxmon.snapshot import State
from tests.helpers import one_step_config

KEY = ("help", "voice", "q1")
SL = Threshold(
    measure="service_level", window=300.0, breach=0.8, warn=0.85, direction="below", for_=120.0, clear=0.83
)
AB = Threshold(
    measure="abandon_rate", window=300.0, breach=0.15, warn=0.08, direction="above", for_=120.0, clear=0.1
)
CSAT = Threshold(
    measure="csat", window=3600.0, breach=3.4, warn=3.8, direction="below", for_=300.0, clear=3.6
)


def detector(warn: float = 0.9, trend: float = 0.99) -> Detector:
    """A detector with these confidences (the defaults' values unless told)."""
    config = one_step_config()
    monitor = dataclasses.replace(config.monitor, warn_confidence=warn, trend_confidence=trend)
    return Detector(dataclasses.replace(config, monitor=monitor))


def test_the_defaults_are_the_confidences_these_tests_use() -> None:
    """The shipped defaults are 90 % for warn and 99 % for the trend (what ``detector()`` builds)."""
    monitor = one_step_config().monitor
    assert (monitor.warn_confidence, monitor.trend_confidence) == (0.9, 0.99)


def exact_lower_tail(k: int, n: int, p: Fraction) -> Fraction:
    """P(X ≤ k), X ~ Binomial(n, p), summed in exact rational arithmetic."""
    return sum((math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k + 1)), Fraction(0))


def test_binomial_tail_equals_the_brute_force_sum() -> None:
    """binomial_tail matches the exact rational sum of the binomial terms, in both tails."""
    rng = random.Random(11)
    for _ in range(400):
        n = rng.randint(1, 300)
        p = Fraction(rng.randint(1, 99), 100)
        k = rng.randint(0, n)
        exact = float(exact_lower_tail(k, n, p))
        got = binomial_tail(k, n, float(p))
        assert abs(got - exact) <= 1e-9 * max(exact, 1e-12) + 1e-15, (k, n, p, got, exact)


def test_service_level_warn_is_watch_exactly_when_the_binomial_tail_is_under_ten_percent() -> None:
    """A service level past warn turns WATCH iff a queue truly at warn shows so few answered in time
    with a probability under 1 − 90 % (the exact binomial sum, computed here)."""
    rng = random.Random(5)
    seen = {State.OK: 0, State.WATCH: 0}
    for _ in range(300):
        n = rng.randint(10, 120)
        lo, hi = math.ceil(0.80 * n), math.ceil(0.85 * n) - 1  # past warn, not past breach
        if lo > hi:
            continue
        k = rng.randint(lo, hi)
        value = k / n
        verdict = detector().judge_rule(KEY, 0, SL, value, 0.0, n=float(n))
        expected = State.WATCH if exact_lower_tail(k, n, Fraction(85, 100)) < Fraction(1, 10) else State.OK
        assert verdict.state is expected, (k, n, verdict.reason)
        seen[expected] += 1
    assert seen[State.OK] and seen[State.WATCH]  # both sides of the rule were exercised


def test_abandon_rate_warn_uses_the_upper_tail() -> None:
    """An abandon rate past warn turns WATCH iff P(X ≥ k) at warn, brute-forced, is under 10 %."""
    rng = random.Random(6)
    for _ in range(200):
        n = rng.randint(10, 150)
        lo, hi = math.floor(0.08 * n) + 1, math.ceil(0.15 * n) - 1  # past warn, not past breach
        if lo > hi:
            continue
        k = rng.randint(lo, hi)
        value = k / n
        verdict = detector().judge_rule(KEY, 0, AB, value, 0.0, n=float(n))
        upper = 1 - exact_lower_tail(k - 1, n, Fraction(8, 100))
        assert (verdict.state is State.WATCH) == (upper < Fraction(1, 10)), (k, n, verdict.reason)


def test_a_share_past_warn_within_its_noise_says_so_beside_its_value() -> None:
    """39 of 46 in time (84.8 %) is no WATCH; the reason still shows the value and why it is held."""
    verdict = detector().judge_rule(KEY, 0, SL, 39 / 46, 0.0, n=46.0)
    assert verdict.state is State.OK
    assert (
        verdict.reason == "service level 84.8% (past warn 85% within its noise over 46; WATCH if it lasts 5m)"
    )


def test_confidence_zero_and_no_denominator_keep_the_plain_comparison() -> None:
    """With warn_confidence 0, or without a denominator, a value past warn is WATCH as before."""
    assert detector(warn=0.0).judge_rule(KEY, 0, SL, 39 / 46, 0.0, n=46.0).state is State.WATCH
    assert detector().judge_rule(KEY, 0, SL, 39 / 46, 0.0).state is State.WATCH


def exact_mean_tail(pmf: dict[int, Fraction], n: int, total: int) -> Fraction:
    """P(sum of n iid scores with distribution ``pmf`` ≤ total), by convolution."""
    dist = {0: Fraction(1)}
    for _ in range(n):
        nxt: dict[int, Fraction] = {}
        for s, ps in dist.items():
            for v, pv in pmf.items():
                nxt[s + v] = nxt.get(s + v, Fraction(0)) + ps * pv
        dist = nxt
    return sum((p for s, p in dist.items() if s <= total), Fraction(0))


def test_score_bound_holds_for_any_distribution_of_scores() -> None:
    """For score distributions on 1–5 with mean 3.8, the exact chance of a mean this low (by
    convolution) never exceeds score_tail's bound."""
    pmfs = [
        {1: Fraction(1, 10), 3: Fraction(1, 4), 4: Fraction(3, 10), 5: Fraction(7, 20)},  # spread out
        {1: Fraction(3, 10), 5: Fraction(7, 10)},  # two-point: the widest spread for its mean
        {3: Fraction(1, 5), 4: Fraction(4, 5)},  # narrow
    ]
    for pmf in pmfs:
        mean = sum(v * p for v, p in pmf.items())
        assert mean == Fraction(19, 5)
        for n in (5, 12, 20):
            for total in range(n, int(3.8 * n)):
                exact = exact_mean_tail(pmf, n, total)
                bound = score_tail(total / n, n, 3.8, 1.0, 5.0)
                assert float(exact) <= bound + 1e-12, (pmf, n, total, float(exact), bound)


def test_csat_past_warn_on_a_dozen_surveys_is_within_noise() -> None:
    """CSAT 3.7 over 12 surveys is no WATCH against warn 3.8; 3.2 over 40 is beyond its noise."""
    assert detector().judge_rule(KEY, 0, CSAT, 3.7, 0.0, n=12.0).state is State.OK
    assert detector().judge_rule(KEY, 0, CSAT, 3.5, 0.0, n=200.0).state is State.WATCH


def test_t_quantile_matches_the_textbook_table() -> None:
    """Student's t quantiles agree with the printed table to its 3 decimals (±0.01)."""
    table = {
        (0.90, 3): 1.638,
        (0.90, 8): 1.397,
        (0.90, 28): 1.313,
        (0.95, 5): 2.015,
        (0.95, 10): 1.812,
        (0.95, 28): 1.701,
        (0.975, 10): 2.228,
        (0.99, 8): 2.896,
    }
    for (q, dof), expected in table.items():
        assert abs(t_quantile(q, dof) - expected) < 0.01, (q, dof, t_quantile(q, dof))


def test_fit_standard_error_matches_the_textbook_formula() -> None:
    """fit() gives the least-squares slope and sqrt(Σ residual² / (n−2) / Σ(t − t̄)²)."""
    rng = random.Random(8)
    for _ in range(100):
        n = rng.randint(3, 30)
        pts = sorted((rng.uniform(0, 300), rng.gauss(4.0, 0.3)) for _ in range(n))
        ts, vs = zip(*pts, strict=True)
        line = statistics.linear_regression(ts, vs)
        resid = [v - (line.intercept + line.slope * t) for t, v in pts]
        tbar = statistics.fmean(ts)
        se = math.sqrt(sum(r * r for r in resid) / (n - 2) / sum((t - tbar) ** 2 for t in ts))
        got = fit(pts)
        assert got is not None
        assert math.isclose(got[0], line.slope, rel_tol=1e-6, abs_tol=1e-12)
        assert math.isclose(got[1], se, rel_tol=1e-6, abs_tol=1e-12)


def trend_states(
    det: Detector, th: Threshold, values: list[float], step: float = 10.0, n: float | None = None
) -> list[State]:
    return [det.judge_rule(KEY, 0, th, v, i * step, n=n).state for i, v in enumerate(values)]


SCORES = {5: 0.5, 4: 0.3, 3: 0.1, 2: 0.05, 1: 0.05}
"""A satisfied clientele's scores (mean 4.15)."""


def rolling_csat(
    rng: random.Random, minutes: int, per_hour: float, shift: float = 0.0
) -> list[tuple[float, int]]:
    """A 60-minute rolling CSAT sampled every 10 s, with its survey count: surveys arrive at random
    (``per_hour``), scores drawn from SCORES, each score lowered by ``shift`` × minutes since the
    start of the last half hour (a decline), kept within 1–5."""
    surveys: list[tuple[float, float]] = []
    t = -3600.0
    end = minutes * 60.0
    while t < end:
        t += rng.expovariate(per_hour / 3600.0)
        score = rng.choices(list(SCORES), weights=list(SCORES.values()))[0]
        declining = max(0.0, t - (end - 1800.0)) / 60.0
        surveys.append((t, min(5.0, max(1.0, score - shift * declining))))
    out = []
    for i in range(int(end // 10)):
        now = i * 10.0
        window = [v for ts, v in surveys if now - 3600.0 < ts <= now]
        out.append((statistics.fmean(window), len(window)))
    return out


def csat_states(det: Detector, series: list[tuple[float, int]]) -> list[State]:
    return [det.judge_rule(KEY, 0, CSAT, v, i * 10.0, n=float(n)).state for i, (v, n) in enumerate(series)]


def test_a_wandering_csat_seldom_draws_a_trend_watch() -> None:
    """The rolling CSAT of a satisfied clientele (30 surveys an hour, mean 4.15) over 20 seeded
    2-hour spells turns WATCH in at most one of them; judged without the noise checks, in most."""
    watched = plain = 0
    for seed in range(20):
        series = rolling_csat(random.Random(seed), 120, 30.0)
        watched += State.WATCH in csat_states(detector(), series)
        plain += State.WATCH in csat_states(detector(warn=0.0, trend=0.0), series)
    assert watched <= 1
    assert plain >= 10


def test_a_real_csat_decline_is_still_watched_before_the_breach() -> None:
    """Scores falling 0.25 a minute for half an hour (70 surveys an hour) turn the rolling CSAT
    WATCH before it first crosses the 3.4 breach in at least 9 of 10 seeded runs."""
    warned = 0
    for seed in range(10):
        series = rolling_csat(random.Random(seed), 60, 70.0, shift=0.25)
        states = csat_states(detector(), series)
        crossed = next(i for i, (v, _) in enumerate(series) if v < 3.4)
        warned += State.WATCH in states[:crossed]
    assert warned >= 9


def test_a_trend_needs_more_than_a_handful_of_samples() -> None:
    """Seven samples falling in a perfect line (60 s) project nothing; with the check off they did."""
    values = [4.5 - 0.1 * i for i in range(7)]
    assert trend_states(detector(), CSAT, values, n=500.0)[-1] is State.OK
    assert trend_states(detector(trend=0.0), CSAT, values, n=500.0)[-1] is State.WATCH


def healthy_queue_minutes(
    rng: random.Random, minutes: int, per_minute: float, p: float
) -> list[tuple[int, int]]:
    """(answered in time, answered) per minute of a queue whose true service level is ``p``."""
    out = []
    for _ in range(minutes):
        n = 0
        # Poisson arrivals by inversion (no numpy in the test dependencies).
        limit, prod = math.exp(-per_minute), rng.random()
        while prod > limit:
            n += 1
            prod *= rng.random()
        within = sum(rng.random() < p for _ in range(n))
        out.append((within, n))
    return out


def judge_windows(det: Detector, minutes: list[tuple[int, int]], th: Threshold) -> list[State]:
    """Judge a 5-minute rolling window at every minute, with its counts."""
    states = []
    for i in range(5, len(minutes) + 1):
        win = minutes[i - 5 : i]
        k, n = sum(w for w, _ in win), sum(m for _, m in win)
        value = k / n if n >= 10 else None
        states.append(det.judge_rule(KEY, 0, th, value, i * 60.0, n=float(n)).state)
    return states


def test_a_healthy_queue_never_warns_over_many_seeded_hours() -> None:
    """A well-staffed queue (true service level 95 %, 8 calls a minute) judged every minute for
    200 seeded hours is never WATCH from warn; judged by the bare value against warn it is, many
    times. (Breach is put out of reach so that only warn can turn it WATCH.)"""
    warn_only = dataclasses.replace(SL, breach=0.5, clear=0.55)
    alarms = plain = 0
    for seed in range(25):
        minutes = healthy_queue_minutes(random.Random(seed), 8 * 60, 8.0, 0.95)
        states = judge_windows(detector(), minutes, warn_only)
        alarms += sum(a is State.OK and b is not State.OK for a, b in itertools.pairwise(states))
        states = judge_windows(detector(warn=0.0), minutes, warn_only)
        plain += sum(a is State.OK and b is not State.OK for a, b in itertools.pairwise(states))
    assert alarms <= 1  # one spell of 5 minutes at 83–85 % in 200 hours: it lasted a window
    assert plain >= 10


def test_a_queue_settled_past_warn_still_turns_watch() -> None:
    """A queue whose true service level drops from 95 % to 75 % and stays there is WATCH within 20
    minutes of the drop in every seeded run, though on 40 calls its figure is seldom past warn
    beyond its noise: it lasts a window."""
    for seed in range(20):
        rng = random.Random(seed)
        minutes = healthy_queue_minutes(rng, 30, 8.0, 0.95) + healthy_queue_minutes(rng, 30, 8.0, 0.75)
        states = judge_windows(detector(), minutes, dataclasses.replace(SL, breach=0.5, clear=0.55))
        # states[i] judges the window ending at minute i + 5; the drop is at minute 30.
        assert State.WATCH not in states[: 30 - 5], seed
        assert State.WATCH in states[30 - 5 : 30 - 5 + 20], seed


def test_a_series_already_watch_keeps_a_figure_past_warn_within_its_noise() -> None:
    """Raising WATCH takes evidence, keeping it does not: a figure past warn within its noise is
    WATCH when its series already is, OK when it is not."""
    assert detector().judge_rule(KEY, 0, SL, 39 / 46, 0.0, n=46.0, raised=True).state is State.WATCH
    assert detector().judge_rule(KEY, 0, SL, 39 / 46, 0.0, n=46.0, raised=False).state is State.OK


def test_judge_series_passes_the_window_counts_and_the_series_state() -> None:
    """Through judge_series, a service level past warn over a few calls is OK, and the same figure
    after the series turned WATCH (its wait p90 past warn) stays WATCH."""
    config = one_step_config(
        """
  [[journey.steps.thresholds]]
  measure = "service_level"
  window = "5m"
  direction = "below"
  warn = "85%"
  breach = "50%"
  clear = "60%"
  for = "1m"
"""
    )
    det = Detector(config)
    step = config.steps[0]
    calm = {60.0: {"wait_p90": 5.0}, 300.0: {"service_level": 0.8, "answered": 20.0, "abandoned": 0.0}}
    assert det.judge_series(KEY, step, calm, {}, 0.0).state is State.OK
    slow = {60.0: {"wait_p90": 40.0}, 300.0: calm[300.0]}
    assert det.judge_series(KEY, step, slow, {}, 1.0).state is State.WATCH
    # wait p90 back to calm (WATCH recovering for its `for`), service level still 80 % over 20.
    verdict = det.judge_series(KEY, step, calm, {}, 2.0)
    assert verdict.state is State.WATCH
    assert det.rules[(KEY, 1)].state is State.WATCH
