"""The live forecast: estimates from a series' running totals, projections, time to breach, WATCH."""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from cxmon.config import Config, Threshold
from cxmon.detector import Detector
from cxmon.forecast import Workload, agents_needed, evaluate
from cxmon.forecast.breach import Projection
from cxmon.forecast.live import MODELLED, Forecaster
from cxmon.forecast.options import parse_forecast
from cxmon.forecast.result import Forecast
from cxmon.forecast.threshold_agents import BREAKING_PRECISION, breaking_rate, wait_quantile
from cxmon.snapshot import TOTALS, State
from tests.helpers import one_step_config

KEY = ("help", "voice", "q1")
SL = Threshold(
    measure="service_level", window=60.0, breach=0.8, warn=0.85, direction="below", for_=60.0, clear=0.83
)
CONFIG = one_step_config(
    """
  [[journey.steps.thresholds]]
  measure = "service_level"
  window = "5m"
  warn = "85%"
  breach = "80%"
  clear = "83%"
  direction = "below"
  for = "1m"
"""
)


@dataclass
class FakeSeries:
    """Running totals as cxmon.windows.Series keeps them."""

    totals: list[int] = field(default_factory=lambda: [0] * len(TOTALS))
    wait_hist_sum: float = 0.0
    res_hist: list[int] = field(default_factory=lambda: [0])
    res_hist_sum: float = 0.0
    agents_staffed: int | None = None
    waiting: dict[str, float] = field(default_factory=dict)


def feed(
    series: FakeSeries,
    forecaster: Forecaster,
    *,
    per_hour: float,
    aht: float,
    minutes: float,
    t0: float = 0.0,
    config: Config = CONFIG,
) -> float:
    """Ten-second steps of steady traffic (every arrival handled in ``aht``); returns the end time."""
    step = config.step("help")
    t = t0
    carry = 0.0
    while t < t0 + minutes * 60:
        t += 10.0
        carry += per_hour / 360.0
        arrivals, carry = int(carry), carry - int(carry)
        series.totals[TOTALS.index("offered")] += arrivals
        series.totals[TOTALS.index("answered")] += arrivals
        series.res_hist[0] += arrivals
        series.res_hist_sum += arrivals * aht
        forecaster.observe(KEY, step, series, t)
    return t


def test_estimates_come_from_the_running_totals() -> None:
    """After 40 minutes of 200 contacts an hour handled in 3 minutes on 14 agents, the forecast has
    that rate and handle time, Erlang C (nobody abandons) and the calculator's own figures."""
    forecaster = Forecaster(CONFIG)
    series = FakeSeries(agents_staffed=14)
    feed(series, forecaster, per_hour=200.0, aht=180.0, minutes=40)
    f = forecaster.latest[KEY]
    assert f.arrival_rate is not None and f.arrival_rate * 3600 == pytest.approx(200.0, rel=0.02)
    assert f.aht == pytest.approx(180.0)
    assert f.model == "erlang_c" and f.patience is None
    expected = evaluate(Workload(f.arrival_rate, 180.0), 14, 20.0)
    assert f.figures == expected
    assert f.agents_needed == agents_needed(Workload(f.arrival_rate, 180.0), 20.0, 0.8)
    assert f.minute_figures()["forecast_service_level"] == expected.service_level
    assert f.minute_figures()["forecast_agents"] == 14.0


def test_patience_is_estimated_from_abandons_and_waiting_time() -> None:
    """Abandons ÷ time spent waiting is the exponential patience; with enough abandons, Erlang A."""
    forecaster = Forecaster(CONFIG)
    series = FakeSeries(agents_staffed=14)
    t = feed(series, forecaster, per_hour=200.0, aht=180.0, minutes=20)
    series.totals[TOTALS.index("abandoned")] += 10
    series.wait_hist_sum += 10 * 120.0  # ten abandons among contacts who waited 1,200 s in all
    feed(series, forecaster, per_hour=200.0, aht=180.0, minutes=1, t0=t)
    f = forecaster.latest[KEY]
    assert f.model == "erlang_a"
    assert f.patience == pytest.approx(120.0)


