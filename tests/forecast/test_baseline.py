"""Hour-of-week baselines: cold start, "worse than usual" as a WATCH reason, learned from imports."""

from __future__ import annotations

import dataclasses
import json
import random
import sqlite3
import statistics
from pathlib import Path

import orjson
import pytest

from collectors.jsonl import JsonlFileSource
from collectors.records import RecordMapping, RecordsSource
from collectors.records.source import RecordsOptions
from collectors.simulator import SimulatorSource
from collectors.simulator.model import simulate_events
from cxmon.config import Threshold, load
from cxmon.detector import Detector
from cxmon.engine import Engine
from cxmon.forecast.baseline import Baselines, hour_of_week, slot_name, week_of
from cxmon.importer import queue_log_source, run_import
from cxmon.replay.session import replay_flat_out
from cxmon.snapshot import Snapshot, State
from cxmon.store import Store
from tests.helpers import SIM_START_TS, one_step_config, sim_config
from tests.test_importer import write_queue_log, write_records

REPO = Path(__file__).resolve().parents[2]

CONFIG = one_step_config()  # step "help": wait_p90 on the 60 s window (the shortest), for 30 s
KEY = ("help", "voice", "q1")
TH = CONFIG.step("help").thresholds[0]
MONDAY_10H = SIM_START_TS + 2 * 3600  # SIM_START is Monday 2026-01-05 08:00 UTC


def learn(baselines: Baselines, weeks: int, rng: random.Random) -> list[float]:
    """``weeks`` past Mondays 10:00–11:00 of wait p90 around 30 s; returns what was kept."""
    kept = []
    for w in range(1, weeks + 1):
        for minute in range(60):
            ts = MONDAY_10H - w * 7 * 86400 + minute * 60
            value = rng.gauss(30.0, 5.0)
            baselines.add(KEY, ts, {"wait_p90": value})
            if minute % 5 == 0:
                kept.append(value)
    return kept


def test_hour_of_week_counts_from_monday_utc() -> None:
    """The simulator's start (Monday 08:00 UTC) is hour 8 of the week; weeks roll over on Mondays."""
    assert hour_of_week(SIM_START_TS) == 8 and slot_name(8) == "Mon 08h"
    assert week_of(SIM_START_TS) == week_of(SIM_START_TS + 6 * 86400) == week_of(SIM_START_TS - 8 * 3600)
    assert week_of(SIM_START_TS + 7 * 86400) == week_of(SIM_START_TS) + 1


def test_cold_start_gives_no_verdict_and_says_learning() -> None:
    """One week of history (two needed): no verdict however bad the value, and the status says so."""
    baselines = Baselines(CONFIG)
    learn(baselines, 1, random.Random(1))
    assert not baselines.usual(KEY, "wait_p90", TH, MONDAY_10H).ready
    assert baselines.worse_reason(KEY, TH, 500.0, MONDAY_10H) == ""
    assert baselines.worse_reason(KEY, TH, 500.0, MONDAY_10H + 600) == ""
    assert str(baselines.status(MONDAY_10H)) == "learning (1 of 2 weeks of history)"


def test_limit_is_the_95th_percentile_of_the_same_hour() -> None:
    """With three weeks learned, the limit is the 95th percentile of the kept figures (statistics'
    inclusive quantiles as the reference) and the median theirs."""
    baselines = Baselines(CONFIG)
    kept = learn(baselines, 3, random.Random(2))
    usual = baselines.usual(KEY, "wait_p90", TH, MONDAY_10H)
    assert usual.ready and usual.weeks == 3
    assert usual.limit == statistics.quantiles(kept, n=20, method="inclusive")[-1]
    assert usual.median == statistics.median(kept)


