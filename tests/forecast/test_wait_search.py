"""The forecast's searches against the brute-force ways they replace.

The wait percentile is played out from the tail's crossing instead of bisecting the tail; the agents
needed are looked for from a guess; Erlang B is read off a kept recursion; Erlang A's ASA series is
summed in floats instead of logarithms; a search for an abandon rate reads only the abandon share.
Each is held to an independent reference written here: the bisection of the tail as it was, counting
agents up one by one, the plain recursion, the series in 40-digit decimals, the full model.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable
from decimal import Decimal, getcontext

import pytest

from cxmon.forecast import Workload, erlang_a, erlang_b, evaluate, staffing
from cxmon.forecast.erlang_a import _log_answered_wait, erlang_a_wait_crossing, erlang_a_wait_exceeds
from cxmon.forecast.erlang_c import erlang_c_wait_crossing, erlang_c_wait_exceeds
from tests.forecast.reference import answered_within, stationary


def bisected_quantile(work: Workload, agents: int, q: float) -> float | None:
    """The p-``q`` wait by bisection on the tail, evaluated at every step (the search as it was)."""
    tail = 1.0 - q
    first = staffing.wait_exceeds(work, agents, 0.0)
    if first is None:
        return None
    if first <= tail:
        return 0.0
    high = max(1.0, work.aht)
    while (staffing.wait_exceeds(work, agents, high) or 0.0) > tail:
        high *= 2.0
        if high > 1e9:
            return None
    low = 0.0
    while high - low > 0.1:
        middle = (low + high) / 2.0
        if (staffing.wait_exceeds(work, agents, middle) or 0.0) > tail:
            low = middle
        else:
            high = middle
    return high


def random_cases(seed: int, count: int, patience: bool) -> list[tuple[Workload, int, float]]:
    """Workloads from a few contacts an hour to thousands, agents from deep overload to idle."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        per_hour = math.exp(rng.uniform(math.log(5.0), math.log(5000.0)))
        aht = rng.uniform(20.0, 900.0)
        work = Workload(per_hour / 3600.0, aht, rng.uniform(5.0, 3000.0) if patience else None)
        low = 0 if patience else math.floor(work.load) + 1
        agents = rng.randint(low, math.ceil(work.load * 1.6) + 3)
        cases.append((work, agents, rng.choice([0.5, 0.8, 0.9, 0.95, 0.99])))
    return cases


@pytest.mark.parametrize("patience", [True, False], ids=["erlang_a", "erlang_c"])
def test_wait_quantile_is_the_bisections_answer(patience: bool) -> None:
    """Over 400 random workloads, agent counts and shares, the wait percentile equals, to the last
    bit, what bisecting the tail (evaluated at every step) gives."""
    for work, agents, q in random_cases(11 if patience else 12, 400, patience):
        assert staffing.wait_quantile(work, agents, q) == bisected_quantile(work, agents, q), (
            work,
            agents,
            q,
        )


def test_wait_quantile_is_the_bisections_answer_at_the_forecasts_loads() -> None:
    """Where the live forecast works (a queue of a few to 40 agents, waits of seconds to minutes),
    every agent count from overload to idle gives the bisection's answer to the last bit."""
    rng = random.Random(5)
    compared = 0
    for _ in range(40):
        work = Workload(rng.uniform(0.005, 0.3), rng.uniform(60.0, 400.0), rng.uniform(30.0, 600.0))
        for agents in range(max(1, math.floor(work.load * 0.6)), math.ceil(work.load * 1.4) + 3):
            for q in (0.5, 0.9, 0.99):
                assert staffing.wait_quantile(work, agents, q) == bisected_quantile(work, agents, q)
                compared += 1
    assert compared > 1000


@pytest.mark.parametrize(
    ("per_hour", "aht", "patience", "agents"),
    [
        (200.0, 180.0, 120.0, 14),
        (400.0, 180.0, 120.0, 14),
        (600.0, 240.0, 60.0, 20),
        (60.0, 300.0, 600.0, 3),
    ],
)
def test_erlang_a_crossing_is_where_the_chains_tail_falls_to_the_share(
    per_hour: float, aht: float, patience: float, agents: int
) -> None:
    """The interval Erlang A's crossing is found in is no wider than asked, and the birth–death chain's
    own P(still waiting) (tests/forecast/reference.py, no cxmon code) falls through the share inside
    it (to 1e-9)."""
    lam, mu, theta = per_hour / 3600.0, 1.0 / aht, 1.0 / patience
    pi = stationary(lam, mu, theta, agents)
    work = Workload(lam, aht, patience)
    for tail in (0.5, 0.2, 0.1, 0.01):
        found = erlang_a_wait_crossing(work, agents, tail, 1e-3)
        assert found is not None
        low, high = found
        assert 0.0 <= high - low <= 1e-3
        if low == 0.0 and high == 0.0:
            assert sum(pi[agents:]) <= tail  # nobody waits past 0 often enough
            continue

        def waiting(t: float, pi: list[float] = pi) -> float:
            return sum(p * answered_within(j, agents, mu, theta, t)[1] for j, p in enumerate(pi[agents:]))

        assert waiting(low) > tail - 1e-9
        assert waiting(high) < tail + 1e-9