def test_no_staffing_figures_means_no_forecast_unless_configured() -> None:
    """Without staffing events the forecast says so; `[forecast] agents` fills in for the queue."""
    forecaster = Forecaster(CONFIG)
    feed(FakeSeries(), forecaster, per_hour=200.0, aht=180.0, minutes=12)
    assert forecaster.latest[KEY].figures is None
    assert forecaster.latest[KEY].note == "no staffing figures"

    options, problems = parse_forecast({"agents": {"q1": 16}})
    assert problems == []
    configured = Forecaster(dataclasses.replace(CONFIG, forecast=options))
    feed(FakeSeries(), configured, per_hour=200.0, aht=180.0, minutes=12)
    f = configured.latest[KEY]
    assert (f.agents, f.agents_from, f.model) == (16, "config", "erlang_c")


def test_answered_only_projects_the_share_of_the_answered_contacts() -> None:
    """Under the ``answered_only`` formula a window's service level counts answered contacts only, so
    the projection is the model's share of them answered within the target, not of all arrivals:
    480 calls an hour of 4 minutes with a 2-minute patience on 32 agents answer about 81 % of the
    answered ones within 20 s (75 % of all arrivals), and the agents needed are the fewest whose
    answered contacts make 80/20."""
    monitor = dataclasses.replace(CONFIG.monitor, service_level_formula="answered_only")
    config = dataclasses.replace(CONFIG, monitor=monitor)
    forecaster = Forecaster(config)
    series = FakeSeries(agents_staffed=32)
    t = feed(series, forecaster, per_hour=480.0, aht=240.0, minutes=40, config=config)
    series.totals[TOTALS.index("abandoned")] += 10
    series.wait_hist_sum += 10 * 120.0
    feed(series, forecaster, per_hour=480.0, aht=240.0, minutes=1, t0=t, config=config)
    f = forecaster.latest[KEY]
    assert f.model == "erlang_a" and f.arrival_rate is not None and f.patience is not None
    work = Workload(f.arrival_rate, 240.0, f.patience)

    def answered_share(n: int) -> float:
        fig = evaluate(work, n, 20.0)
        assert fig.service_level is not None and fig.p_abandon is not None
        return fig.service_level / (1.0 - fig.p_abandon)

    p = sl_of(forecaster)
    assert p.projected == pytest.approx(answered_share(32), rel=1e-12)
    assert p.projected > 0.8 > (evaluate(work, 32, 20.0).service_level or 0.0)
    assert f.agents_needed == next(n for n in range(1, 100) if answered_share(n) >= 0.8)


def test_losing_agents_projects_the_breach_with_the_agents_needed() -> None:
    """10 Erlangs on 15 agents is fine; on 11 the service level is projected below 80 % (Erlang C at the
    measured rate), and the projection names the agents the calculator says 80/20 needs."""
    forecaster = Forecaster(CONFIG)
    series = FakeSeries(agents_staffed=15)
    t = feed(series, forecaster, per_hour=200.0, aht=180.0, minutes=40)
    before = sl_of(forecaster)
    assert not before.breaches
    series.agents_staffed = 11
    feed(series, forecaster, per_hour=200.0, aht=180.0, minutes=1, t0=t)
    after = sl_of(forecaster)
    assert after.breaches
    f = forecaster.latest[KEY]
    assert f.arrival_rate is not None
    work = Workload(f.arrival_rate, 180.0)
    assert after.agents == 11 and after.agents_needed == agents_needed(work, 20.0, 0.8) >= 13
    assert after.projected == pytest.approx(evaluate(work, 11, 20.0).service_level)


def test_agents_lost_in_a_lull_are_judged_by_the_hours_load() -> None:
    """40 minutes at 240 calls an hour, then a 20-minute lull at 120, then 12 agents are left: at the
    hour's load (10 Erlangs; Erlang C gives a service level of 64 %) the projection breaches at
    once, though the last half hour alone (160 an hour) would let 12 agents cope."""
    forecaster = Forecaster(CONFIG)
    series = FakeSeries(agents_staffed=40)
    t = feed(series, forecaster, per_hour=240, aht=180, minutes=40)
    t = feed(series, forecaster, per_hour=120, aht=180, minutes=20, t0=t)
    series.agents_staffed = 12
    f = forecaster.observe(KEY, CONFIG.step("help"), series, t + 10)
    assert f is not None and f.sure_rate is not None
    assert f.sure_rate * 3600 == pytest.approx(200 - math.sqrt(200), abs=2)
    assert evaluate(Workload(200 / 3600, 180), 12, 20).service_level == pytest.approx(0.64, abs=0.01)
    (five,) = [p for p in f.projections if p.window == 300.0]
    assert five.breaches


