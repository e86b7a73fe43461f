"""Arrival profiles: learned from the stored arrivals, and the rise tests judged against them."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import sqlite3
import time
from pathlib import Path

import pytest

from cxmon.engine import Engine
from cxmon.engine.profiles import ProfileLearner
from cxmon.forecast import change, profile
from cxmon.forecast.live import Forecaster
from cxmon.forecast.options import parse_forecast
from cxmon.forecast.profile import DAY, Profile
from cxmon.store_schema import MIGRATIONS
from tests.forecast.test_change import _samples, _stream
from tests.forecast.test_live import CONFIG, KEY, FakeSeries, feed
from tests.helpers import SIM_START_TS, sim_config

HOUR = 3600.0
INSERT = "INSERT INTO events (ts, kind, source, contact_id, channel, queue) VALUES (?, ?, 'sim', 'c', ?, ?)"


def _swinging(interval: float = 900.0) -> Profile:
    """A day flat at 1, except 09:00–10:00, where arrivals run at three times the rest of the day's rate."""
    n = int(DAY / interval)
    raw = [3.0 if 9 * HOUR <= k * interval < 10 * HOUR else 1.0 for k in range(n)]
    mean = sum(raw) / n
    return Profile.of(interval, tuple(w / mean for w in raw), 5)