def test_erlang_a_crossing_interval_holds_the_tails_crossing() -> None:
    """Over 300 random workloads the tail is above the share just before the interval and at or
    below it just after (the model's own tail, evaluated there)."""
    for work, agents, q in random_cases(13, 300, True):
        tail = 1.0 - q
        found = erlang_a_wait_crossing(work, agents, tail, 1e-3)
        assert found is not None
        low, high = found
        if high == 0.0:
            assert erlang_a_wait_exceeds(work, agents, 0.0) <= tail * (1 + 1e-12)
            continue
        assert erlang_a_wait_exceeds(work, agents, low * (1 - 1e-9) - 1e-9) > tail
        assert erlang_a_wait_exceeds(work, agents, high * (1 + 1e-9) + 1e-9) <= tail


def test_erlang_c_crossing_is_where_the_integrated_density_leaves_the_share() -> None:
    """Erlang C's closed-form crossing t: the waiting time's density, C·r·e^{−r·s} (r = (N − A)/AHT),
    integrated numerically (Simpson's rule) from t onwards leaves the share of arrivals asked for."""
    work = Workload(100 / 1800, 180.0)
    for agents in (11, 12, 14, 20):
        for tail in (0.1, 0.05, 0.01):
            t = erlang_c_wait_crossing(work, agents, tail)
            assert t is not None
            c = erlang_c_wait_exceeds(work, agents, 0.0)
            assert c is not None
            rate = (agents - work.load) / work.aht
            if c <= tail:
                assert t == 0.0
                continue
            end = t + 60.0 / rate  # e^−60: nothing left past it
            steps = 20_000
            width = (end - t) / steps

            def density(s: float, c: float = c, rate: float = rate) -> float:
                return c * rate * math.exp(-rate * s)

            inner = sum((4 if i % 2 else 2) * density(t + i * width) for i in range(1, steps))
            integral = width / 3 * (density(t) + inner + density(end))
            assert integral == pytest.approx(tail, rel=1e-9)


def counted_up(ok: Callable[[int], bool], start: int, limit: int) -> int | None:
    """The fewest agents passing ``ok``, counted up one by one from 0; None where the search as it
    was (from ``start``: start + 1, start + 3, start + 7, … up to ``limit``) would not reach it."""
    n = 0
    while not ok(n):
        n += 1
    if n <= start:
        return n
    last, step = start + 1, 1
    while last + 2 * step <= limit:
        step *= 2
        last += step
    return n if n <= last else None


def test_fewest_is_the_first_count_that_passes_wherever_it_starts() -> None:
    """Whatever the guess (none, right, a few off, far off, negative, past the limit), the search
    returns the first count that passes, or None exactly where the search from the agents there are
    found none up to the limit; and it looks at no more than two counts when the guess is right."""
    rng = random.Random(3)
    for _ in range(2000):
        answer = rng.choice([0, 1, 2, rng.randint(0, 60), rng.randint(0, 400)])
        start = rng.randint(0, 80)
        limit = rng.choice([50, 100, 1000])
        guess = rng.choice([None, answer, answer - 1, answer + 1, answer + rng.randint(-9, 9), -5, 10**6])
        looked: list[int] = []

        def ok(n: int, answer: int = answer, looked: list[int] = looked) -> bool:
            looked.append(n)
            return n >= answer

        def passes(n: int, answer: int = answer) -> bool:
            return n >= answer

        expected = counted_up(passes, start, limit)
        assert staffing.fewest(ok, start, guess, limit) == expected, (answer, start, limit, guess)
        if guess == answer and expected is not None and answer > 0:
            assert len(looked) == 2