def test_a_burst_is_projected_from_the_queue_it_leaves_not_from_its_rate() -> None:
    """Two minutes at four times the rate on a well-staffed queue: the measured rate alone would
    breach, the confident rate does not, and no breach is projected from the steady state; nor once
    three contacts are waiting. They are the queue's state, and where they take the window is
    projected from them: the 5-minute window, at 95 %, crosses 80 % about a minute on."""
    forecaster = Forecaster(CONFIG)
    series = FakeSeries(agents_staffed=14)
    t = feed(series, forecaster, per_hour=150.0, aht=180.0, minutes=40)
    t = feed(series, forecaster, per_hour=600.0, aht=180.0, minutes=2, t0=t)
    p = sl_of(forecaster)
    assert p.worse(p.projected, p.breach)  # the measured rate says breach ...
    assert not p.breaches and p.exits is None  # ... but it is not sure, and the queue is empty
    series.waiting = {f"c{i}": t - 5.0 * i for i in range(3)}
    feed(series, forecaster, per_hour=150.0, aht=180.0, minutes=1 / 6, t0=t)
    p = sl_of(forecaster)
    assert p.worse(p.projected, p.breach) and not p.breaches
    crossing = p.crossing(0.95)
    assert crossing is not None and 30.0 < crossing < 120.0


def test_a_surge_is_projected_at_the_rate_since_it_began() -> None:
    """An hour at 480 calls an hour on 50 agents (4-minute calls, 32 Erlangs), then 16 minutes at
    ×1.6: no span's confident bound comes near a breach (the best, over 10 minutes, is ×1.25), but
    the arrivals surely rose at 01:00, and at the rate since then (51 Erlangs on 50 agents) the
    service level is projected to breach: WATCH, saying what the projection rests on."""
    config = dataclasses.replace(CONFIG, display_timezone="UTC")
    forecaster = Forecaster(config)
    series = FakeSeries(agents_staffed=50)
    t = feed(series, forecaster, per_hour=480.0, aht=240.0, minutes=60)
    assert not sl_of(forecaster).breaches
    feed(series, forecaster, per_hour=768.0, aht=240.0, minutes=16, t0=t)
    f = forecaster.latest[KEY]
    assert f.sure_rate is not None and f.sure_rate * 3600 == pytest.approx(768.0, rel=0.02)
    p = sl_of(forecaster)
    assert p.breaches
    verdict = Detector(config).judge_rule(KEY, 0, SL, 0.95, f.ts, p)
    assert verdict.state is State.WATCH
    assert verdict.reason.endswith("; arrivals 1.6× usual since 01:00")


@pytest.mark.parametrize("score", [0.0, 10.0])
def test_arrivals_past_the_rate_the_agents_break_at_are_projected_at_their_rate(score: float) -> None:
    """An hour at 480 calls an hour on 50 agents (4-minute calls), then 14 minutes at ×1.5: the
    two-sample test has not yet found the rise, but tested against the rate at which these agents
    breach (about ×1.4) the arrivals are surely at it, and at the rate since
    the service level is projected to breach: WATCH, saying so. Without the test (score 0), no
    breach is projected."""
    config = dataclasses.replace(CONFIG, display_timezone="UTC")
    options = dataclasses.replace(config.forecast, breaking_score=score, breaking_tolerance=0.0)
    forecaster = Forecaster(dataclasses.replace(config, forecast=options))
    series = FakeSeries(agents_staffed=50)
    t = feed(series, forecaster, per_hour=480.0, aht=240.0, minutes=60)
    feed(series, forecaster, per_hour=720.0, aht=240.0, minutes=14, t0=t)
    f = forecaster.latest[KEY]
    p = sl_of(forecaster)
    if score == 0.0:
        assert not p.breaches and p.rests_on == ""
        return
    assert f.sure_rate is not None and f.sure_rate * 3600 == pytest.approx(720.0, rel=0.02)
    assert p.breaches
    verdict = Detector(config).judge_rule(KEY, 0, SL, 0.95, f.ts, p)
    assert verdict.state is State.WATCH
    assert verdict.reason.endswith("; arrivals 1.5× usual since 01:00, past the 1.4× that breaches")