def test_worse_than_usual_for_the_threshold_for_is_watch() -> None:
    """Under a threshold far above it, a wait p90 of 50 s — past the usual 95th percentile — for the
    threshold's 30 s turns the rule WATCH with a reason naming the hour; 35 s (usual) stays OK."""
    lenient = Threshold(
        measure="wait_p90", window=60.0, breach=600.0, warn=None, direction="above", for_=30.0, clear=500.0
    )
    det = Detector(dataclasses.replace(CONFIG, display_timezone="UTC"))
    learn(det.baselines, 3, random.Random(3))
    assert det.judge_rule(KEY, 0, lenient, 50.0, MONDAY_10H).state is State.OK  # not yet for 30 s
    verdict = det.judge_rule(KEY, 0, lenient, 50.0, MONDAY_10H + 30)
    assert verdict.state is State.WATCH
    assert verdict.reason.startswith("wait p90 50s worse than usual: above the 95th percentile for Mon 10h")
    calm = Detector(CONFIG)
    learn(calm.baselines, 3, random.Random(3))
    assert calm.judge_rule(KEY, 0, lenient, 35.0, MONDAY_10H).state is State.OK
    assert calm.judge_rule(KEY, 0, lenient, 35.0, MONDAY_10H + 60).state is State.OK


def test_worse_than_usual_names_the_hour_on_the_floors_clock() -> None:
    """The slot is an hour of the week in UTC, but the reason names it as the dashboard's clock reads
    it: Monday 10:00 UTC is "Mon 12h" in Jerusalem in January, as the 12:00 beside it on screen."""
    lenient = Threshold(
        measure="wait_p90", window=60.0, breach=600.0, warn=None, direction="above", for_=30.0, clear=500.0
    )
    det = Detector(dataclasses.replace(CONFIG, display_timezone="Asia/Jerusalem"))
    learn(det.baselines, 3, random.Random(3))
    det.judge_rule(KEY, 0, lenient, 50.0, MONDAY_10H)
    verdict = det.judge_rule(KEY, 0, lenient, 50.0, MONDAY_10H + 30)
    assert verdict.state is State.WATCH
    assert "above the 95th percentile for Mon 12h (" in verdict.reason


LONG = one_step_config(
    """
  [[journey.steps.thresholds]]
  measure = "service_level"
  window = "5m"
  warn = "85%"
  breach = "80%"
  clear = "83%"
  direction = "below"
  for = "1m"
  min_volume = 10
"""
)
LONG_TH = LONG.step("help").thresholds[1]


def learn_long(baselines: Baselines, weeks: int, rng: random.Random) -> list[float]:
    """``weeks`` past Mondays 10:00–11:00 of 5-minute service levels around 90 %, stored as the minute
    figures carry them (``service_level@5m``, with the shortest window's own figures beside them)."""
    kept = []
    for w in range(1, weeks + 1):
        for minute in range(60):
            ts = MONDAY_10H - w * 7 * 86400 + minute * 60
            value = min(1.0, rng.gauss(0.9, 0.03))
            figures = {"service_level": 0.1, "answered": 50.0, "service_level@5m": value}
            baselines.add(KEY, ts, figures)
            if minute % 5 == 0:
                kept.append(value)
    return kept


def test_a_threshold_over_a_longer_window_learns_that_window() -> None:
    """A service level judged over 5 m (the shortest window is 60 s) is learned from the minute
    figures' ``service_level@5m``: its limit is the 5th percentile of those (statistics' inclusive
    quantiles as the reference), not of the shortest window's figure."""
    baselines = Baselines(LONG)
    kept = learn_long(baselines, 3, random.Random(4))
    usual = baselines.usual(KEY, "service_level", LONG_TH, MONDAY_10H)
    assert usual.ready and usual.weeks == 3
    assert usual.limit == statistics.quantiles(kept, n=20, method="inclusive")[0]
    assert usual.median == statistics.median(kept)


def test_the_minute_figures_carry_the_longer_windows_judged_figures() -> None:
    """``stored_figures`` gives the 5 m service level under ``service_level@5m``, and leaves out a
    window resting on fewer contacts than the threshold's ``min_volume``."""
    baselines = Baselines(LONG)
    windows = {60.0: {"service_level": 0.5, "answered": 3.0}, 300.0: {"service_level": 0.9, "answered": 30.0}}
    assert baselines.stored_figures("help", windows) == {"service_level@5m": 0.9}
    thin = {**windows, 300.0: {"service_level": 0.9, "answered": 4.0, "abandoned": 2.0}}
    assert baselines.stored_figures("help", thin) == {}


