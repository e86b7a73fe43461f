"""Warning lead benchmark: how long before a pot hole does cxmon say WATCH, and how often does it cry wolf.

Runs the default journey on the simulator, as fast as it goes and without a store:

- ``--runs`` seeded runs (50 by default), each with one randomly timed incident on a voice queue
  (sales, billing or tech): agents lost (15 to 45 % of them) or arrivals surging (×1.2 to ×1.9),
  lasting 20 to 45 minutes: sizes a floor manager can still act on. For the incident's series, the
  moment its measure first crosses a threshold's ``breach`` (with the threshold's ``min_volume``) is
  the pot hole; the warning lead is from the start of the WATCH that runs up to it (not before the
  incident began) to that moment.
  Incidents that never cross ``breach`` are not pot holes and are only counted.
- ``--quiet`` incident-free runs of ``--hours`` simulated hours (8 by default): every time a step
  leaves OK (for WATCH or POTHOLE) is a false alarm.

Before the runs, ``--history`` days (14 by default) of the incident-free simulator, 08:00 to 16:00 on
each of the days before, are run with a store, and each queue's arrival profile is learned from it as
an engine learns it from its store at start (:mod:`cxmon.forecast.profile`): every run then starts
as a monitor that has watched the centre for two weeks. ``--history 0`` starts them cold.

Prints the median lead, the share of pot holes warned less than a minute ahead (none at all counts as
late), and false alarms per 8 hours; and, for the surges that became pot holes, what the queueing
model says at their true arrival rate (the simulator's, times the surge), the reference a forecaster
that must learn the rate from the arrivals is measured against. ``--jobs`` runs that many processes.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.simulator.model import PROFILE_PERIOD
from collectors.simulator.options import QueueSpec, parse_options
from cxmon.config import Config, default_config_path, load
from cxmon.engine import Engine
from cxmon.forecast import profile
from cxmon.forecast.figures import Workload
from cxmon.forecast.live import CHANCE_DISPERSION
from cxmon.forecast.staffing import evaluate
from cxmon.noise import window_breach_chance, window_breach_outlook
from cxmon.snapshot import Snapshot, State

START = "2026-01-05T08:00:00Z"
"""A Monday, 08:00 UTC."""
START_TS = 1767600000.0
QUEUES = ("sales", "billing", "tech")
HISTORY_SEED = 9000
"""Seeds of the history days are this plus the day."""
HISTORY_DAYS = 14
"""Days of history before the runs, by default: what a monitor that has run for two weeks knows."""
Profiles = dict[tuple[str, str], profile.Profile]
SETTLE = 300.0
"""Simulated seconds after an incident's end that a run goes on for."""


@dataclasses.dataclass(frozen=True)
class Incident:
    """One scripted disturbance."""

    queue: str
    at: float
    duration: float
    agents_factor: float = 1.0
    arrivals_factor: float = 1.0

    @property
    def kind(self) -> str:
        return "agents lost" if self.agents_factor < 1.0 else "arrivals surge"


def draw_incident(rng: random.Random) -> Incident:
    """A random incident: queue, kind, size, start (20 min to 2 h in) and length."""
    queue = rng.choice(QUEUES)
    at = rng.uniform(1200.0, 7200.0)
    duration = rng.uniform(1200.0, 2700.0)
    if rng.random() < 0.5:
        return Incident(queue, at, duration, agents_factor=rng.uniform(0.55, 0.85))
    return Incident(queue, at, duration, arrivals_factor=rng.uniform(1.2, 1.9))


def config_for(seed: int, incident: Incident | None, duration: float) -> Config:
    """The default config with the simulator seeded, at max speed, and only ``incident`` scripted."""
    config = load(default_config_path())
    incidents = (
        []
        if incident is None
        else [
            {
                "queue": incident.queue,
                "at": incident.at,
                "duration": incident.duration,
                "agents_factor": incident.agents_factor,
                "arrivals_factor": incident.arrivals_factor,
            }
        ]
    )
    collectors = tuple(
        dataclasses.replace(
            c,
            options={
                **c.options,
                "start": START,
                "speed": "max",
                "seed": seed,
                "duration": duration,
                "incidents": incidents,
            },
        )
        for c in config.collectors
    )
    return dataclasses.replace(config, collectors=collectors)