def test_arrivals_a_little_under_the_breaking_rate_are_projected_at_their_rate() -> None:
    """An hour at 480 calls an hour on 50 agents (4-minute calls), then 22 minutes at ×1.36, a
    little under the rate these agents breach at: the evidence for that rate over the usual one is
    past the default score, so the forecast projects at the rate since (where a window's spread
    breaches): WATCH, saying the arrivals are near the rate that breaches."""
    config = dataclasses.replace(CONFIG, display_timezone="UTC")
    options = dataclasses.replace(config.forecast, breaking_tolerance=0.0)
    config = dataclasses.replace(config, forecast=options)
    forecaster = Forecaster(config)
    series = FakeSeries(agents_staffed=50)
    t = feed(series, forecaster, per_hour=480.0, aht=240.0, minutes=60, config=config)
    feed(series, forecaster, per_hour=480.0 * 1.36, aht=240.0, minutes=22, t0=t, config=config)
    f = forecaster.latest[KEY]
    assert f.sure_rate is not None and f.sure_rate * 3600 == pytest.approx(480.0 * 1.36, rel=0.01)
    p = sl_of(forecaster)
    verdict = Detector(config).judge_rule(KEY, 0, SL, 0.95, f.ts, p)
    assert verdict.state is State.WATCH
    near = re.search(
        r"; arrivals 1\.36× usual since 01:00, near the (1\.\d\d)× that breaches$", verdict.reason
    )
    assert near is not None and float(near.group(1)) > 1.36


@pytest.mark.parametrize(("patience", "agents"), [(None, 50), (120.0, 50), (180.0, 34), (None, 14)])
def test_the_breaking_rate_is_the_lowest_rate_a_scan_finds_breaching(
    patience: float | None, agents: int
) -> None:
    """The breaking rate is where a scan of arrival rates in steps of 0.1 % first finds a threshold's
    steady-state value past its breach (the service level or the wait p90 the model gives)."""
    step = CONFIG.step("help")
    thresholds = [th for th in step.thresholds if th.measure in MODELLED]
    aht, target = 240.0, step.service_level_target
    model = "erlang_c" if patience is None else "erlang_a"

    def breaches(rate: float) -> bool:
        work = Workload(rate, aht, patience)
        figures = evaluate(work, agents, target)
        sl = figures.service_level if figures.service_level is not None else 0.0
        for th in thresholds:
            if th.measure == "service_level":
                if sl < th.breach:
                    return True
            else:
                p90 = wait_quantile(work, agents, 0.9)
                if p90 is None or p90 > th.breach:
                    return True
        return False

    floor = 0.5 * agents / aht
    rate = floor
    while not breaches(rate):
        rate *= 1.001
    got = breaking_rate(thresholds, aht, patience, agents, target, model, floor)
    assert got is not None
    assert got == pytest.approx(rate, rel=BREAKING_PRECISION + 0.001)
    assert breaches(got)


def sl_of(forecaster: Forecaster) -> Projection:
    """The service-level projection of the one series."""
    return next(p for p in forecaster.latest[KEY].projections if p.measure == "service_level")


def projection(projected: float, *, sure: float | None = None, window: float = 300.0) -> Projection:
    return Projection(
        measure="service_level",
        window=window,
        breach=0.8,
        direction="below",
        projected=projected,
        sure=projected if sure is None else sure,
        agents=14,
        agents_needed=17,
        model="erlang_c",
    )


def test_time_to_breach_is_the_share_of_the_window_still_to_turn_over() -> None:
    """From 95 % towards a projected 65 % the window crosses 80 % after half of it; already past, now;
    not projected past, never."""
    assert projection(0.65).eta(0.95) == pytest.approx(150.0)
    assert projection(0.65).eta(0.79) == 0.0
    assert projection(0.85).eta(0.95) is None
    assert projection(-math.inf).eta(0.95) == 0.0


