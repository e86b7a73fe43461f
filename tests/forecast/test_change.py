"""A rise in the arrival rate: the two-sample Poisson likelihood ratio, and the change point found."""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator

import pytest

from cxmon.forecast import change
from cxmon.forecast.profile import Profile


def _loglik(n: float, rate: float, t: float) -> float:
    """Poisson log-likelihood of ``n`` arrivals in ``t`` at ``rate``, less the terms that do not
    depend on the rate."""
    return n * math.log(rate) - rate * t


def _best_rate(n: float, t: float) -> float:
    """The rate with the highest likelihood, found by a grid search over ±50 % of n/t then refined
    (not the closed form the code uses)."""
    lo, hi = 0.5 * n / t, 1.5 * n / t
    for _ in range(6):
        grid = [lo + (hi - lo) * k / 200 for k in range(201)]
        best = max(grid, key=lambda r: _loglik(n, r, t))
        width = (hi - lo) / 100
        lo, hi = max(1e-12, best - width), best + width
    return best


@pytest.mark.parametrize(
    ("after", "t_after", "before", "t_before"),
    [(66, 600.0, 220, 3600.0), (60, 300.0, 480, 3600.0), (140, 900.0, 60, 1800.0)],
)
def test_score_is_the_likelihood_ratio_maximised_numerically(
    after: int, t_after: float, before: int, t_before: float
) -> None:
    """The score is the log-likelihood of a rate of its own on each side, less that of one rate for
    both, each rate found by a numerical search of the likelihood."""
    separate = _loglik(after, _best_rate(after, t_after), t_after) + _loglik(
        before, _best_rate(before, t_before), t_before
    )
    pooled = _loglik(after + before, _best_rate(after + before, t_after + t_before), t_after + t_before)
    assert change.score(after, t_after, before, t_before) == pytest.approx(separate - pooled, abs=1e-3)


