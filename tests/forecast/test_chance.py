"""The chance that a window's service level breaches within the horizon, and the WATCH it gives."""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import random

import pytest

from cxmon.detector import Detector
from cxmon.forecast import Workload, staffing
from cxmon.forecast.live import CHANCE_DISPERSION, Forecaster
from cxmon.forecast.metrics import breach_etas
from cxmon.forecast.options import parse_forecast
from cxmon.noise import chance_reached, window_breach_chance, window_breach_outlook
from cxmon.snapshot import State
from tests.forecast.test_live import CONFIG, KEY, SL, FakeSeries, feed, sl_of

WINDOW = 300.0
HORIZON = 600.0
LOOK_EVERY = 10.0
"""The detector judges a window every tick: a breach is a look at which it is past the line."""


def _window_breaches(outcomes: list[tuple[float, int, int]], line: float, least: int) -> bool:
    """Whether a sliding window over (time, contacts, good ones), looked at every LOOK_EVERY from 0
    to HORIZON, is ever below ``line`` with at least ``least`` contacts in it."""
    times = [o[0] for o in outcomes]
    counted, good = [0], [0]
    for _, n, g in outcomes:
        counted.append(counted[-1] + n)
        good.append(good[-1] + g)
    at = 0.0
    while at <= HORIZON:
        i, j = bisect.bisect_right(times, at - WINDOW), bisect.bisect_right(times, at)
        n = counted[j] - counted[i]
        if n >= least and (good[j] - good[i]) / n < line:
            return True
        at += LOOK_EVERY
    return False


def _clustered_window(per_minute: float, share: float, cluster: int, runs: int, seed: int) -> float:
    """Brute force: contacts come in Poisson clusters of ``cluster`` that share one outcome (good
    with probability ``share``), so a window's share has ``cluster`` times the binomial variance;
    the share of runs whose window (full at the start) is below 80 % at some look."""
    rng = random.Random(seed)
    hits = 0
    for _ in range(runs):
        outcomes = []
        t = -WINDOW
        while True:
            t += rng.expovariate(per_minute / 60.0 / cluster)
            if t > HORIZON:
                break
            outcomes.append((t, cluster, cluster if rng.random() < share else 0))
        hits += _window_breaches(outcomes, 0.8, 1)
    return hits / runs


@pytest.mark.parametrize(
    ("per_minute", "share", "cluster"),
    [(12.0, 0.92, 3), (8.0, 0.9, 3), (8.0, 0.95, 6), (20.0, 0.88, 6), (30.0, 0.87, 2)],
)
def test_the_chance_of_a_breach_is_a_simulated_windows(per_minute: float, share: float, cluster: int) -> None:
    """The chance that a 5-minute window whose contacts meet the mark with a known probability and
    dispersion dips under 80 % at some look within 10 minutes is, within 0.1, the share of 3,000
    simulated windows that do (outcomes in Poisson clusters sharing one outcome: dispersion = the
    cluster's size; chances from 25 % to 65 %)."""
    start, growth = window_breach_outlook(
        share, per_minute * WINDOW / 60.0, float(cluster), 0.8, "below", WINDOW
    )
    estimate = window_breach_chance(start, growth, HORIZON)
    simulated = _clustered_window(per_minute, share, cluster, 3000, seed=cluster * 1000 + int(per_minute))
    assert 0.2 < simulated < 0.7
    assert estimate == pytest.approx(simulated, abs=0.1)


def _mmn_window(per_minute: float, aht: float, patience: float, agents: int, runs: int, seed: int) -> float:
    """Brute force: an M/M/N+M queue served first come first served, run an hour to its steady
    state, then the share of runs whose 5-minute service level (answered within 20 s over answered
    and abandoned, by the time they left the queue) is under 80 % over at least 5 contacts at some
    look within 10 minutes."""
    rng = random.Random(seed)
    hits = 0
    warm = 3600.0
    for _ in range(runs):
        free = [0.0] * agents  # when each agent is next free (served in arrival order)
        outcomes = []
        t = 0.0
        while True:
            t += rng.expovariate(per_minute / 60.0)
            if t > warm + HORIZON:
                break
            wait = max(0.0, free[0] - t)
            gives_up = rng.expovariate(1.0 / patience)
            if wait > gives_up:
                outcomes.append((t + gives_up - warm, 1, 0))
                continue
            heapq.heapreplace(free, t + wait + rng.expovariate(1.0 / aht))
            outcomes.append((t + wait - warm, 1, 1 if wait <= 20.0 else 0))
        outcomes.sort()
        hits += _window_breaches(outcomes, 0.8, 5)
    return hits / runs


@pytest.mark.parametrize(("agents", "seed"), [(22, 1), (21, 2)])
def test_the_chance_in_a_queue_is_within_a_factor_of_two_of_a_simulated_queues(
    agents: int, seed: int
) -> None:
    """Where a lost agent or two leaves a queue of 3.5 calls a minute (4m20s calls, patience 10
    minutes) short of a steady-state breach, the chance the forecast gives (Erlang A's service level,
    CHANCE_DISPERSION) is within a factor of two of the share of 1,500 simulated runs of the queue
    whose 5-minute window dips under 80 % within 10 minutes."""
    per_minute, aht, patience = 3.5, 260.0, 600.0
    work = Workload(per_minute / 60.0, aht, patience)
    share = staffing.service_level(work, agents, 20.0)
    assert share is not None and share > 0.9
    outlook = window_breach_outlook(
        share, per_minute * WINDOW / 60.0, CHANCE_DISPERSION, 0.8, "below", WINDOW
    )
    estimate = window_breach_chance(*outlook, HORIZON)
    simulated = _mmn_window(per_minute, aht, patience, agents, 1500, seed)
    assert 0.05 < simulated < 0.5
    assert simulated / 2.0 <= estimate <= 2.0 * simulated