def test_reason_names_the_staffing() -> None:
    """The WATCH reason says what, when, and the agents staffed and needed."""
    assert projection(0.6).reason(360.0) == "service level projected below 80% in ~6m: 14 agents, need 17"


def test_a_steady_state_breach_names_when_the_window_crosses_not_now() -> None:
    """A steady state past the breach is also a certain chance of one (as the forecaster builds it,
    with the chance asked for): the rule turns WATCH at once, but its reason names the crossing —
    from 95 % towards 50 % the 5-minute window is at 80 % after a third of it —, not "now", as
    cxmon_forecast_breach_eta_seconds says."""
    p = dataclasses.replace(projection(0.5), risk=(1.0, 0.0), chance_level=0.01, horizon=600.0)
    verdict = Detector(CONFIG).judge_rule(KEY, 0, SL, 0.95, 0.0, p)
    assert verdict.state is State.WATCH
    assert p.crossing(0.95) == pytest.approx(100.0)
    assert verdict.reason == "service level projected below 80% in ~1m40s: 14 agents, need 17"


def test_projected_breach_inside_the_horizon_is_watch() -> None:
    """A rule whose value is healthy turns WATCH on a projection, with the projection's reason; the same
    values without a projection stay OK."""
    det = Detector(CONFIG)
    verdict = det.judge_rule(KEY, 0, SL, 0.95, 0.0, projection(0.6))
    assert verdict.state is State.WATCH
    assert verdict.reason.startswith("service level projected below 80%")
    assert Detector(CONFIG).judge_rule(KEY, 0, SL, 0.95, 0.0, None).state is State.OK


def test_a_projected_breach_stays_watch_while_the_window_has_too_few_contacts() -> None:
    """A WATCH on a projection holds through ticks whose window has too few contacts to judge (a
    quiet spell after agents left); without a projection those ticks are OK, as before."""
    det = Detector(CONFIG)
    assert det.judge_rule(KEY, 0, SL, 0.95, 0.0, projection(0.6)).state is State.WATCH
    verdict = det.judge_rule(KEY, 0, SL, None, 10.0, projection(0.6))
    assert verdict.state is State.WATCH
    assert verdict.reason.startswith("service level projected below 80%")
    quiet = Detector(CONFIG)
    assert quiet.judge_rule(KEY, 0, SL, None, 10.0, None).state is State.OK
    assert quiet.judge_rule(KEY, 0, SL, None, 20.0, projection(0.9)).state is State.OK


def test_noise_in_a_quiet_hour_never_projects_a_breach() -> None:
    """Eight hours of Poisson arrivals (200 an hour, ±15 % over the hour) on 18 agents, handled in 3 minutes,
    nobody waiting: no projection ever breaches."""
    rng = random.Random(5)
    forecaster = Forecaster(CONFIG)
    series = FakeSeries(agents_staffed=18)
    step = CONFIG.step("help")
    t = 0.0
    breaches = 0
    while t < 8 * 3600:
        t += 10.0
        rate = 200.0 / 3600 * (1 + 0.15 * math.sin(2 * math.pi * t / 3600))
        arrivals = 0
        clock = rng.expovariate(rate)
        while clock < 10.0:
            arrivals += 1
            clock += rng.expovariate(rate)
        series.totals[TOTALS.index("offered")] += arrivals
        series.res_hist[0] += arrivals
        series.res_hist_sum += sum(rng.expovariate(1 / 180.0) for _ in range(arrivals))
        f = forecaster.observe(KEY, step, series, t)
        if f is not None and any(p.breaches for p in f.projections):
            breaches += 1
    assert breaches == 0


