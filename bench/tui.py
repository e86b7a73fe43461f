"""Dashboard benchmark: CPU used by the app with 300 series updating every second, and snapshot-to-frame time.

The app runs headless (Textual's test driver still lays out and renders every frame) at 160×48 on a
synthetic feed. Snapshots are built before the measured interval, so the CPU figure is the app's own:
receiving, diffing, repainting. Target: under 25 % of one core.

    .venv/bin/python bench/tui.py            # 60 s, as the issue asks
    .venv/bin/python bench/tui.py --seconds 10 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path
from types import MappingProxyType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cxmon.config import default_config_path, load
from cxmon.measures import INSTANT
from cxmon.snapshot import (
    RESOLUTION_BUCKETS,
    TOTALS,
    WAIT_BUCKETS,
    Histogram,
    SeriesFigures,
    Snapshot,
    SourceStatus,
    State,
    StepStatus,
)
from cxmon.tui.app import CxmonApp
from cxmon.tui.feed import Feed, MemoryFeed
from cxmon.tui.format import FIGURE_MEASURES, SPARK_MEASURES

CHANNELS = ("voice", "chat", "email", "sms", "social")
WINDOWS = (300.0, 900.0, 3600.0)
START = 1767600000.0


def synthetic_snapshots(count: int, series_count: int, seed: int = 1) -> list[Snapshot]:
    """Build ``count`` consecutive snapshots, one a second, each with every series' figures changed."""
    config = load(default_config_path())
    rng = random.Random(seed)
    steps = [s.name for s in config.steps]
    keys = [(steps[i % len(steps)], CHANNELS[i % len(CHANNELS)], f"q{i:03d}") for i in range(series_count)]
    level = {k: rng.uniform(0.5, 1.0) for k in keys}
    history: dict[tuple[str, str, str], list[tuple[float, MappingProxyType[str, float | None]]]] = {
        k: [] for k in keys
    }
    wait_h = Histogram(WAIT_BUCKETS, (0,) * (len(WAIT_BUCKETS) + 1), 0.0, 0)
    res_h = Histogram(RESOLUTION_BUCKETS, (0,) * (len(RESOLUTION_BUCKETS) + 1), 0.0, 0)
    out = []
    for n in range(count):
        ts = START + 3600.0 + n
        series = []
        for k in keys:
            level[k] = min(1.0, max(0.0, level[k] + rng.uniform(-0.05, 0.05)))
            x = level[k]

            def figures(scale: float, x: float = x) -> MappingProxyType[str, float | None]:
                return MappingProxyType(
                    {
                        m: (x if m.endswith(("level", "rate")) else x * 100 * scale + rng.random())
                        for m in FIGURE_MEASURES
                    }
                )

            windows = MappingProxyType({w: figures(w / 300.0) for w in WINDOWS})
            if n % 60 == 0 or not history[k]:
                history[k] = [
                    *history[k][-59:],
                    (ts, MappingProxyType({m: windows[300.0][m] for m in SPARK_MEASURES})),
                ]
            state = State.POTHOLE if x < 0.1 else State.WATCH if x < 0.25 else State.OK
            series.append(
                SeriesFigures(
                    step=k[0],
                    channel=k[1],
                    queue=k[2],
                    windows=windows,
                    instant=MappingProxyType({m: rng.random() * 10 for m in INSTANT}),
                    totals=MappingProxyType(dict.fromkeys(TOTALS, n)),
                    wait_histogram=wait_h,
                    resolution_histogram=res_h,
                    state=state,
                    reason=f"service level {x:.0%}",
                    history=tuple(history[k]),
                )
            )
        step_states = []
        for s in config.steps:
            members = [f for f in series if f.step == s.name]
            worst = max(members, key=lambda f: f.state.severity)
            step_states.append(
                StepStatus(
                    name=s.name,
                    label=s.label,
                    state=worst.state,
                    reason=worst.reason,
                    since=START,
                    moment_of_truth=s.moment_of_truth,
                    headline_measure="service_level",
                    headline_value=min(f.windows[300.0]["service_level"] or 0.0 for f in members),
                    trend=rng.uniform(-0.02, 0.02),
                    affected=len(members),
                )
            )
        out.append(
            Snapshot(
                version=n + 1,
                ts=ts,
                windows=WINDOWS,
                service_level_formula="excl_short_abandons",
                steps=tuple(step_states),
                series=tuple(series),
                sources=(SourceStatus("synthetic", "bench", True, False, n * 300, 0, ts, 300.0, 0.0),),
                events_total=n * 300,
                events_per_second=300.0,
            )
        )
    return out


class TimedApp(CxmonApp):
    """The dashboard, noting when each snapshot's frame has been painted."""

    def __init__(self, feed: Feed) -> None:
        super().__init__(feed)
        self.painted: dict[int, float] = {}

    def watch_snapshot(self, snap: Snapshot) -> None:
        super().watch_snapshot(snap)
        self.call_after_refresh(lambda: self.painted.setdefault(snap.version, time.perf_counter()))


async def measure(seconds: int, series_count: int) -> dict[str, float]:
    """Run the app on the synthetic feed for ``seconds`` and return the figures."""
    snaps = synthetic_snapshots(seconds + 1, series_count)
    feed = MemoryFeed(load(default_config_path()), snaps[0])
    app = TimedApp(feed)
    published: dict[int, float] = {}
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(1.0)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for i, snap in enumerate(snaps[1:], start=1):
            published[snap.version] = time.perf_counter()
            feed.publish(snap)
            # Sleep to a one-second grid so the rate stays 1/s whatever the app costs.
            await asyncio.sleep(max(0.0, wall0 + i - time.perf_counter()))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        await pilot.pause(0.5)
    latencies = [app.painted[v] - t for v, t in published.items() if v in app.painted]
    latencies.sort()
    return {
        "series": series_count,
        "seconds": round(wall, 1),
        "cpu_percent_of_one_core": round(100.0 * cpu / wall, 1),
        "frames_painted": len(latencies),
        "snapshot_to_frame_ms_median": round(1000 * statistics.median(latencies), 1),
        "snapshot_to_frame_ms_p90": round(1000 * latencies[int(0.9 * (len(latencies) - 1))], 1),
        "snapshot_to_frame_ms_max": round(1000 * latencies[-1], 1),
    }


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--series", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(measure(args.seconds, args.series))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:32} {value}")
    ok = result["cpu_percent_of_one_core"] < 25.0
    print(f"target < 25 % of one core: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
