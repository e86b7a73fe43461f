"""Hour-of-week baselines: cold start, "worse than usual" as a WATCH reason, learned from imports."""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

from collectors.jsonl import JsonlFileSource
from collectors.simulator import SimulatorSource
from collectors.simulator.model import simulate_events
from cxmon.config import Threshold
from cxmon.detector import Detector
from cxmon.engine import Engine
from cxmon.forecast.baseline import Baselines, hour_of_week, slot_name, week_of
from cxmon.snapshot import State
from tests.helpers import SIM_START_TS, one_step_config, sim_config

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
    det = Detector(CONFIG)
    learn(det.baselines, 3, random.Random(3))
    assert det.judge_rule(KEY, 0, lenient, 50.0, MONDAY_10H).state is State.OK  # not yet for 30 s
    verdict = det.judge_rule(KEY, 0, lenient, 50.0, MONDAY_10H + 30)
    assert verdict.state is State.WATCH
    assert verdict.reason.startswith("wait p90 50s worse than usual: above the 95th percentile for Mon 10h")
    calm = Detector(CONFIG)
    learn(calm.baselines, 3, random.Random(3))
    assert calm.judge_rule(KEY, 0, lenient, 35.0, MONDAY_10H).state is State.OK
    assert calm.judge_rule(KEY, 0, lenient, 35.0, MONDAY_10H + 60).state is State.OK


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