@pytest.mark.parametrize("measure", ["wait_p50", "wait_p90", "wait_p99"])
@pytest.mark.parametrize("patience", [None, 90.0])
def test_agents_clear_of_a_wait_percentile_are_those_whose_percentile_is_under_the_breach(
    measure: str, patience: float | None
) -> None:
    """The search for the agents needed judges a wait percentile by the model's tail at the breach:
    it agrees with finding the percentile (by bisection) and comparing, wherever the percentile is
    not within the bisection's tenth of a second of the breach."""
    from cxmon.forecast import staffing, threshold_agents

    q = {"wait_p50": 0.5, "wait_p90": 0.9, "wait_p99": 0.99}[measure]
    rng = random.Random(7)
    compared = 0
    for _ in range(60):
        work = Workload(rng.uniform(0.01, 0.2), rng.uniform(60, 400), patience)
        breach = rng.choice([20.0, 45.0, 60.0, 120.0])
        th = Threshold(measure, 300.0, breach, None, "above", 60.0, breach, min_volume=0)

        def project(n: int, work: Workload = work) -> float:
            value = staffing.wait_quantile(work, n, q)
            return math.inf if value is None else value

        clear = threshold_agents.clear_of(th, project, work)
        for n in range(max(1, math.floor(work.load) - 2), math.ceil(work.load) + 12):
            percentile = project(n)
            if abs(percentile - breach) <= 0.1:
                continue
            assert clear(n) == (percentile <= breach), (work, n, breach, percentile)
            compared += 1
    assert compared > 500


def test_contacts_waiting_past_the_target_bring_the_breach_forward() -> None:
    """200 calls an hour handled in 3 minutes on 18 agents (Erlang C: well clear of 80/20), a window at
    95 %: with nobody waiting no breach is projected; with 8 contacts waiting 30 to 65 s (late answers
    for certain) the window is projected below 80 % within two minutes, and the reason says who waits."""
    forecaster = Forecaster(CONFIG)
    series = FakeSeries(agents_staffed=18)
    t = feed(series, forecaster, per_hour=200.0, aht=180.0, minutes=40)
    calm = sl_of(forecaster)
    assert not calm.breaches and calm.eta(0.95) is None
    series.waiting = {f"c{i}": t + 10.0 - 30.0 - 5.0 * i for i in range(8)}
    feed(series, forecaster, per_hour=200.0, aht=180.0, minutes=1 / 6, t0=t)
    p = sl_of(forecaster)
    assert not p.breaches  # the steady state alone is fine
    eta = p.eta(0.95)
    assert eta is not None and eta <= 120.0
    assert p.reason(eta).endswith(": 8 waiting, longest 1m05s, 18 agents")


def test_a_forecast_due_and_unread_keeps_the_samples_it_came_due_with() -> None:
    """A forecast that came due is worked out from the samples as they were then, though samples
    change before it is read (time went back: the samples start again)."""
    step = CONFIG.step("help")

    def due_forecast(go_back: bool) -> Forecast | None:
        forecaster = Forecaster(CONFIG)
        series = FakeSeries(agents_staffed=14)
        end = feed(series, forecaster, per_hour=200, aht=180, minutes=40)
        series.totals[TOTALS.index("offered")] += 5
        assert forecaster.sample(KEY, step, series, end + 10.0)
        if go_back:
            assert not forecaster.sample(KEY, step, series, 5.0)
        return forecaster.forecast(KEY)

    kept = due_forecast(go_back=True)
    assert kept == due_forecast(go_back=False)
    assert kept is not None and kept.arrival_rate is not None and kept.arrival_rate > 0


def test_projections_read_later_are_those_of_when_the_forecast_came_due() -> None:
    """A forecast's projections are worked out when first read: read after agents were lost and
    later forecasts came due, each is still its own threshold's, at the arrivals and agents of its
    forecast (Erlang C's service level on 15 agents; no abandons in Erlang C)."""
    config = one_step_config(
        """
  [[journey.steps.thresholds]]
  measure = "service_level"
  window = "5m"
  breach = "80%"
  direction = "below"
  [[journey.steps.thresholds]]
  measure = "abandon_rate"
  window = "5m"
  breach = "15%"
"""
    )
    forecaster = Forecaster(config)
    series = FakeSeries(agents_staffed=15)
    t = feed(series, forecaster, per_hour=200.0, aht=180.0, minutes=40, config=config)
    first = forecaster.latest[KEY]
    series.agents_staffed = 11
    feed(series, forecaster, per_hour=200.0, aht=180.0, minutes=1, t0=t, config=config)
    assert forecaster.latest[KEY] is not first
    of = {p.measure: p for p in first.projections}
    sl, abandons = of["service_level"], of["abandon_rate"]
    assert first.arrival_rate is not None
    work = Workload(first.arrival_rate, 180.0)
    assert sl.agents == 15
    assert sl.projected == evaluate(work, 15, 20.0).service_level
    assert not sl.breaches
    assert (abandons.measure, abandons.projected, abandons.sure) == ("abandon_rate", 0.0, 0.0)