def test_exposure_is_the_integral_of_the_shape() -> None:
    """A span's exposure is the shape summed second by second over it, across intervals and across
    midnight (a sum written in the test, not the profile's running totals)."""
    p = _swinging()
    for t0, t1 in [
        (8.5 * HOUR, 10.25 * HOUR),
        (23.5 * HOUR, DAY + 9.5 * HOUR),
        (5 * DAY + 100.0, 5 * DAY + 700.0),
    ]:
        brute = sum(p.weights[int(((t0 + s) % DAY) // p.interval)] for s in range(int(t1 - t0)))
        assert p.exposure(t1) - p.exposure(t0) == pytest.approx(brute, rel=1e-9)


def test_a_busier_interval_gets_its_share_after_smoothing_with_its_neighbours() -> None:
    """Five days with c arrivals in every quarter hour but three times as many in one: smoothed
    ¼ ½ ¼ with its neighbours and scaled to a mean of 1 over the day's n intervals, that interval
    weighs 2n/(n+2), its neighbours 1.5n/(n+2) and the rest n/(n+2) (worked out by hand)."""
    n, c, busy = 96, 10, 40
    counts = {d: {k: (3 * c if k == busy else c) for k in range(n)} for d in range(5)}
    learned = profile.learn(counts, 900.0, min_days=5)
    assert learned is not None
    weights, days = learned
    assert days == 5
    assert weights[busy] == pytest.approx(2 * n / (n + 2))
    assert weights[busy - 1] == weights[busy + 1] == pytest.approx(1.5 * n / (n + 2))
    assert weights[0] == pytest.approx(n / (n + 2))
    assert sum(weights) / n == pytest.approx(1.0)


def test_no_profile_before_enough_days_and_none_of_weight_zero() -> None:
    """Four days of history are not enough for five; an interval with no arrivals in the history
    still weighs the floor's share, so an arrival there is no infinite rise."""
    counts = {d: {k: 15 for k in range(40, 60)} for d in range(4)}
    assert profile.learn(counts, 900.0, min_days=5) is None
    learned = profile.learn(counts, 900.0, min_days=4)
    assert learned is not None
    assert min(learned[0]) > 0


def test_the_first_interval_after_the_doors_open_is_not_smoothed_with_the_closed_one() -> None:
    """Five days of 10 arrivals in every quarter hour from 08:00 to 16:00 and none outside: every
    open interval weighs the same (the day's 96 over its 32 open ones, 3), the first and last
    included, and the closed ones the floor's share."""
    counts = {d: {k: 10 for k in range(32, 64)} for d in range(5)}
    learned = profile.learn(counts, 900.0, min_days=5)
    assert learned is not None
    weights = learned[0]
    floor = profile.FLOOR * 10 * 32 / 96
    scale = 96 / (32 * 10 + 64 * floor)
    assert weights[32] == weights[47] == weights[63] == pytest.approx(10 * scale)
    assert weights[31] == weights[64] == pytest.approx(floor * scale)


def test_a_queue_of_a_few_contacts_an_interval_gets_no_profile() -> None:
    """Ten days of an escalation desk's 4 calls an interval (40 an interval in all, under the 50 a
    profile needs): no profile, its shape would be noise; at 5 an interval (50), one."""
    assert profile.learn({d: {k: 4 for k in range(32, 64)} for d in range(10)}, 900.0, min_days=5) is None
    assert profile.learn({d: {k: 5 for k in range(32, 64)} for d in range(10)}, 900.0, min_days=5) is not None


def _store(path: Path, arrivals: list[tuple[float, str, str, str]]) -> str:
    """A store with the real schema holding these (ts, kind, channel, queue) events."""
    con = sqlite3.connect(path)
    for script in MIGRATIONS:
        con.executescript(script)
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    con.execute("INSERT INTO schema_version VALUES (?)", (len(MIGRATIONS),))
    con.executemany(INSERT, arrivals)
    con.commit()
    con.close()
    return str(path)


def test_profiles_are_learned_from_the_stored_arrivals(tmp_path: Path) -> None:
    """Six days of stored sales calls, twice as many from 09:00 to 10:00: the sales profile rests
    on the last five days asked for, weighs 09:15–09:45 about twice the 12:00 hour, and ignores
    answers (not arrivals), a far older day (outside the days asked for) and what came after
    ``before``; a queue with too few days gets none."""
    rng = random.Random(5)
    base = 20_000 * DAY
    events: list[tuple[float, str, str, str]] = []
    for d in range(6):
        for t in _stream(
            rng, [(8 * HOUR, 60 / HOUR), (9 * HOUR, 120 / HOUR), (10 * HOUR, 60 / HOUR)], 16 * HOUR
        ):
            events.append((base + d * DAY + t, "arrived", "voice", "sales"))
            events.append((base + d * DAY + t + 5.0, "answered", "voice", "sales"))
    # A day long before, all at 12:00, and one after ``before``, all at 13:00: neither may count.
    events += [(base - 30 * DAY + 12 * HOUR + s, "arrived", "voice", "sales") for s in range(2000)]
    events += [(base + 6 * DAY + 13 * HOUR + s, "arrived", "voice", "sales") for s in range(2000)]
    events += [(base + 5 * DAY + 10 * HOUR, "arrived", "chat", "web")]
    db = _store(tmp_path / "h.db", events)
    got = profile.load(db, 900.0, days=5, min_days=5, before=base + 6 * DAY)
    assert set(got) == {("voice", "sales")}
    sales = got[("voice", "sales")]
    assert sales.days == 5
    rush = sales.weight(base + 9.5 * HOUR)
    noon = sales.weight(base + 12.5 * HOUR)
    assert rush / noon == pytest.approx(2.0, rel=0.2)
    assert sales.weight(base + 13.5 * HOUR) == pytest.approx(noon, rel=0.3)


def test_against_its_profile_the_day_s_rush_is_no_rise() -> None:
    """Arrivals that treble at 09:00 every day, as the queue's profile says they do: against a flat
    usual rate that is a rise by 09:15, against the profile it is none."""
    rng = random.Random(21)
    p = _swinging()
    base = 20_000 * DAY
    times = _stream(rng, [(0.0, 120 / HOUR), (9 * HOUR, 360 / HOUR)], 9.25 * HOUR)
    samples = [(base + t, n) for t, n in _samples(times, 9.25 * HOUR)][
        -int((change.LONGEST + change.BEFORE_LONG) / 10) :
    ]
    now, count = samples[-1]
    assert change.rise(samples, now, count, 1) is not None
    assert change.rise(samples, now, count, 1, profile=p) is None


def test_a_surge_on_top_of_the_profile_is_a_rise_at_its_own_rate() -> None:
    """A day of 240 arrivals an hour whose rush (three times that, as the profile says) comes ×1.6:
    half an hour in, a rise against the profile in most of 50 simulated mornings (the hour before
    it holds only 240 arrivals), of about ×1.6, at the rate the queue faces now (1.6 × the rush's)."""
    rng = random.Random(22)
    p = _swinging()
    base = 20_000 * DAY
    found, factors, rates = 0, [], []
    for _ in range(50):
        times = _stream(rng, [(0.0, 240 / HOUR), (9 * HOUR, 1.6 * 720 / HOUR)], 9.5 * HOUR)
        samples = [(base + t, n) for t, n in _samples(times, 9.5 * HOUR)][-1000:]
        now, count = samples[-1]
        r = change.rise(samples, now, count, 1, profile=p)
        if r is None:
            continue
        found += 1
        factors.append(r.factor)
        rates.append(r.rate)
    assert found >= 35
    assert sum(factors) / found == pytest.approx(1.6, rel=0.08)
    assert sum(rates) / found == pytest.approx(1.6 * 720 / HOUR, rel=0.08)


def test_the_breaking_test_takes_the_rush_for_the_usual() -> None:
    """Arrivals that treble at 09:00, as the profile says, and a queue that breaks at 1.8× the
    early morning's rate: against a flat usual rate the rush is past the breaking rate, a change;
    against the profile it is the usual rate of the hour, no change."""
    rng = random.Random(23)
    p = _swinging()
    base = 20_000 * DAY
    times = _stream(rng, [(0.0, 120 / HOUR), (9 * HOUR, 360 / HOUR)], 9.3 * HOUR)
    samples = [(base + t, n) for t, n in _samples(times, 9.3 * HOUR)][-1000:]
    now, count = samples[-1]

    def breaking_rate() -> float:
        return 1.8 * 120 / HOUR

    assert change.breaking(samples, now, count, 1, breaking_rate, 10.0) is not None
    assert change.breaking(samples, now, count, 1, breaking_rate, 10.0, profile=p) is None


def test_the_reason_says_the_rise_is_against_the_time_of_day() -> None:
    """A forecast whose queue has a profile says its rise is against the usual for the time of
    day; one without says against the usual."""
    config = dataclasses.replace(CONFIG, display_timezone="UTC")
    texts = []
    for with_profile in (False, True):
        forecaster = Forecaster(config)
        if with_profile:
            forecaster.profiles = {(KEY[1], KEY[2]): Profile.of(900.0, (1.0,) * 96, 5)}
        series = FakeSeries(agents_staffed=50)
        t = feed(series, forecaster, per_hour=480.0, aht=240.0, minutes=60)
        feed(series, forecaster, per_hour=768.0, aht=240.0, minutes=16, t0=t)
        p = next(p for p in forecaster.latest[KEY].projections if p.measure == "service_level")
        texts.append(p.rests_on)
    assert texts == ["arrivals 1.6× usual since 01:00", "arrivals 1.6× usual for the time of day since 01:00"]


def _mornings(base: float, queue: str) -> list[tuple[float, str, str, str]]:
    """Five days of a voice queue's arrivals, 100 from 09:00 on each, one every 30 seconds."""
    return [
        (base + d * DAY + 9 * HOUR + 30.0 * i, "arrived", "voice", queue)
        for d in range(5)
        for i in range(100)
    ]


async def test_the_engine_learns_the_profiles_from_its_store_at_start(tmp_path: Path) -> None:
    """An engine whose store holds five days of a queue's arrivals starts with that queue's profile;
    with ``profile_days = 0`` it learns none."""
    base = 20_000 * DAY
    db = _store(tmp_path / "h.db", _mornings(base, "billing"))
    for days, want in ((28, {("voice", "billing")}), (0, set())):
        config = sim_config(speed="max")
        config = dataclasses.replace(config, forecast=dataclasses.replace(config.forecast, profile_days=days))
        engine = Engine(config, db_path=db)
        async with engine:
            assert set(engine.forecaster.profiles) == want


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        (
            {"profile_interval": "7m"},
            "forecast.profile_interval: expected a duration of at least a minute that divides a day",
        ),
        ({"profile_interval": "30s"}, "forecast.profile_interval: expected a duration of at least a minute"),
        ({"profile_days": -1}, "forecast.profile_days: expected a whole number ≥ 0"),
        (
            {"profile_days": 3, "profile_min_days": 5},
            "forecast.profile_min_days: must not exceed profile_days",
        ),
    ],
)
def test_profile_settings_are_checked(table: dict[str, object], problem: str) -> None:
    """A profile setting that cannot work is reported with its key path."""
    _, problems = parse_forecast(table)
    assert any(p.startswith(problem) for p in problems), problems


async def test_a_profile_learned_from_the_simulator_follows_its_hourly_swing(tmp_path: Path) -> None:
    """Five stored mornings of the simulator (08:00–09:00, its arrivals swinging ±15 % within the
    hour, peaking at a quarter past): the billing queue's profile at the default config's 5-minute
    grain weighs 08:10–08:20 more than 08:40–08:50 by about the swing's (1 + 0.15·0.95) ÷
    (1 − 0.15·0.95) = 1.33, less what the smoothing takes; the ratio is found well above 1.15."""
    db = str(tmp_path / "h.db")
    for day in range(5):
        start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(SIM_START_TS - (5 - day) * DAY))
        async with Engine(sim_config(speed="max", start=start, seed=day + 1), db_path=db) as engine:
            await engine.run(duration=HOUR)
    got = profile.load(db, sim_config().forecast.profile_interval, days=28, min_days=5)
    billing = got[("voice", "billing")]
    assert billing.interval == 300.0
    peak = (billing.weight(SIM_START_TS + 600.0) + billing.weight(SIM_START_TS + 900.0)) / 2
    trough = (billing.weight(SIM_START_TS + 2400.0) + billing.weight(SIM_START_TS + 2700.0)) / 2
    assert peak / trough > 1.15


