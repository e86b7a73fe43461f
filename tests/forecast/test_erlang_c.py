"""Erlang C against the textbook: 100 calls per 30 minutes, AHT 180 s, 14 agents, 20 s target."""

from __future__ import annotations

import math

import pytest

from cxmon.forecast import Workload, agents_needed, erlang_c
from cxmon.forecast.gamma import log_gamma_p
from tests.collectors.test_erlang import erlang_c as reference_c
from tests.collectors.test_erlang import erlang_service_level as reference_sl

TEXTBOOK = Workload(arrival_rate=100 / 1800, aht=180.0)
"""10 Erlangs."""


def test_textbook_vector() -> None:
    """14 agents: P(wait) 0.1741, service level 0.8884, ASA 7.84 s, occupancy 0.714."""
    f = erlang_c(TEXTBOOK, 14, 20.0)
    assert f.model == "erlang_c"
    assert f.p_wait == pytest.approx(0.1741, abs=5e-5)
    assert f.service_level == pytest.approx(0.8884, abs=5e-5)
    assert f.asa == pytest.approx(7.84, abs=5e-3)
    assert f.occupancy == pytest.approx(0.714, abs=5e-4)
    assert f.p_abandon == 0.0


def test_agents_needed_for_80_20_is_the_fewest_that_reach_it() -> None:
    """80/20 at 10 Erlangs needs 14 agents: 13 give 79.6 %, by the textbook formula as well."""
    assert agents_needed(TEXTBOOK, 20.0, 0.80) == 14
    assert reference_sl(13, 10.0, 180.0, 20.0) < 0.80 <= reference_sl(14, 10.0, 180.0, 20.0)


@pytest.mark.parametrize("goal", [0.5, 0.8, 0.9, 0.95, 0.99])
def test_agents_needed_matches_a_linear_search(goal: float) -> None:
    """At 480 Erlangs the answer is the first agent count, counted up one by one, reaching the goal."""
    work = Workload(arrival_rate=480 / 180, aht=180.0)
    n = 481
    while reference_sl(n, 480.0, 180.0, 20.0) < goal:
        n += 1
    assert agents_needed(work, 20.0, goal) == n


def test_large_centre_has_no_overflow() -> None:
    """5,000 agents on 4,900 Erlangs: the figure equals the reference recursion's, not inf or nan."""
    work = Workload(arrival_rate=4900 / 180, aht=180.0)
    f = erlang_c(work, 5000, 20.0)
    assert f.p_wait == pytest.approx(reference_c(5000, 4900.0), rel=1e-9)
    assert f.service_level is not None and 0.0 < f.service_level < 1.0


def test_overload_has_no_steady_state() -> None:
    """With the load at or above the agents Erlang C has no answer: the figures are None, not a number."""
    for agents in (8, 10):
        f = erlang_c(TEXTBOOK, agents, 20.0)
        assert not f.stable
        assert (f.p_wait, f.service_level, f.asa) == (None, None, None)


@pytest.mark.parametrize(("s", "y"), [(1, 0.5), (3, 2.0), (10, 25.0), (40, 40.0), (200, 180.0)])
def test_incomplete_gamma_matches_the_poisson_sum(s: int, y: float) -> None:
    """For whole s, P(s, y) = 1 − e^−y·Σ_{k<s} yᵏ/k! (the Poisson tail), computed here term by term."""
    term, head = math.exp(-y), 0.0
    for k in range(s):
        head += term
        term *= y / (k + 1)
    assert math.exp(log_gamma_p(s, y)) == pytest.approx(1.0 - head, rel=1e-10)


def test_incomplete_gamma_half_is_erf() -> None:
    """P(1/2, y) = erf(√y)."""
    for y in (0.01, 0.7, 3.0, 12.0):
        assert math.exp(log_gamma_p(0.5, y)) == pytest.approx(math.erf(math.sqrt(y)), rel=1e-12)


def test_incomplete_gamma_keeps_tiny_values_as_logarithms() -> None:
    """P(1000, 1) ≈ e^−1/1000! (about 10^−2568, far below the smallest float) stays finite as a log."""
    expected = -1.0 - math.lgamma(1001.0) + math.log1p(1.0 / 1001.0)
    assert log_gamma_p(1000.0, 1.0) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("s", "y"), [(math.nan, 1.0), (1.0, math.nan), (0.0, 1.0), (-2.0, 1.0), (1.0, -0.5)])
def test_incomplete_gamma_refuses_arguments_outside_its_domain(s: float, y: float) -> None:
    """s must be > 0 and y ≥ 0: a NaN, a shape ≤ 0 or a negative argument is a ValueError."""
    from cxmon.forecast.gamma import log_gamma_p_uncached

    with pytest.raises(ValueError, match="needs s > 0"):
        log_gamma_p_uncached(s, y)


def test_wait_quantile_is_the_closed_form() -> None:
    """Erlang C's p90 wait is AHT/(N − A)·ln(C/0.1) (to the bisection's 0.1 s), and 0 when C ≤ 0.1."""
    from cxmon.forecast.staffing import wait_quantile

    c = reference_c(12, 10.0)
    expected = 180.0 / 2 * math.log(c / 0.1)
    assert wait_quantile(TEXTBOOK, 12, 0.9) == pytest.approx(expected, abs=0.1)
    assert wait_quantile(TEXTBOOK, 16, 0.9) == 0.0
    assert wait_quantile(TEXTBOOK, 9, 0.9) is None
