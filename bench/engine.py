"""Engine benchmark: events/s through parse → aggregate → store, snapshot latency, and memory over time.

Prints, for a 300-series contact centre:
- throughput on 1,000,000 simulated events read back from JSON lines (parse → aggregate → store),
  with the store on and off, as `cxmon import` runs a backfill: the file is read and parsed in a
  child process, the engine aggregates and judges, and commits run in a writer process. Each is run
  ``--runs`` times, alternately, and the median is printed with the range, peak RSS and CPU time of
  the engine process and of its reader/writer processes;
- snapshot latency at 5,000 events/s: wall time from an event handed to the engine to the first
  published snapshot that includes it (p50/p99), at the default tick;
- the CPU time of live ticks over 10,000 series of which 1 % get events before each tick (p50/p99
  and the share of one core at the default tick), change-driven and, for comparison, recomputing
  every series at every tick (the reference the change-driven path is tested against);
- RSS every 10 simulated minutes over a 2-hour simulated run, to show memory is flat once the
  longest window is full;
- with ``--parts forecast``: the CPU time of one staffing forecast (the Erlang C/A figures, the
  projections and the agents each threshold needs), timed around every forecast worked out in a
  backfill of ``--forecast-events`` events, and its share of the engine's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal, TypedDict, cast
from unittest.mock import patch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.base import Sink
from collectors.jsonl import JsonlFileSource
from collectors.registry import create_source
from collectors.simulator import SimulatorSource
from collectors.simulator.model import simulate_events
from cxmon.config import Config, loads
from cxmon.engine import Engine
from cxmon.events import ContactEvent, EventKind
from cxmon.importer import IMPORT_BATCH, IMPORT_PENDING, NEVER_PURGE
from cxmon.ingest import ProcessSource
from cxmon.snapshot import Snapshot

START = 1_767_600_000.0
SERIES = 300


def bench_config(series: int = SERIES, speed: str = '"max"') -> Config:
    """A journey of 6 steps over ``series`` simulated queues (half voice, half chat), one series each."""
    queues = []
    for i in range(series):
        channel = "voice" if i % 2 == 0 else "chat"
        queues.append(
            f'[[collectors.queues]]\nname = "q{i:03d}"\nchannel = "{channel}"\nagents = 40\n'
            f'arrivals_per_hour = 500\nhandle_mean = "4m"\npatience_mean = "3m"\n'
            f'escalate = 0.05\nescalate_to = "q{(i + 2) % series:03d}"\n'
        )
    steps = "\n".join(
        f'[[journey.steps]]\nname = "step{s}"\nservice_level_target = "20s"\n'
        f'match = [{{ channel = "*", queue = "q{s}*" }}]\n'
        f'  [[journey.steps.thresholds]]\n  measure = "wait_p90"\n  window = "5m"\n  warn = "45s"\n'
        f'  breach = "60s"\n  for = "2m"\n'
        for s in range(3)
    )
    names = [f"q{i:03d}" for i in range(series)]
    text = (
        f'[journey]\nchannels = ["voice", "chat", "survey"]\nqueues = {json.dumps(names)}\n{steps}\n'
        '[[journey.steps]]\nname = "follow_up"\nmatch = [{ channel = "survey", queue = "*" }]\n'
        f'\n[[collectors]]\ntype = "simulator"\nname = "sim"\nseed = 7\nspeed = {speed}\n'
        f'start = "2026-01-05T08:00:00Z"\ncustomers = 20000\n' + "\n".join(queues)
    )
    return loads(text, "<bench>")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# --------------------------------------------------------------------------- throughput


def generate(path: Path, count: int) -> float:
    """Write ``count`` simulated events as JSON lines; return the simulated seconds they span."""
    config = bench_config()
    source = create_source(config.collectors[0], config)
    assert isinstance(source, SimulatorSource)
    n = 0
    last = START
    with path.open("w") as fh:
        for ev in simulate_events(source.options, START, None, source="sim"):
            fh.write(json.dumps(ev.to_dict()))
            fh.write("\n")
            n += 1
            last = ev.ts
            if n >= count:
                break
    return last - START


async def ingest(path: Path, db: str | None) -> dict[str, float]:
    config = bench_config()
    # Stored the way `cxmon import` stores a backfill: big transactions, committed in a writer process.
    config = dataclasses.replace(
        config,
        store=dataclasses.replace(
            config.store,
            retention=NEVER_PURGE,
            batch_size=IMPORT_BATCH,
            max_pending=IMPORT_PENDING,
            flush_interval=1.0,
        ),
    )
    engine = Engine(
        config,
        db_path=db,
        store=db is not None,
        # Read and parsed in a child process, as `cxmon import` does.
        sources=[ProcessSource(JsonlFileSource("feed", str(path)))],
        clock="events",
        store_writer="process",
    )
    t0 = time.perf_counter()
    async with engine:
        await engine.run()
    elapsed = time.perf_counter() - t0
    events = engine.health["feed"].events_total
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "events": events,
        "seconds": elapsed,
        "events_per_s": events / elapsed,
        "series": len(engine.aggregator.series),
        "peak_rss_mb": peak_rss_mb(),
        "children_rss_mb": children.ru_maxrss / 1024,
        "cpu_s": own.ru_utime + own.ru_stime,
        "children_cpu_s": children.ru_utime + children.ru_stime,
    }


async def forecast_cost(path: Path) -> dict[str, float]:
    """The backfill of ``path`` (store off) with every staffing forecast worked out timed (CPU)."""
    from cxmon.forecast import live
    from cxmon.forecast.result import Forecast

    spent: list[float] = []
    compute = live.Forecaster._compute

    def timed(self: live.Forecaster, key: tuple[str, str, str], due: live._Due) -> Forecast:
        t0 = time.process_time()
        forecast = compute(self, key, due)
        if forecast.figures is not None:
            spent.append(time.process_time() - t0)
        return forecast

    with patch.object(live.Forecaster, "_compute", timed):
        result = await ingest(path, None)
    spent.sort()
    return {
        "events": result["events"],
        "forecasts": len(spent),
        "mean_us": sum(spent) / max(1, len(spent)) * 1e6,
        "p50_us": spent[len(spent) // 2] * 1e6 if spent else 0.0,
        "p99_us": spent[len(spent) * 99 // 100] * 1e6 if spent else 0.0,
        "forecast_cpu_s": sum(spent),
        "cpu_s": result["cpu_s"],
    }


# --------------------------------------------------------------------------- latency


class SteadySource:
    """Emits ``rate`` events/s of wall time across the series, remembering when each was handed over."""

    name = "steady"
    type = "bench"

    def __init__(self, rate: float, seconds: float, series: int) -> None:
        self.rate, self.seconds, self.series = rate, seconds, series
        self.sent: list[tuple[int, float]] = []
        """(cumulative events handed over, wall time)."""

    async def run(self, sink: Sink) -> None:
        sink.set_up(True)
        step = 0.01
        per = int(self.rate * step)
        total = 0
        t0 = time.perf_counter()
        i = 0
        while time.perf_counter() - t0 < self.seconds:
            now = time.time()
            batch = []
            for _ in range(per // 2):
                q = f"q{i % self.series:03d}"
                ch = "voice" if (i % self.series) % 2 == 0 else "chat"
                cid = f"c{i}"
                batch.append(
                    ContactEvent(ts=now, kind=EventKind.ARRIVED, contact_id=cid, channel=ch, queue=q)
                )
                batch.append(
                    ContactEvent(
                        ts=now,
                        kind=EventKind.ANSWERED,
                        contact_id=cid,
                        channel=ch,
                        queue=q,
                        wait=float(i % 90),
                    )
                )
                i += 1
            await sink.emit(batch)
            total += len(batch)
            self.sent.append((total, time.perf_counter()))
            await asyncio.sleep(max(0.0, t0 + len(self.sent) * step - time.perf_counter()))


async def latency(rate: float, seconds: float, tick: float | None = None) -> dict[str, float]:
    config = bench_config(speed="1")
    if tick is not None:
        config = dataclasses.replace(config, monitor=dataclasses.replace(config.monitor, tick=tick))
    source = SteadySource(rate, seconds, SERIES)
    engine = Engine(config, store=True, db_path=str(Path(tempfile.mkdtemp()) / "lat.db"), sources=[source])
    published: list[tuple[int, float]] = []
    engine.add_listener(lambda snap: published.append((snap.events_total, time.perf_counter())))
    async with engine:
        await engine.run()
        await asyncio.sleep(config.monitor.tick * 2)
    lat = []
    j = 0
    for count, sent_at in source.sent:
        while j < len(published) and published[j][0] < count:
            j += 1
        if j < len(published):
            lat.append(published[j][1] - sent_at)
    lat.sort()
    achieved = source.sent[-1][0] / (source.sent[-1][1] - source.sent[0][1])
    return {
        "rate": achieved,
        "tick_s": config.monitor.tick,
        "p50_ms": 1000 * lat[len(lat) // 2],
        "p99_ms": 1000 * lat[int(len(lat) * 0.99)],
        "max_ms": 1000 * lat[-1],
    }


# --------------------------------------------------------------------------- tick cost, 10,000 series


TICK_SERIES = 10_000
TICK_STEPS = 10


def tick_config(series: int = TICK_SERIES) -> Config:
    """``series`` voice queues in TICK_STEPS steps (by the queue's first digit), each step judging
    its series' wait p90 over 5 minutes: a large centre, every series judged."""
    steps = "\n".join(
        f'[[journey.steps]]\nname = "step{s}"\nservice_level_target = "20s"\n'
        f'match = [{{ channel = "voice", queue = "q{s}*" }}]\n'
        f'  [[journey.steps.thresholds]]\n  measure = "wait_p90"\n  window = "5m"\n  warn = "45s"\n'
        f'  breach = "60s"\n  clear = "50s"\n  for = "2m"\n'
        for s in range(TICK_STEPS)
    )
    names = [f"q{i:04d}" for i in range(series)]
    return loads(f'[journey]\nchannels = ["voice"]\nqueues = {json.dumps(names)}\n{steps}\n', "<bench>")


class _Fed:
    """A source the benchmark feeds by hand through the engine's batch path."""

    type = "bench"

    def __init__(self, name: str) -> None:
        self.name = name

    async def run(self, sink: Sink) -> None:
        await asyncio.Event().wait()


def recompute_mode(mode: str) -> Literal["changes", "all"]:
    """The engine's ``recompute`` named on the command line."""
    if mode == "changes":
        return "changes"
    if mode == "all":
        return "all"
    raise SystemExit(f"recompute is changes or all, not {mode!r}")


async def tick_cost(recompute: Literal["changes", "all"], ticks: int, change: float) -> dict[str, float]:
    """Live ticks at the default tick over TICK_SERIES series, ``change`` of them getting events
    before each tick; return the CPU time of the ticks (the events' own aggregation not counted)."""
    config = tick_config()
    now = [START]
    engine = Engine(config, store=False, sources=[_Fed("feed")], clock=lambda: now[0], recompute=recompute)
    names = [f"q{i:04d}" for i in range(TICK_SERIES)]
    seq = 0

    def contacts(queues: list[str], at: float) -> list[ContactEvent]:
        nonlocal seq
        out = []
        for q in queues:
            seq += 1
            cid = f"c{seq}"
            # Waits of 10-40 s, over the breach (60 s) in one series of a hundred: a few pot holes.
            wait = 90.0 if q.endswith("00") else float(10 + seq % 31)
            out.append(ContactEvent(ts=at, kind=EventKind.ARRIVED, contact_id=cid, channel="voice", queue=q))
            out.append(
                ContactEvent(
                    ts=at, kind=EventKind.ANSWERED, contact_id=cid, channel="voice", queue=q, wait=wait
                )
            )
        return out

    # Every series has some history, then a few minutes go by before measuring.
    await engine._process("feed", contacts(names, now[0]), None)
    tick = config.monitor.tick
    per_tick = max(1, int(TICK_SERIES * change))
    cursor = 0
    cpu: list[float] = []
    for i in range(ticks):
        now[0] += tick
        batch = [names[(cursor + k) % TICK_SERIES] for k in range(per_tick)]
        cursor += per_tick
        await engine._process("feed", contacts(batch, now[0]), None)
        started = time.thread_time()
        engine._tick(now[0])
        spent = time.thread_time() - started
        if i >= ticks // 5:  # past the first look at every series
            cpu.append(spent)
    cpu.sort()
    mean = sum(cpu) / len(cpu)
    return {
        "tick_s": tick,
        "p50_ms": 1000 * cpu[len(cpu) // 2],
        "p99_ms": 1000 * cpu[int(len(cpu) * 0.99)],
        "mean_ms": 1000 * mean,
        "core_share": mean / tick,
        "ticks": len(cpu),
    }


# --------------------------------------------------------------------------- memory over time


async def memory(hours: float) -> dict[str, object]:
    config = bench_config()
    db = Path(tempfile.mkdtemp()) / "mem.db"
    engine = Engine(config, db_path=str(db))
    samples: list[tuple[int, float]] = []
    next_mark = [START]

    def sample(snap: Snapshot) -> None:
        if snap.ts >= next_mark[0]:
            samples.append((int((snap.ts - START) // 60), rss_mb()))
            next_mark[0] += 600

    engine.add_listener(sample)
    async with engine:
        await engine.run(duration=hours * 3600)
    return {"samples": samples, "events": engine.latest.events_total, "series": len(engine.aggregator.series)}


# --------------------------------------------------------------------------- driver


class MemoryRun(TypedDict):
    """What the memory part's child prints: :func:`memory`'s dict, through JSON."""

    samples: list[list[float]]
    """(simulated minute, RSS MiB) every 10 simulated minutes (JSON gives the pairs as lists)."""
    events: int
    series: int


def child(args: list[str]) -> object:
    """Run this script's ``--child`` part ``args`` in a process of its own; return the JSON it prints last."""
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    doc: object = json.loads(out.stdout.strip().splitlines()[-1])
    return doc


def child_figures(args: list[str]) -> dict[str, float]:
    """:func:`child` for a part that gives figures (ingest, latency, ticks, forecast)."""
    # Those parts return dict[str, float], which comes back from JSON as it went in.
    return cast(dict[str, float], child(args))


def child_memory(args: list[str]) -> MemoryRun:
    """:func:`child` for the memory part."""
    # memory() returns a MemoryRun's keys and values (its pairs come back from JSON as lists).
    return cast(MemoryRun, child(args))


def _median(runs: list[dict[str, float]], key: str) -> float:
    return sorted(r[key] for r in runs)[len(runs) // 2]


def _spread(runs: list[dict[str, float]], key: str, scale: float = 1.0) -> str:
    """The median of ``key`` over ``runs``, with the range."""
    values = sorted(r[key] * scale for r in runs)
    return f"{values[len(values) // 2]:,.1f} ({values[0]:,.1f}–{values[-1]:,.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--ticks", type=int, default=600, help="live ticks measured over 10,000 series")
    parser.add_argument("--runs", type=int, default=3, help="runs of each throughput figure")
    parser.add_argument(
        "--parts",
        default="throughput,latency,memory",
        help="which figures: throughput, latency (and ticks), memory, forecast",
    )
    parser.add_argument(
        "--forecast-events",
        type=int,
        default=200_000,
        help="events of the backfill whose forecasts are timed",
    )
    parser.add_argument("--child", nargs="*")
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "ingest":
            result: object = asyncio.run(ingest(Path(rest[0]), rest[1] if len(rest) > 1 else None))
        elif kind == "latency":
            result = asyncio.run(
                latency(float(rest[0]), float(rest[1]), float(rest[2]) if len(rest) > 2 else None)
            )
        elif kind == "forecast":
            result = asyncio.run(forecast_cost(Path(rest[0])))
        elif kind == "ticks":
            result = asyncio.run(tick_cost(recompute_mode(rest[0]), int(rest[1]), float(rest[2])))
        else:
            result = asyncio.run(memory(float(rest[0])))
        print(json.dumps(result))
        return

    parts = set(args.parts.split(","))
    if "throughput" in parts:
        throughput(args.events, args.runs)
    if "latency" in parts:
        latency_and_ticks(args.rate, args.seconds, args.ticks, args.runs)
    if "memory" in parts:
        memory_over_time(args.hours)
    if "forecast" in parts:
        forecast_costs(args.forecast_events, args.runs)


def throughput(events: int, runs: int) -> None:
    """Print parse → aggregate (→ store) events/s, each way ``runs`` times alternately."""
    tmp = Path(tempfile.mkdtemp(prefix="cxmon-bench-"))
    data = tmp / "events.jsonl"
    t0 = time.perf_counter()
    span = generate(data, events)
    print(
        f"generated {events:,} events ({span / 3600:.1f} simulated hours, {SERIES} series) "
        f"in {time.perf_counter() - t0:.1f}s, {data.stat().st_size / 2**20:.0f} MiB of JSON lines"
    )
    # Each way is run several times, alternately: this machine's speed wanders by ±15 % from run
    # to run, so the median and the range say more than any one run.
    results: dict[str, list[dict[str, float]]] = {"store off": [], "store on ": []}
    for i in range(runs):
        for label in results:
            extra = [str(tmp / f"bench{i}.db")] if label.startswith("store on") else []
            results[label].append(child_figures(["--child", "ingest", str(data), *extra]))
    for label, tries in results.items():
        rates = sorted(r["events_per_s"] for r in tries)
        r = sorted(tries, key=lambda r: r["events_per_s"])[len(tries) // 2]
        print(
            f"parse → aggregate → {label}: {r['events']:,.0f} events in {r['seconds']:.1f}s = "
            f"{r['events_per_s']:,.0f} events/s (median of {len(tries)}: {rates[0]:,.0f}–{rates[-1]:,.0f}), "
            f"{r['series']} series, peak RSS engine {r['peak_rss_mb']:.0f} MiB, "
            f"reader/writer {r['children_rss_mb']:.0f} MiB, CPU engine {r['cpu_s']:.1f}s + "
            f"reader/writer {r['children_cpu_s']:.1f}s"
        )


def latency_and_ticks(rate: float, seconds: float, ticks_measured: int, runs: int) -> None:
    """Print the snapshot latency and the live tick cost, alternately ``runs`` times."""
    # Latency and tick cost, alternately, several runs each: medians with their ranges.
    lat: list[dict[str, float]] = []
    ticks: dict[str, list[dict[str, float]]] = {"changes": [], "all": []}
    for _ in range(runs):
        lat.append(child_figures(["--child", "latency", str(rate), str(seconds)]))
        ticks["changes"].append(child_figures(["--child", "ticks", "changes", str(ticks_measured), "0.01"]))
        ticks["all"].append(
            child_figures(["--child", "ticks", "all", str(max(10, ticks_measured // 20)), "0.01"])
        )
    print(
        f"snapshot latency at {_median(lat, 'rate'):,.0f} events/s (default tick {lat[0]['tick_s']}s), "
        f"event handed over → first snapshot with it, median of {len(lat)}: "
        f"p50 {_spread(lat, 'p50_ms')} ms, p99 {_spread(lat, 'p99_ms')} ms, max {_spread(lat, 'max_ms')} ms"
    )
    for mode, measured in ticks.items():
        what = "change-driven" if mode == "changes" else "recomputing every series (the reference)"
        print(
            f"live ticks, {TICK_SERIES:,} series, 1 % of them with events per tick, {what}, "
            f"tick {measured[0]['tick_s']}s, CPU per tick (median of {len(measured)}, "
            f"{measured[0]['ticks']:.0f} ticks each): "
            f"p50 {_spread(measured, 'p50_ms')} ms, p99 {_spread(measured, 'p99_ms')} ms, "
            f"share of one core {_spread(measured, 'core_share', 100)} %"
        )


def forecast_costs(events: int, runs: int) -> None:
    """Print the CPU time of one staffing forecast in a backfill of ``events`` events, ``runs`` times."""
    tmp = Path(tempfile.mkdtemp(prefix="cxmon-bench-"))
    data = tmp / "events.jsonl"
    generate(data, events)
    measured = [child_figures(["--child", "forecast", str(data)]) for _ in range(runs)]
    r = sorted(measured, key=lambda r: r["mean_us"])[len(measured) // 2]
    print(
        f"staffing forecasts in a backfill of {r['events']:,.0f} events ({SERIES} series): "
        f"{r['forecasts']:,.0f} worked out with the model's figures, CPU each (median of {len(measured)} "
        f"runs): mean {_spread(measured, 'mean_us')} µs, p50 {_spread(measured, 'p50_us')} µs, "
        f"p99 {_spread(measured, 'p99_us')} µs; {r['forecast_cpu_s']:.2f} s of the engine's "
        f"{r['cpu_s']:.1f} s CPU ({r['forecast_cpu_s'] / r['cpu_s'] * 100:.0f} %)"
    )


def memory_over_time(hours: float) -> None:
    """Print the engine's RSS every 10 simulated minutes over ``hours``."""
    r = child_memory(["--child", "memory", str(hours)])
    samples = r["samples"]
    print(f"memory over {hours:g} simulated hours ({r['events']:,} events, {r['series']} series):")
    print("  " + "  ".join(f"{m}m:{mb:.0f}MiB" for m, mb in samples))
    half = [mb for m, mb in samples if m >= 60]
    if len(half) >= 2:
        print(
            f"  after the 60m window is full: {half[0]:.0f} → {half[-1]:.0f} MiB "
            f"({(half[-1] - half[0]) / half[0] * 100:+.1f} %)"
        )


if __name__ == "__main__":
    main()