async def test_a_live_engine_learns_the_profiles_again_once_a_day(tmp_path: Path) -> None:
    """Started on five days of billing arrivals, then given five days of sales arrivals: the learner
    of a live engine has sales' profile once a day of engine time has passed, not before; a
    backfill's keeps the profiles it started with."""
    base = 20_000 * DAY
    billing = _mornings(base, "billing")
    db = _store(tmp_path / "h.db", billing)
    config = sim_config()
    for live, want in ((True, {("voice", "billing"), ("voice", "sales")}), (False, {("voice", "billing")})):
        forecaster = Forecaster(config)
        tasks: list[asyncio.Task[object]] = []
        learner = ProfileLearner(db, forecaster, config.forecast, live, tasks)
        now = base + 5 * DAY
        await learner.start(now)
        assert set(forecaster.profiles) == {("voice", "billing")}
        con = sqlite3.connect(db)
        sales = [(ts + 0.5, "arrived", "voice", "sales") for ts, *_ in billing]
        con.executemany(INSERT, sales)
        con.commit()
        con.close()
        learner.tick(now + DAY - 1.0)
        assert not tasks
        learner.tick(now + DAY)
        await asyncio.gather(*tasks)
        assert set(forecaster.profiles) == want
        con = sqlite3.connect(db)
        con.execute("DELETE FROM events WHERE queue = 'sales'")
        con.commit()
        con.close()


def test_against_a_profile_the_usual_rate_is_the_two_hours_before_the_change_point() -> None:
    """Arrivals at 60 an hour, then 120 an hour for an hour, then 240 an hour for ten minutes (one
    every so many seconds, no noise): without a profile the rise is counted against the higher of
    the hour's and the two hours' rates before its change point (the last hour's 120, a morning's
    climb); with one (here flat) the climb is in the shape, and the two hours' 90 an hour are the
    surer measure of the level."""
    times = [k * 60.0 for k in range(60)] + [3600.0 + k * 30.0 for k in range(120)]
    times += [7200.0 + k * 15.0 for k in range(40)]
    now = 7800.0
    samples = [(float(t), sum(1 for x in times if x <= t)) for t in range(10, int(now) + 1, 10)]
    flat = Profile.of(900.0, (1.0,) * 96, 5)
    without = change.rise(samples, now, samples[-1][1], 1, threshold=1.0)
    against = change.rise(samples, now, samples[-1][1], 1, threshold=1.0, profile=flat)
    assert without is not None and against is not None
    assert without.since == against.since == 7200.0
    assert without.usual * HOUR == pytest.approx(120.0, rel=0.02)
    assert against.usual * HOUR == pytest.approx(90.0, rel=0.02)