TWO_SHARES = """
  [[journey.steps.thresholds]]
  measure = "service_level"
  window = "5m"
  breach = "{sl}"
  direction = "below"
  [[journey.steps.thresholds]]
  measure = "abandon_rate"
  window = "5m"
  breach = "{abandons}"
"""


def fewest_by_counting(clear: Callable[[int], bool]) -> int | None:
    """The fewest agents, counting up from none, that ``clear`` passes (None past 2,000)."""
    return next((n for n in range(2_001) if clear(n)), None)


def patient_forecast(config: Config, agents: int) -> Forecast:
    """40 minutes of 200 contacts an hour handled in 3 minutes, a tenth of them abandoning after
    two minutes' wait on average (Erlang A), on ``agents``."""
    forecaster = Forecaster(config)
    series = FakeSeries(agents_staffed=agents)
    t = feed(series, forecaster, per_hour=200.0, aht=180.0, minutes=20, config=config)
    series.totals[TOTALS.index("abandoned")] += 10
    series.wait_hist_sum += 10 * 120.0
    feed(series, forecaster, per_hour=200.0, aht=180.0, minutes=20, t0=t, config=config)
    return forecaster.latest[KEY]


@pytest.mark.parametrize(
    ("sl", "abandons", "agents"), [("80%", "15%", 8), ("95%", "2%", 14), ("60%", "1%", 30)]
)
def test_agents_needed_for_every_threshold_are_the_most_any_one_needs(
    sl: str, abandons: str, agents: int
) -> None:
    """The forecast's agents needed are the fewest that keep both a service level and an abandon
    rate clear, counted up from none with the model's own figures, whichever of them needs more;
    and each projection's own answer, read after, is its threshold's count."""
    f = patient_forecast(one_step_config(TWO_SHARES.format(sl=sl, abandons=abandons)), agents)
    assert f.model == "erlang_a" and f.arrival_rate is not None and f.aht is not None
    work = Workload(f.arrival_rate, f.aht, f.patience)
    goal, ceiling = float(sl.rstrip("%")) / 100, float(abandons.rstrip("%")) / 100
    for_sl = fewest_by_counting(lambda n: (evaluate(work, n, 20.0).service_level or 0.0) >= goal)
    for_abandons = fewest_by_counting(lambda n: (evaluate(work, n, 20.0).p_abandon or 1.0) <= ceiling)
    assert for_sl is not None and for_abandons is not None
    assert f.agents_needed == max(for_sl, for_abandons)
    of = {p.measure: p.agents_needed for p in f.projections}
    assert (of["service_level"], of["abandon_rate"]) == (for_sl, for_abandons)


def test_the_thresholds_projected_are_those_of_the_step_the_forecast_came_due_with() -> None:
    """The thresholds the model projects are worked out once per step, not once per forecast: a
    series whose forecasts come due with another step's thresholds (another config's) is projected
    on those, each forecast on the step it came due with."""
    two = one_step_config(TWO_SHARES.format(sl="80%", abandons="15%"))

    def measures(config: Config) -> list[tuple[str, float]]:
        return [(th.measure, th.window) for th in config.step("help").thresholds if th.measure in MODELLED]

    def projected(f: Forecast) -> list[tuple[str, float]]:
        return [(p.measure, p.window) for p in f.projections]

    assert measures(two) != measures(CONFIG) and ("abandon_rate", 300.0) in measures(two)
    forecaster = Forecaster(CONFIG)
    series = FakeSeries(agents_staffed=14)
    t = feed(series, forecaster, per_hour=200.0, aht=180.0, minutes=40)
    assert projected(forecaster.latest[KEY]) == measures(CONFIG)
    feed(series, forecaster, per_hour=200.0, aht=180.0, minutes=1, t0=t, config=two)
    then = forecaster.latest[KEY]
    assert projected(then) == measures(two)
    assert then.agents_needed == max(p.agents_needed or 0 for p in then.projections)
    feed(series, forecaster, per_hour=200.0, aht=180.0, minutes=1, t0=t + 60.0)
    assert projected(forecaster.latest[KEY]) == measures(CONFIG)