def step_of(config: Config, queue: str) -> str:
    """The step a voice queue's contacts belong to."""
    for step in config.steps:
        if any(m.queue == queue and m.channel == "voice" for m in step.match):
            return step.name
    raise KeyError(queue)


class Watcher:
    """Follows one series through the snapshots: when it first breaches, and its states."""

    def __init__(self, config: Config, step: str, queue: str, since: float) -> None:
        self.thresholds = [t for t in config.step(step).thresholds if t.channel in ("*", "voice")]
        self.key = (step, "voice", queue)
        self.since = since
        self.crossed: float | None = None
        self.crossed_reason = ""
        self.watch_from: float | None = None
        """Start of the current run of non-OK states (clipped to the incident's start)."""
        self.lead_from: float | None = None

    def __call__(self, snap: Snapshot) -> None:
        if self.crossed is not None or snap.ts < self.since:
            return
        series = next((s for s in snap.series if s.key == self.key), None)
        if series is None:
            return
        if series.state in (State.WATCH, State.POTHOLE):
            if self.watch_from is None:
                self.watch_from = snap.ts
        else:
            self.watch_from = None
        for th in self.thresholds:
            figures: Mapping[str, float | None] = series.windows.get(th.window) or {}
            value = figures.get(th.measure)
            done = (figures.get("answered") or 0.0) + (figures.get("abandoned") or 0.0)
            if value is not None and done >= th.min_volume and th.worse(value, th.breach):
                self.crossed = snap.ts
                self.crossed_reason = f"{th.measure} {value:.3g}"
                self.lead_from = self.watch_from
                return


class Alarms:
    """Counts every time a step leaves OK (a snapshot's transitions are all steps'; channel and queue
    name the series that drives the step)."""

    def __init__(self) -> None:
        self.count = 0
        self.reasons: list[str] = []

    def __call__(self, snap: Snapshot) -> None:
        for t in snap.transitions:
            if t.from_state is State.OK and t.to_state in (State.WATCH, State.POTHOLE):
                self.count += 1
                self.reasons.append(f"{t.step}: {t.reason}")


async def _drive(config: Config, duration: float, listener: Any, profiles: Profiles | None = None) -> None:
    engine = Engine(config, store=False)
    if profiles is not None:
        # What the engine would have learned at start from a store holding the history.
        engine.forecaster.profiles = profiles
    engine.add_listener(listener)
    async with engine:
        await engine.run(duration=duration)


def true_outlook(config: Config, queue: str, factor: float, at: float) -> tuple[float, float]:
    """What the queueing model says of a voice queue's service level at its *true* arrival rate (the
    simulator's, times ``factor``, at the hourly swing's phase ``at`` seconds into the run): (the
    steady-state service level, the chance that its 5-minute window is under the breach at some
    moment within the horizon). The reference the forecasts are measured against: they must learn
    the rate from the arrivals; this knows it."""
    opts, problems = parse_options(config.collectors[0].options, "collectors[0]")
    assert opts is not None, problems
    spec: QueueSpec = next(q for q in opts.queues if q.name == queue)
    step = config.step(step_of(config, queue))
    th = next(t for t in step.thresholds if t.measure == "service_level" and t.channel in ("*", "voice"))
    swing = 1.0 + spec.profile_amplitude * math.sin(2.0 * math.pi * at / PROFILE_PERIOD)
    rate = spec.arrivals_per_hour / 3600.0 * swing * factor
    level = evaluate(
        Workload(rate, spec.handle_mean, spec.patience_mean), spec.agents, step.service_level_target
    )
    sl = 0.0 if level.service_level is None else level.service_level  # None: overloaded
    risk = window_breach_outlook(
        sl, max(1.0, rate * th.window), CHANCE_DISPERSION, th.breach, "below", th.window
    )
    return sl, window_breach_chance(*risk, config.monitor.trend_horizon)