def test_a_well_staffed_queue_has_no_chance_to_speak_of() -> None:
    """The same queue with 27 agents: the forecast's chance is under 1 %, and so is the simulated
    queue's."""
    work = Workload(3.5 / 60.0, 260.0, 600.0)
    share = staffing.service_level(work, 27, 20.0)
    assert share is not None
    outlook = window_breach_outlook(share, 17.5, CHANCE_DISPERSION, 0.8, "below", WINDOW)
    assert window_breach_chance(*outlook, HORIZON) < 0.01
    assert _mmn_window(3.5, 260.0, 600.0, 27, 600, 3) < 0.01


@pytest.mark.parametrize("level", [0.01, 0.05, 0.3])
def test_the_chance_reaches_its_level_when_chance_reached_says(level: float) -> None:
    """How far ahead the chance reaches a level is where the chance within that time is the level
    (0 when it is past it at the start; never when the share is certain)."""
    outlook = window_breach_outlook(0.95, 20.0, 2.5, 0.8, "below", WINDOW)
    ahead = chance_reached(*outlook, level)
    assert ahead is not None
    assert window_breach_chance(*outlook, ahead) == pytest.approx(max(level, outlook[0]))
    assert chance_reached(outlook[0], outlook[1], outlook[0] / 2) == 0.0
    assert chance_reached(*window_breach_outlook(1.0, 20.0, 2.5, 0.8, "below", WINDOW), level) is None


def test_a_share_past_the_line_is_a_sure_breach_and_no_outcomes_none() -> None:
    """A share the model puts past the breach breaches for sure; a window with no contacts, never."""
    assert window_breach_chance(*window_breach_outlook(0.7, 20.0, 2.5, 0.8, "below", WINDOW), 0.0) == 1.0
    assert window_breach_chance(*window_breach_outlook(0.3, 20.0, 2.5, 0.2, "above", WINDOW), 0.0) == 1.0
    assert window_breach_chance(*window_breach_outlook(0.95, 0.0, 2.5, 0.8, "below", WINDOW), HORIZON) == 0.0


def _lose_agents(level: float | None, left: int) -> Forecaster:
    """Forty minutes of 210 calls an hour handled in 4m20s on 27 agents, then ``left`` agents; the
    forecaster asks for the chance of a breach at ``level`` (None: the default)."""
    config = CONFIG
    if level is not None:
        options, problems = parse_forecast({"breach_chance": level})
        assert problems == []
        config = dataclasses.replace(CONFIG, forecast=options)
    forecaster = Forecaster(config)
    series = FakeSeries(agents_staffed=27)
    t = feed(series, forecaster, per_hour=210.0, aht=260.0, minutes=40, config=config)
    series.agents_staffed = left
    feed(series, forecaster, per_hour=210.0, aht=260.0, minutes=1, t0=t, config=config)
    return forecaster


def test_agents_lost_short_of_a_steady_breach_are_watch_on_the_chance_of_one() -> None:
    """21 of 27 agents left: the steady state at the confident rate, even a window's spread below
    it, stays above 80 %, so no breach is projected; but the chance that the 5-minute window dips
    under 80 % within the 10-minute horizon is past the 1 % asked for: WATCH, saying so. Not asked
    (0), the same forecast leaves the rule OK."""
    forecaster = _lose_agents(None, 21)
    p = sl_of(forecaster)
    assert not p.breaches and p.sure > 0.8
    assert 0.05 <= p.chance < 0.5
    verdict = Detector(CONFIG).judge_rule(KEY, 0, SL, 1.0, p.computed, p)
    assert verdict.state is State.WATCH
    odds = round(1 / p.chance)
    assert verdict.reason == (
        f"service level 80% at risk: 1 in {odds} chance of a breach within 10m, 21 agents"
    )
    off = sl_of(_lose_agents(0.0, 21))
    assert off.chance_level == 0.0
    assert Detector(CONFIG).judge_rule(KEY, 0, SL, 1.0, off.computed, off).state is State.OK


def test_agents_the_queue_can_spare_are_no_chance_of_a_breach() -> None:
    """24 of 27 agents left: the chance of a breach within the horizon is under 1 %: OK."""
    p = sl_of(_lose_agents(None, 24))
    assert p.chance < 0.01
    assert Detector(CONFIG).judge_rule(KEY, 0, SL, 1.0, p.computed, p).state is State.OK


def test_a_chance_of_a_breach_is_no_time_to_breach_on_the_gauge() -> None:
    """21 of 27 agents left: the chance of a breach makes the rule WATCH (it has a time to WATCH),
    but nothing projects the window past its breach, so `cxmon_forecast_breach_eta_seconds` (the
    seconds until a projected crossing) has no sample for it, where 0 would read "breaching now"."""
    forecaster = _lose_agents(None, 21)
    p = sl_of(forecaster)
    assert p.eta(1.0) is not None
    assert p.crossing(1.0) is None
    values: dict[tuple[str, float], float | None] = {
        (q.measure, q.window): 1.0 for q in forecaster.latest[KEY].projections
    }
    assert [m for m, _, _ in breach_etas(forecaster.latest[KEY], values)] == []
