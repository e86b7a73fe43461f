"""Erlang A against the M/M/N+M birth–death chain solved numerically (tests/forecast/reference.py)."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest

from cxmon.forecast import Workload, agents_needed, erlang_a, erlang_c, staffing
from cxmon.forecast.erlang_a import erlang_a_wait_exceeds
from cxmon.forecast.staffing import wait_quantile
from tests.forecast.reference import reference

# (arrivals per hour, AHT s, patience s, agents, target s)
CASES = [
    pytest.param(200.0, 180.0, 120.0, 14, 20.0, id="light-10E-on-14"),
    pytest.param(280.0, 180.0, 120.0, 14, 20.0, id="critical-14E-on-14"),
    pytest.param(400.0, 180.0, 120.0, 14, 20.0, id="overload-20E-on-14"),
    pytest.param(600.0, 240.0, 60.0, 20, 30.0, id="overload-40E-on-20-impatient"),
    pytest.param(2400.0, 180.0, 300.0, 125, 20.0, id="large-120E-on-125"),
    pytest.param(60.0, 300.0, 600.0, 3, 60.0, id="small-5E-on-3-patient"),
]


@pytest.mark.parametrize(("per_hour", "aht", "patience", "agents", "target"), CASES)
def test_figures_match_the_birth_death_chain(
    per_hour: float, aht: float, patience: float, agents: int, target: float
) -> None:
    """P(wait), P(abandon), service level, ASA of answered and occupancy equal the chain's to 1e-6."""
    got = erlang_a(Workload(per_hour / 3600, aht, patience), agents, target)
    ref = reference(per_hour / 3600, aht, patience, agents, target)
    assert got.model == "erlang_a"
    assert got.p_wait == pytest.approx(ref.p_wait, abs=1e-6)
    assert got.p_abandon == pytest.approx(ref.p_abandon, abs=1e-6)
    assert got.service_level == pytest.approx(ref.service_level, abs=1e-6)
    assert got.asa == pytest.approx(ref.asa, rel=1e-6)
    assert got.occupancy == pytest.approx(ref.occupancy, abs=1e-6)


@pytest.mark.parametrize(("per_hour", "aht", "patience", "agents", "target"), CASES)
def test_wait_tail_matches_the_birth_death_chain(
    per_hour: float, aht: float, patience: float, agents: int, target: float
) -> None:
    """P(wait > target) (neither answered nor gone by then) equals the chain's to 1e-6."""
    work = Workload(per_hour / 3600, aht, patience)
    ref = reference(per_hour / 3600, aht, patience, agents, target)
    assert erlang_a_wait_exceeds(work, agents, target) == pytest.approx(ref.wait_beyond, abs=1e-6)


def test_wait_quantile_inverts_the_tail() -> None:
    """The p90 wait is where P(wait > t) falls to 10 %: just above it the tail is below, just under above."""
    work = Workload(400 / 3600, 180.0, 120.0)
    p90 = wait_quantile(work, 14, 0.9)
    assert p90 is not None and p90 > 10.0
    assert erlang_a_wait_exceeds(work, 14, p90) <= 0.1 < erlang_a_wait_exceeds(work, 14, p90 - 0.2)


def test_overload_has_an_answer_where_erlang_c_has_none() -> None:
    """At 20 Erlangs on 14 agents Erlang C has no steady state; Erlang A loses about 1 − 14/20 of
    the arrivals (less, since some are answered before their patience runs out)."""
    work = Workload(400 / 3600, 180.0, 120.0)
    assert not erlang_c(work, 14, 20.0).stable
    f = erlang_a(work, 14, 20.0)
    assert f.p_abandon is not None and 0.25 < f.p_abandon < 0.35
    assert f.occupancy is not None and f.occupancy > 0.95


def test_endless_patience_is_erlang_c() -> None:
    """With patience a million times the handle time, Erlang A's figures are Erlang C's."""
    c = erlang_c(Workload(100 / 1800, 180.0), 14, 20.0)
    a = erlang_a(Workload(100 / 1800, 180.0, 180e6), 14, 20.0)
    assert a.p_wait == pytest.approx(c.p_wait, rel=1e-5)
    assert a.service_level == pytest.approx(c.service_level, rel=1e-5)
    assert a.asa == pytest.approx(c.asa, rel=1e-4)
    assert a.p_abandon == pytest.approx(0.0, abs=1e-5)


def test_heavy_overload_at_large_scale_stays_finite() -> None:
    """10× overload on 1,000 agents: abandonment is 1 − 1000/10000 = 0.9 and nothing is nan or inf."""
    f = erlang_a(Workload(10000 / 180, 180.0, 600.0), 1000, 20.0)
    values = [f.p_wait, f.p_abandon, f.service_level, f.asa, f.occupancy]
    assert all(v is not None and math.isfinite(v) for v in values)
    assert f.p_abandon == pytest.approx(0.9, abs=1e-3)


def test_agents_needed_is_the_first_count_that_reaches_the_goal() -> None:
    """Counting up one agent at a time from zero finds the same answer as the search."""
    work = Workload(400 / 3600, 180.0, 120.0)
    n = 0
    while (erlang_a(work, n, 20.0).service_level or 0.0) < 0.8:
        n += 1
    assert agents_needed(work, 20.0, 0.8) == n
    assert n > 20


def test_nobody_to_answer() -> None:
    """With no agents every arrival waits and abandons, and the service level is 0."""
    f = erlang_a(Workload(0.1, 180.0, 60.0), 0, 20.0)
    assert (f.p_wait, f.p_abandon, f.service_level, f.asa) == (1.0, 1.0, 0.0, None)


@pytest.mark.parametrize(("per_hour", "aht", "patience", "agents", "target"), CASES)
def test_leaving_the_asa_out_changes_no_other_figure(
    per_hour: float, aht: float, patience: float, agents: int, target: float
) -> None:
    """Without its ASA (what a search for the agents needed asks for), Erlang A gives every other
    figure exactly as the full model does, and no ASA."""
    work = Workload(per_hour / 3600, aht, patience)
    full = erlang_a(work, agents, target)
    light = erlang_a(work, agents, target, asa=False)
    assert light.asa is None
    assert dataclasses.replace(light, asa=full.asa) == full


def test_the_service_level_alone_is_the_full_models_to_the_bit() -> None:
    """The service level worked out alone (what a search for the agents a service level needs
    reads) is, to the last bit, the full model's, over random workloads and agent counts from none
    to well past the load, target 0 and the edge of nobody waiting included."""
    rng = random.Random(10)
    for _ in range(2_000):
        work = Workload(rng.uniform(0.0, 2.0) if rng.random() > 0.02 else 0.0, rng.uniform(20.0, 900.0),
                        rng.uniform(5.0, 1_200.0))  # fmt: skip
        agents = rng.randrange(0, int(work.load * 2) + 3)
        target = rng.choice((0.0, rng.uniform(1.0, 120.0)))
        assert staffing.service_level(work, agents, target) == erlang_a(work, agents, target).service_level
        patient = Workload(work.arrival_rate, work.aht)
        assert (
            staffing.service_level(patient, agents, target) == erlang_c(patient, agents, target).service_level
        )