def test_worse_than_usual_over_a_longer_window_names_it() -> None:
    """A 5-minute service level of 70 % against a usual 90 % (three weeks) for the threshold's minute
    is WATCH, and the reason says which window."""
    det = Detector(LONG)
    learn_long(det.baselines, 3, random.Random(6))
    lenient = dataclasses.replace(LONG_TH, breach=0.5, warn=None, clear=0.55)
    assert det.judge_rule(KEY, 1, lenient, 0.7, MONDAY_10H).state is State.OK  # not yet for 1 m
    verdict = det.judge_rule(KEY, 1, lenient, 0.7, MONDAY_10H + 60)
    assert verdict.state is State.WATCH
    assert verdict.reason.startswith("service level (5m) 70% worse than usual: below the 5th percentile")


def test_the_snapshot_figures_are_the_ready_slots_of_this_hour() -> None:
    """``figures`` lists, for the hour of ``now``, each ready slot's median and limit (with the
    limit's quantile), and nothing for an hour without history."""
    baselines = Baselines(LONG)
    learn_long(baselines, 2, random.Random(7))
    (figure,) = baselines.figures(MONDAY_10H)
    usual = baselines.usual(KEY, "service_level", LONG_TH, MONDAY_10H)
    assert (figure.step, figure.channel, figure.queue, figure.measure, figure.window) == (
        *KEY,
        "service_level",
        300.0,
    )
    assert (figure.median, figure.limit, figure.limit_quantile, figure.weeks) == (
        usual.median,
        usual.limit,
        0.05,
        2,
    )
    assert baselines.figures(MONDAY_10H + 3600) == ()


async def test_an_import_builds_baselines_and_a_restart_reads_them(tmp_path: Path) -> None:
    """A backfill feeds its minute figures to the baselines as it goes; a later start learns the same
    minutes from the database."""
    config = sim_config(speed="max")
    source = SimulatorSource.from_config(config.collectors[0], config)
    path = tmp_path / "events.jsonl"
    with path.open("w") as fh:
        for ev in simulate_events(source.options, SIM_START_TS, SIM_START_TS + 1800, source="sim"):
            fh.write(json.dumps(ev.to_dict()) + "\n")
    db = tmp_path / "h.db"
    engine = Engine(config, db_path=str(db), sources=[JsonlFileSource("feed", str(path))], clock="events")
    async with engine:
        await engine.run()
    learned = engine.detector.baselines.minutes
    assert learned > 0
    fresh = Baselines(config)
    assert fresh.load(str(db)) > 0
    assert fresh.minutes == learned


MONDAY = SIM_START_TS - 8 * 3600
"""Monday 2026-01-05 00:00 UTC."""


def mondays(weeks: int, seed: int) -> list[tuple[str, str, int, str, int | None, int | None, int]]:
    """Calls on queue PS (the bank's "banking" step) every Monday 09:00–12:00 for ``weeks`` weeks
    (the last one ends at 11:30), one about every 20 s, a fifth of them abandoned."""
    rng = random.Random(seed)
    calls: list[tuple[str, str, int, str, int | None, int | None, int]] = []
    for week in range(weeks):
        t = int(MONDAY + week * 7 * 86400 + 9 * 3600)
        end = t + (3 * 3600 if week < weeks - 1 else int(2.5 * 3600))
        while t < end:
            t += rng.randrange(5, 35)
            wait = int(rng.expovariate(1 / 40))
            cid = f"w{week}c{len(calls)}"
            if rng.random() < 0.2:
                calls.append((cid, "PS", t, "abandon", wait, None, rng.randrange(50)))
            else:
                calls.append((cid, "PS", t, "served", wait, rng.randrange(60, 400), rng.randrange(50)))
    return calls