def test_no_score_unless_the_rate_after_is_the_higher() -> None:
    """A fall in the rate, or the same rate, scores nothing: only a rise is looked for."""
    assert change.score(30, 600.0, 360, 3600.0) == 0.0
    assert change.score(20, 600.0, 360, 3600.0) == 0.0


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw by counting exponential gaps (independent of the code under test)."""
    n, clock = 0, rng.expovariate(1.0)
    while clock < mean:
        n += 1
        clock += rng.expovariate(1.0)
    return n


def test_a_steady_rate_passes_a_score_as_often_as_the_normal_tail_says() -> None:
    """Under one steady rate, twice the score is a chi-square with one degree of freedom (Wilks), and
    only rises count: a score of 2 or more comes with probability P(Z ≥ 2) = 2.3 %. Checked on
    20,000 simulated pairs of counts (10 minutes against the hour before, 4 arrivals a minute)."""
    rng = random.Random(3)
    trials = 20_000
    passed = sum(
        change.score(_poisson(rng, 40.0), 600.0, _poisson(rng, 240.0), 3600.0) >= 2.0 for _ in range(trials)
    )
    tail = 0.5 * math.erfc(2.0 / math.sqrt(2.0))
    assert passed / trials == pytest.approx(tail, abs=0.005)


def _stream(rng: random.Random, rates: list[tuple[float, float]], until: float) -> list[float]:
    """Arrival times up to ``until`` of a Poisson stream whose rate is ``rate`` (per second) from
    each ``start``."""
    times: list[float] = []
    for k, (start, rate) in enumerate(rates):
        end = rates[k + 1][0] if k + 1 < len(rates) else until
        t = start + rng.expovariate(rate)
        while t < end:
            times.append(t)
            t += rng.expovariate(rate)
    return times


def _samples(times: list[float], until: float) -> list[tuple[float, int]]:
    """Running counts every ten seconds up to ``until``."""
    out, n, t = [], 0, 0.0
    while t < until:
        t += 10.0
        while n < len(times) and times[n] <= t:
            n += 1
        out.append((t, n))
    return out


def _brute_rise(samples: list[tuple[float, int]], now: float, threshold: float) -> tuple[float, float] | None:
    """The best-scoring change point and its score, by trying every candidate lag on the grid and
    counting each span from the samples afresh (the reference for :func:`change.rise`'s walk)."""
    best: tuple[float, float] | None = None
    for at, base in _candidates(samples, now):
        s = change.score(samples[-1][1] - at[1], now - at[0], at[1] - base[1], at[0] - base[0])
        if s >= threshold and (best is None or s > best[1]):
            best = (at[0], s)
    return best


def _candidates(
    samples: list[tuple[float, int]], now: float
) -> Iterator[tuple[tuple[float, int], tuple[float, int]]]:
    """Every candidate change point on the grid, each with the sample its usual rate is counted
    from (an hour before it, or two hours where that rate is the higher), found by scanning the
    samples afresh."""
    first = samples[0][0]
    lag = change.SHORTEST
    while lag <= change.LONGEST:
        at = [s for s in samples if s[0] <= now - lag][-1]
        if at[0] - first < change.LEAST_BEFORE:
            break
        lag = now - at[0] + change.EVERY
        bases = []
        for span in (change.BEFORE, change.BEFORE_LONG):
            older = [s for s in samples if s[0] <= at[0] - span]
            bases.append(older[-1] if older else samples[0])
        hour, two = bases
        rate_hour = (at[1] - hour[1]) / (at[0] - hour[0])
        longer = two[0] < hour[0] and (at[1] - two[1]) / (at[0] - two[0]) > rate_hour
        yield at, two if longer else hour


def test_the_change_point_found_is_the_best_of_every_candidate() -> None:
    """On a stream that rises ×1.8 after an hour and a half, at each minute of the next half hour,
    the rise found is the best-scoring candidate change point as a search that counts every span
    afresh finds it (or none when none passes the threshold)."""
    rng = random.Random(11)
    times = _stream(rng, [(0.0, 220 / 3600), (5400.0, 1.8 * 220 / 3600)], 7200.0)
    samples = _samples(times, 7200.0)
    found = 0
    for end in range(540, 720, 6):
        now_samples = samples[: end + 1]
        now = now_samples[-1][0]
        got = change.rise(now_samples, now, now_samples[-1][1], 1, threshold=3.0)
        want = _brute_rise(now_samples, now, 3.0)
        if want is None:
            assert got is None
            continue
        found += 1
        assert got is not None and (got.since, got.score) == pytest.approx(want)
    assert found >= 20


def test_one_walk_of_the_candidates_serves_both_tests_and_any_sequence() -> None:
    """The candidate change points worked out once (as the forecast does, to ask both tests) give
    :func:`change.rise` and :func:`change.breaking` the answers they find walking the samples
    themselves, with and without a profile; and a deque of the samples walks as the list does."""
    rng = random.Random(23)
    usual = 220 / 3600
    times = _stream(rng, [(0.0, usual), (5400.0, 1.7 * usual)], 7200.0)
    samples = _samples(times, 7200.0)
    hump = tuple(1.0 + 0.5 * math.sin(2 * math.pi * i / 96) for i in range(96))
    profiles = (None, Profile.of(900.0, hump, 5))
    rises = breaks = 0
    for end in range(540, 720, 6):
        now_samples = samples[: end + 1]
        now, count = now_samples[-1]
        for profile in profiles:
            spans = change.candidates(now_samples, now, count, 1, profile)
            assert spans and spans == change.candidates(deque(now_samples), now, count, 1, profile)
            alone = change.rise(now_samples, now, count, 1, 3.0, profile)
            assert change.rise(now_samples, now, count, 1, 3.0, profile, spans) == alone
            rises += alone is not None
            rate = lambda: 1.5 * usual  # noqa: E731
            alone = change.breaking(now_samples, now, count, 1, rate, 2.0, 0.05, profile)
            assert change.breaking(now_samples, now, count, 1, rate, 2.0, 0.05, profile, spans) == alone
            breaks += alone is not None
    assert rises >= 20 and breaks >= 20


def test_a_surge_is_found_where_it_began_at_the_rate_it_runs_at() -> None:
    """200 simulated streams at 8 arrivals a minute rising ×1.8 after an hour: a quarter of an hour
    on, a rise is found in at least nine in ten, its change point within two minutes of the true one
    in most, and the rate since it averages the surge's within 5 % (the rate the queue will face)."""
    rng = random.Random(7)
    usual = 8 / 60
    found, near, rates = 0, 0, []
    for _ in range(200):
        times = _stream(rng, [(0.0, usual), (3600.0, 1.8 * usual)], 3600.0 + 900.0)
        samples = _samples(times, 3600.0 + 900.0)
        now, count = samples[-1]
        r = change.rise(samples, now, count, 1)
        if r is None:
            continue
        found += 1
        near += abs(r.since - 3600.0) <= 120.0
        rates.append(r.rate)
    assert found >= 180
    assert near >= 0.8 * found
    assert sum(rates) / len(rates) == pytest.approx(1.8 * usual, rel=0.05)


def test_a_steady_stream_seldom_shows_a_rise() -> None:
    """Twenty simulated hours at a steady 8 arrivals a minute, looked at every 10 seconds as the
    forecast does: no rise is ever found."""
    rng = random.Random(13)
    times = _stream(rng, [(0.0, 8 / 60)], 20 * 3600.0)
    samples = _samples(times, 20 * 3600.0)
    keep = int((change.LONGEST + change.BEFORE_LONG) / 10) + 1
    looks = rises = 0
    for end in range(keep, len(samples)):
        window = samples[end - keep : end + 1]
        now, count = window[-1]
        looks += 1
        rises += change.rise(window, now, count, 1) is not None
    assert looks > 6000 and rises == 0


def _poisson_log_pmf(n: int, mean: float) -> float:
    """log P(N = n) for a Poisson count of that mean, from the textbook formula."""
    return n * math.log(mean) - mean - math.lgamma(n + 1)


@pytest.mark.parametrize(
    ("after", "t_after", "usual", "breaking"),
    [(30, 300.0, 220 / 3600, 341 / 3600), (120, 900.0, 480 / 3600, 690 / 3600), (5, 600.0, 0.01, 0.05)],
)
def test_breaking_score_is_the_log_ratio_of_the_two_poisson_probabilities(
    after: int, t_after: float, usual: float, breaking: float
) -> None:
    """The score of a count at the breaking rate against the usual one is the log of the ratio of
    the two Poisson probabilities of that count (the textbook pmf)."""
    want = _poisson_log_pmf(after, breaking * t_after) - _poisson_log_pmf(after, usual * t_after)
    assert change.breaking_score(after, t_after, usual, breaking) == pytest.approx(want, rel=1e-9)


def _brute_breaking(
    samples: list[tuple[float, int]], now: float, rate: float, threshold: float, tolerance: float
) -> tuple[float, float] | None:
    """The best change point and its score by the definition: every candidate lag on the grid, each
    span counted from the samples afresh, scored by the Poisson probabilities' ratio (whether the
    rate since is above the breaking rate or a little under it)."""
    best: tuple[float, float] | None = None
    for at, base in _candidates(samples, now):
        usual = (1 + tolerance) * (at[1] - base[1]) / (at[0] - base[0])
        after, t_after = samples[-1][1] - at[1], now - at[0]
        if usual >= rate:
            continue
        s = _poisson_log_pmf(after, rate * t_after) - _poisson_log_pmf(after, usual * t_after)
        if s >= threshold and (best is None or s > best[1]):
            best = (at[0], s)
    return best


class _Counted:
    """A breaking rate that counts how often it is asked for."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.rate


def test_breaking_finds_the_change_point_a_search_by_the_definition_finds() -> None:
    """On a stream that rises ×1.6 after an hour and a half, tested against a breaking rate of ×1.5
    at each minute of the next half hour, the change point and score found are those of a search
    that counts every span afresh and scores it by the Poisson probabilities (or none when none
    passes); the breaking rate is asked for at most once a look."""
    rng = random.Random(17)
    usual = 220 / 3600
    times = _stream(rng, [(0.0, usual), (5400.0, 1.6 * usual)], 7200.0)
    samples = _samples(times, 7200.0)
    found = 0
    for end in range(540, 720, 6):
        now_samples = samples[: end + 1]
        now, count = now_samples[-1]
        rate = _Counted(1.5 * usual)
        got = change.breaking(now_samples, now, count, 1, rate, 2.0, 0.05)
        want = _brute_breaking(now_samples, now, 1.5 * usual, 2.0, 0.05)
        assert rate.calls <= 1
        if want is None:
            assert got is None
            continue
        found += 1
        assert got is not None and (got.since, got.score) == pytest.approx(want)
        assert got.breaking == 1.5 * usual
    assert found >= 10


def test_breaking_rate_is_not_looked_for_on_a_steady_stream() -> None:
    """Twelve simulated hours at a steady 8 arrivals a minute, looked at every 10 seconds with a
    breaking rate ×1.5 and a score of 10: the breaking rate (a search of the queueing model) is
    seldom asked for, and nothing is ever found."""
    rng = random.Random(19)
    usual = 8 / 60
    times = _stream(rng, [(0.0, usual)], 12 * 3600.0)
    samples = _samples(times, 12 * 3600.0)
    keep = int((change.LONGEST + change.BEFORE_LONG) / 10) + 1
    looks = asked = found = 0
    for end in range(keep, len(samples)):
        window = samples[end - keep : end + 1]
        now, count = window[-1]
        rate = _Counted(1.5 * usual)
        looks += 1
        found += change.breaking(window, now, count, 1, rate, 10.0, 0.05) is not None
        asked += rate.calls
    assert looks > 3000 and found == 0
    assert asked < 0.05 * looks


def test_a_rise_just_past_the_breaking_rate_is_found_before_the_two_sample_test_finds_it() -> None:
    """200 simulated streams at 220 arrivals an hour rising ×1.6, against a queue that breaks at
    ×1.5: ten minutes on, the test against the breaking rate at a score of 10 has found the rise in
    more streams than the two-sample test at its threshold of 14 (a rise to exactly the rate that
    matters takes less evidence than a rise to any rate)."""
    rng = random.Random(23)
    usual = 220 / 3600
    by_breaking = by_rise = 0
    for _ in range(200):
        times = _stream(rng, [(0.0, usual), (3600.0, 1.6 * usual)], 3600.0 + 600.0)
        samples = _samples(times, 3600.0 + 600.0)
        now, count = samples[-1]
        by_breaking += change.breaking(samples, now, count, 1, lambda: 1.5 * usual, 10.0, 0.0) is not None
        by_rise += change.rise(samples, now, count, 1) is not None
    assert by_breaking > by_rise + 20


def test_arrivals_a_little_under_the_breaking_rate_are_found_at_their_own_rate() -> None:
    """Twenty minutes at ×1.45 after an hour at 480 arrivals an hour, tested against a breaking rate
    of ×1.5 (a queue just short of breaking): the evidence for the breaking rate over the usual one
    is past 10, and the rise found is at the rate the arrivals run at since, under the breaking
    rate, with the breaking rate it was tested against."""
    usual = 480 / 3600
    times = [i / usual for i in range(int(3600 * usual))]
    times += [3600.0 + i / (1.45 * usual) for i in range(int(1200 * 1.45 * usual))]
    samples = _samples(times, 4800.0)
    now, count = samples[-1]
    got = change.breaking(samples, now, count, 1, lambda: 1.5 * usual, 10.0, 0.0)
    assert got is not None
    assert got.rate == pytest.approx(1.45 * usual, rel=0.02) and got.rate < got.breaking == 1.5 * usual
    assert got.since == pytest.approx(3600.0, abs=change.EVERY)
    assert got.score >= 10.0


def test_a_lull_in_the_hour_before_does_not_make_the_return_a_rise() -> None:
    """200 simulated streams at 8 arrivals a minute with a 20-minute lull at a quarter of the rate
    that ended 15 minutes ago: counted against the hour before alone, the return to the usual rate
    looks like a rise at a score of 4 in about half of them (102 of these 200); against the higher
    of that hour's rate and the two hours' (which dilute the lull), in about one in ten."""
    rng = random.Random(23)
    usual = 8 / 60
    streams = 200
    found = 0
    for _ in range(streams):
        times = _stream(rng, [(0.0, usual), (5400.0, usual / 4), (6600.0, usual)], 7500.0)
        samples = _samples(times, 7500.0)
        now, count = samples[-1]
        found += change.rise(samples, now, count, 1, threshold=4.0) is not None
    assert found <= 0.2 * streams


def test_upto_is_bisect_right_by_time() -> None:
    """The written-out search counts the samples at or before a time as ``bisect_right`` on their
    times does, ties, times before the first and after the last among them."""
    rng = random.Random(5)
    for _ in range(300):
        times = sorted(
            rng.choice((10.0, 20.0, 30.0, 40.0)) * rng.randint(0, 5) for _ in range(rng.randint(0, 12))
        )
        rows: list[change.Row] = [(t, i) for i, t in enumerate(times)]
        for when in (-1.0, 0.0, 15.0, 20.0, 40.0, 199.0, 200.0, 250.0, math.inf):
            assert change.upto(rows, when) == bisect_right(times, when)


def test_candidates_read_the_count_column_of_wide_samples() -> None:
    """Samples that carry other running totals beside the arrivals (as the live forecast's do) give
    the candidate change points the (time, arrivals) pairs alone give: the column asked for is the
    one read, and the spans count it exactly."""
    rng = random.Random(17)
    usual = 220 / 3600
    times = _stream(rng, [(0.0, usual), (5400.0, 1.6 * usual)], 7200.0)
    pairs = _samples(times, 7200.0)
    for column in (1, 4):
        wide = []
        for t, n in pairs:
            row = [t, 7 * n + 3, 2 * n, t / 3.0, n + 11, 0.5 * n, 3 * n, 1]
            row[column] = n
            wide.append(tuple(row))
        for end in range(540, 720, 12):
            now, count = pairs[end]
            want = change.candidates(pairs[: end + 1], now, count, 1)
            got = change.candidates(wide[: end + 1], now, count, column)
            assert want and got == want
            assert [span[:2] for span in got] == [
                (at[0], count - at[1]) for at, _ in _candidates(pairs[: end + 1], now)
            ]