def true_peak(config: Config, queue: str, factor: float) -> tuple[float, float]:
    """:func:`true_outlook` at the hourly swing's peak."""
    return true_outlook(config, queue, factor, PROFILE_PERIOD / 4.0)


def incident_run(seed: int, profiles: Profiles | None = None) -> dict[str, Any]:
    """One incident run: when the series breached, and when its warning began."""
    incident = draw_incident(random.Random(seed))
    duration = incident.at + incident.duration + SETTLE
    config = config_for(seed, incident, duration)
    step = step_of(config, incident.queue)
    watcher = Watcher(config, step, incident.queue, START_TS + incident.at)
    asyncio.run(_drive(config, duration, watcher, profiles))
    lead = None
    if watcher.crossed is not None:
        lead = 0.0 if watcher.lead_from is None else watcher.crossed - watcher.lead_from
    mean_sl, _ = true_outlook(config, incident.queue, incident.arrivals_factor, PROFILE_PERIOD / 2.0)
    _, peak_chance = true_peak(config, incident.queue, incident.arrivals_factor)
    return {
        "seed": seed,
        "incident": dataclasses.asdict(incident),
        "kind": incident.kind,
        "step": step,
        "crossed_after": None if watcher.crossed is None else watcher.crossed - START_TS - incident.at,
        "crossed_on": watcher.crossed_reason,
        "lead": lead,
        "true_service_level": mean_sl,
        "true_peak_chance": peak_chance,
    }


def quiet_run(seed: int, hours: float, profiles: Profiles | None = None) -> dict[str, Any]:
    """One incident-free run: how many times a step left OK."""
    duration = hours * 3600.0
    alarms = Alarms()
    asyncio.run(_drive(config_for(seed, None, duration), duration, alarms, profiles))
    return {"seed": seed, "hours": hours, "alarms": alarms.count, "reasons": alarms.reasons}


async def _record(config: Config, db: str, duration: float) -> None:
    async with Engine(config, db_path=db) as engine:
        await engine.run(duration=duration)


def history_day(day: int, hours: float, db: str) -> str:
    """One incident-free day of history, ``day`` days before the runs' start, stored in ``db``."""
    config = config_for(HISTORY_SEED + day, None, hours * 3600.0)
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START_TS - day * profile.DAY))
    collectors = tuple(
        dataclasses.replace(c, options={**c.options, "start": start}) for c in config.collectors
    )
    asyncio.run(_record(dataclasses.replace(config, collectors=collectors), db, hours * 3600.0))
    return db