@pytest.mark.parametrize("kind", ["queue_log", "records"])
async def test_an_import_builds_the_baselines_of_every_judged_window(tmp_path: Path, kind: str) -> None:
    """Three Mondays of calls imported as a queue_log or as call records (the bank's config: windows
    15/30/60 m, thresholds on 30 m) build the 30-minute baselines: the import's last snapshot (Monday
    11h of the third week) carries the median and limit of the two earlier Mondays' stored 30-minute
    figures for that hour, and a restart learns the same from the database."""
    config = load(REPO / "config" / "anonymous-bank.toml")
    calls = mondays(3, seed=11)
    db = tmp_path / "bank.db"
    if kind == "queue_log":
        write_queue_log(tmp_path / "queue_log", calls)
        result = await run_import(config, queue_log_source(config, str(tmp_path / "queue_log")), str(db))
    else:
        write_records(tmp_path / "calls.csv", calls)
        mapping = RecordMapping(
            contact="id", queue="queue", customer="customer", queue_start="q_start", queue_exit="q_exit",
            service_start="s_start", service_end="s_end", time_format="epoch", missing=("",),
        )  # fmt: skip
        source = RecordsSource("records", RecordsOptions(path=str(tmp_path / "calls.csv"), mapping=mapping))
        result = await run_import(config, source, str(db))
    assert result.errors == 0
    final = result.final
    assert hour_of_week(final.ts) == 11 and week_of(final.ts) == week_of(MONDAY) + 2
    usual = {(f.measure, f.window): f for f in final.baselines if f.queue == "PS"}
    assert set(usual) == {("service_level", 1800.0), ("abandon_rate", 1800.0), ("wait_p90", 1800.0)}
    # The reference: the stored minute figures of Monday 11h in the two earlier weeks, one minute in five.
    with sqlite3.connect(db) as con:
        stored = [
            (minute, orjson.loads(figures))
            for minute, figures in con.execute("SELECT minute, figures FROM snapshots WHERE queue = 'PS'")
        ]
    for (measure, _), figure in usual.items():
        th = next(t for t in config.step("banking").thresholds if t.measure == measure)
        values = [
            f[f"{measure}@30m"]
            for minute, f in stored
            if hour_of_week(minute) == 11
            and week_of(minute) < week_of(final.ts)
            and int(minute // 60) % 5 == 0
            and f"{measure}@30m" in f
        ]
        assert figure.weeks == 2 and len(values) >= 20
        assert figure.median == pytest.approx(statistics.median(values), rel=1e-12)
        q = statistics.quantiles(values, n=20, method="inclusive")
        assert figure.limit == pytest.approx(q[-1] if th.direction == "above" else q[0], rel=1e-12)
    restarted = Baselines(config)
    assert restarted.load(str(db)) > 0
    assert restarted.figures(final.ts) == final.baselines


def test_a_rule_worse_than_usual_is_due_again_when_its_for_ends() -> None:
    """Worse than usual but not yet for the threshold's 30 s, the rule's next look is due by then (a
    tick that judges only what changed must not miss the WATCH), and judged then it is WATCH."""
    lenient = dataclasses.replace(TH, breach=600.0, warn=None, clear=500.0, for_=30.0)
    step = dataclasses.replace(CONFIG.step("help"), thresholds=(lenient,))
    det = Detector(CONFIG)
    learn(det.baselines, 3, random.Random(3))
    assert det.judge_rule(KEY, 0, lenient, 50.0, MONDAY_10H).state is State.OK
    due, _ = det.due(KEY, step)
    assert MONDAY_10H < due <= MONDAY_10H + 30
    assert det.judge_rule(KEY, 0, lenient, 50.0, MONDAY_10H + 30).state is State.WATCH


def test_a_rule_is_due_again_when_the_next_hour_brings_another_usual() -> None:
    """Mondays 10h usually wait 30 s and 11h 10 s: 25 s is usual at 10:59 but worse than usual from
    11:00, so the rule judged at 10:59 is due again by 11:00, and WATCH 30 s into the hour."""
    lenient = dataclasses.replace(TH, breach=600.0, warn=None, clear=500.0, for_=30.0)
    step = dataclasses.replace(CONFIG.step("help"), thresholds=(lenient,))
    det = Detector(CONFIG)
    learn(det.baselines, 3, random.Random(4))
    rng = random.Random(5)
    for w in range(1, 4):
        for minute in range(60):
            det.baselines.add(
                KEY, MONDAY_10H + 3600 - w * 7 * 86400 + minute * 60, {"wait_p90": rng.gauss(10, 1)}
            )
    assert det.judge_rule(KEY, 0, lenient, 25.0, MONDAY_10H + 3540).state is State.OK
    due, _ = det.due(KEY, step)
    assert due <= MONDAY_10H + 3600
    assert det.judge_rule(KEY, 0, lenient, 25.0, MONDAY_10H + 3600).state is State.OK  # for starts
    assert det.judge_rule(KEY, 0, lenient, 25.0, MONDAY_10H + 3630).state is State.WATCH


def test_this_weeks_first_figure_keeps_the_four_weeks_the_slot_reads() -> None:
    """With four past Mondays learned, learning this Monday's first 10h figure does not drop the
    earliest of them: the usual for Mon 10h rests on the four weeks before this one, asked before or
    after this week's figures came."""
    before = Baselines(CONFIG)
    learn(before, 4, random.Random(13))
    after = Baselines(CONFIG)
    learn(after, 4, random.Random(13))
    after.add(KEY, MONDAY_10H, {"wait_p90": 31.0})
    usual = before.usual(KEY, "wait_p90", TH, MONDAY_10H + 60)
    assert usual.weeks == 4
    assert after.usual(KEY, "wait_p90", TH, MONDAY_10H + 60) == usual


async def test_a_restart_late_in_the_hour_learns_the_whole_hour_of_the_earliest_week(tmp_path: Path) -> None:
    """Four past Mondays 10:00–11:00 stored, and the history's newest minute this Monday at 10:50: a
    restart then learns all twelve figures of the earliest Monday's hour (not only those after
    10:50), so its usual for Mon 10h is what the monitor that learned them as they came has."""
    config = CONFIG
    live = Baselines(config)
    rng = random.Random(12)
    rows: list[tuple[float, dict[str, float]]] = []
    for w in range(1, 5):
        for m in range(60):
            rows.append((MONDAY_10H - w * 7 * 86400 + m * 60, {"wait_p90": rng.gauss(30.0, 5.0)}))
    rows.append((MONDAY_10H + 50 * 60, {"wait_p90": 31.0}))
    store = Store(str(tmp_path / "h.db"))
    await store.open()
    for minute, figures in rows:
        live.add(KEY, minute, figures)
        store.add_minute(minute, [(*KEY, State.OK, figures)])
    await store.close()
    restarted = Baselines(config)
    restarted.load(str(tmp_path / "h.db"))
    now = MONDAY_10H + 55 * 60
    assert live.usual(KEY, "wait_p90", TH, now).weeks == 4
    assert restarted.usual(KEY, "wait_p90", TH, now) == live.usual(KEY, "wait_p90", TH, now)
    assert restarted.figures(now) == live.figures(now)


async def test_a_replay_judges_with_the_baselines_the_floor_had_then(tmp_path: Path) -> None:
    """Three Mondays of calls imported with the bank's config; a replay of the third Monday's
    11:00–11:30 has the baselines the import had learned by then (two weeks of history, the same
    medians and limits of Monday 11h), not "learning"."""
    config = load(REPO / "config" / "anonymous-bank.toml")
    write_queue_log(tmp_path / "queue_log", mondays(3, seed=11))
    db = tmp_path / "bank.db"
    result = await run_import(config, queue_log_source(config, str(tmp_path / "queue_log")), str(db))
    final = result.final
    assert final.baselines
    start = MONDAY + 14 * 86400 + 11 * 3600
    seen: list[Snapshot] = []
    await replay_flat_out(config, db, start, start + 1800, seen.append)
    last = seen[-1]
    assert hour_of_week(last.ts) == 11
    assert str(last.baseline) == "ready (2 weeks of history)"
    assert last.baselines == final.baselines