def test_fewest_finds_the_agents_a_service_level_needs() -> None:
    """On Erlang A, the agents an 80 % service level needs, from a guess far off, are the count
    reached by adding one agent at a time."""
    work = Workload(400 / 3600, 180.0, 120.0)

    def ok(n: int) -> bool:
        return (evaluate(work, n, 20.0, asa=False).service_level or 0.0) >= 0.8

    n = 0
    while not ok(n):
        n += 1
    assert n > 20
    for guess in (None, 0, n - 7, n, n + 1, n + 30):
        assert staffing.fewest(ok, 14, guess) == n


def test_staffing_guess_moves_the_answer_with_the_load() -> None:
    """Square-root staffing: 14 agents at 10 Erlangs (β = 4/√10) become 10 + 4·√(40/10) ≈ 48 at 40."""
    assert staffing.staffing_guess(14, 10.0, 40.0) == 48
    assert staffing.staffing_guess(14, 10.0, 10.0) == 14
    assert staffing.staffing_guess(14, 0.0, 10.0) == 14


def plain_erlang_b(agents: int, load: float) -> float:
    """B(N, A) by the recursion, from B(0) = 1 each time."""
    b = 1.0
    for k in range(1, agents + 1):
        b = load * b / (k + load * b)
    return b


def test_erlang_b_read_off_the_kept_recursion_is_the_recursions_value() -> None:
    """Asked in any order (down, up, again, past the kept range, for 0 agents), B(N, A) equals the
    recursion run from B(0) each time, bit for bit."""
    rng = random.Random(9)
    loads = [rng.uniform(0.1, 80.0) for _ in range(20)]
    for _ in range(2000):
        load = rng.choice(loads)
        agents = rng.choice([0, 1, rng.randint(0, 120), rng.randint(0, 120), 10_050])
        assert erlang_b(agents, load) == plain_erlang_b(agents, load), (agents, load)


def decimal_answered_wait(a: float, x: float) -> Decimal:
    """log Σ_j t_j · a/(a+j+1) · Σ_{i≤j+1} 1/(a+i) (t_0 = 1, t_j = t_{j−1}·x/(a+j)) in 40 digits."""
    getcontext().prec = 40
    da, dx = Decimal(a), Decimal(x)
    t, harmonic = Decimal(1), 1 / (da + 1)
    total = best = da / (da + 1) * harmonic
    j = 0
    while True:
        j += 1
        t = t * dx / (da + j)
        harmonic += 1 / (da + j + 1)
        term = t * da / (da + j + 1) * harmonic
        total += term
        best = max(best, term)
        if j > dx - da and term < best * Decimal(-50).exp():
            return total.ln()


@pytest.mark.parametrize(
    ("a", "x"),
    [(30.0, 25.0), (10.9, 24.0), (11.0, 40.0), (0.05, 3.0), (42.0, 250.0), (490.0, 3150.0), (3.0, 0.02)],
)
def test_asa_series_agrees_with_forty_digit_arithmetic(a: float, x: float) -> None:
    """Erlang A's answered-wait series, summed in floats, is the exact sum to 1e-12 (relative)."""
    got = _log_answered_wait(a, x)
    assert abs(math.exp(Decimal(got) - decimal_answered_wait(a, x)) - 1) < 1e-12


def test_asa_series_keeps_huge_sums_finite() -> None:
    """At heavy overload (x = 50,000, a = 40) the terms pass any float; the sum's log stays finite
    and equals the decimal one."""
    got = _log_answered_wait(40.0, 50_000.0)
    assert math.isfinite(got) and got > 700
    assert got == pytest.approx(float(decimal_answered_wait(40.0, 50_000.0)), rel=1e-12)


@pytest.mark.parametrize("patience", [None, 120.0, 30.0])
def test_abandon_share_is_the_full_models(patience: float | None) -> None:
    """The abandon share a search reads equals the full model's p_abandon, bit for bit, at every
    agent count from none to idle (and None where Erlang C has no steady state)."""
    for per_hour in (0.0, 100.0, 400.0):
        work = Workload(per_hour / 3600, 180.0, patience)
        for agents in range(0, 30):
            if patience is None and agents == 0:
                continue
            assert staffing.abandon_share(work, agents) == evaluate(work, agents, 20.0).p_abandon


def test_the_full_model_is_the_light_one_with_its_asa() -> None:
    """The full Erlang A figures are the light ones (no ASA) with the ASA added (they share the
    chain's weights, worked out once)."""
    work = Workload(400 / 3600, 180.0, 120.0)
    light = erlang_a(work, 14, 20.0, asa=False)
    full = erlang_a(work, 14, 20.0)
    assert full.asa is not None
    assert dataclasses.replace(light, asa=full.asa) == full