def learn_history(pool: ProcessPoolExecutor, days: int, hours: float, where: Path) -> Profiles:
    """Simulate ``days`` incident-free days before the runs (``hours`` each, from 08:00), store them,
    and learn the arrival profiles from them as the engine does at start."""
    dbs = [str(where / f"day{d}.db") for d in range(1, days + 1)]
    for job in [pool.submit(history_day, d, hours, db) for d, db in enumerate(dbs, 1)]:
        job.result()
    merged = where / "history.db"
    con = sqlite3.connect(merged)
    try:
        for i, db in enumerate(dbs):
            con.execute("ATTACH DATABASE ? AS day", (db,))
            if i == 0:
                con.execute("CREATE TABLE events AS SELECT ts, kind, channel, queue FROM day.events WHERE 0")
            con.execute(
                "INSERT INTO events SELECT ts, kind, channel, queue FROM day.events WHERE kind = 'arrived'"
            )
            con.commit()
            con.execute("DETACH DATABASE day")
    finally:
        con.close()
    opts = load(default_config_path()).forecast
    return profile.load(str(merged), opts.profile_interval, days, min(days, opts.profile_min_days))


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="incident runs (default 50)")
    parser.add_argument("--quiet", type=int, default=5, help="incident-free runs (default 5)")
    parser.add_argument("--hours", type=float, default=8.0, help="length of each incident-free run")
    parser.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    parser.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--json", metavar="FILE", help="also write every run's figures here")
    parser.add_argument(
        "--history",
        type=int,
        default=HISTORY_DAYS,
        metavar="DAYS",
        help=f"days of history the arrival profiles are learned from (default {HISTORY_DAYS}; 0: none)",
    )
    parser.add_argument(
        "--only",
        metavar="SEED",
        type=int,
        action="append",
        help="run only the incident run of this seed (repeatable; --runs is then ignored)",
    )
    args = parser.parse_args()

    wall = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool, tempfile.TemporaryDirectory() as tmp:
        profiles = None
        if args.history:
            profiles = learn_history(pool, args.history, args.hours, Path(tmp))
            print(f"history: {args.history} days of {args.hours:g} h, profiles for {len(profiles)} queues")
        quiet_jobs = [
            pool.submit(quiet_run, 1000 + args.seed + i, args.hours, profiles) for i in range(args.quiet)
        ]
        seeds = args.only if args.only else [args.seed + i for i in range(args.runs)]
        incident_jobs = [pool.submit(incident_run, seed, profiles) for seed in seeds]
        incidents = [j.result() for j in incident_jobs]
        quiet = [j.result() for j in quiet_jobs]
    elapsed = time.perf_counter() - wall

    potholes = [r for r in incidents if r["lead"] is not None]
    leads = [r["lead"] for r in potholes]
    late = [x for x in leads if x < 60.0]
    alarms = sum(q["alarms"] for q in quiet)
    hours = sum(q["hours"] for q in quiet)
    print(f"incident runs: {len(incidents)}, of which pot holes (crossed breach): {len(potholes)}")
    for kind in ("agents lost", "arrivals surge"):
        ks = [r["lead"] for r in potholes if r["kind"] == kind]
        if ks:
            print(f"  {kind:15} {len(ks):3} pot holes, median lead {statistics.median(ks) / 60:5.1f} min")
    if potholes:
        delays = [r["crossed_after"] for r in potholes]
        print(f"median time from incident start to breach: {statistics.median(delays) / 60:.1f} min")
        surges = [r for r in potholes if r["kind"] == "arrivals surge"]
        if surges:
            config = load(default_config_path())
            level = config.forecast.breach_chance
            held = sum(r["true_service_level"] >= 0.85 for r in surges)
            seen = sum(r["true_peak_chance"] >= level for r in surges)
            calm = [true_peak(config, q, 1.0)[1] for q in QUEUES]
            print(
                f"  at the true arrival rate (the model, knowing the rate): {held} of {len(surges)} surges "
                f"leave a steady-state service level >= 85 %; the chance of a breach within the horizon "
                f"at the surge's hourly peak reaches breach_chance ({level:g}) for {seen} of {len(surges)}, "
                f"and at a quiet hour's peak it is at most {max(calm):.2g} ({', '.join(QUEUES)})"
            )
    if leads:
        print(f"median warning lead: {statistics.median(leads) / 60:.1f} min")
        print(f"warned < 1 min ahead: {len(late)} of {len(leads)} ({100 * len(late) / len(leads):.0f} %)")
    if hours:
        print(
            f"false alarms: {alarms} in {hours:g} incident-free hours "
            f"= {alarms / hours * 8:.2f} per 8 h ({len(quiet)} runs)"
        )
    reasons: dict[str, int] = {}
    for q in quiet:
        for r in q["reasons"]:
            step = r.split(":")[0]
            reasons[step] = reasons.get(step, 0) + 1
    if reasons:
        print("  by step: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
    print(f"({elapsed:.0f} s wall, {args.jobs} processes)")
    if args.json:
        Path(args.json).write_text(json.dumps({"incidents": incidents, "quiet": quiet}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
