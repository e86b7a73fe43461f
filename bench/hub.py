"""Hub benchmark: fan-out latency to 1, 50 and 200 watchers, bytes per tick (delta vs full), hub CPU.

The hub runs in this process over a feed of pre-built snapshots (300 series: every measure in three
windows, the instant measures, histograms and an hour of minute history each). The watchers run in
a child process, so they do not share the hub's event loop; both processes read the same monotonic
clock. Latency is from handing the snapshot to the hub to the moment the last watcher has received
its delta. Each tick re-measures 5 % of the series (a busy floor); a quiet tick (only time and the
sources' counters move) is measured for size. Targets: p99 < 100 ms to 200 watchers, a quiet delta
under 5 % of a full snapshot. The loop's longest stall is measured while the watchers connect (each
needs the full snapshot) and during the ticks, against encoding the full snapshot whole.

    .venv/bin/python bench/hub.py                 # 1, 50 and 200 watchers, 60 ticks each
    .venv/bin/python bench/hub.py --ticks 20 --json
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import MappingProxyType
from typing import TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cxmon.hub.deflate import deflate
from cxmon.hub.full_frame import SNAPSHOT_LEVEL, FullFrames
from cxmon.hub.protocol import SUBPROTOCOL, delta_frame, snapshot_frame
from cxmon.hub.server import DELTA_LEVEL, Hub
from cxmon.measures import INSTANT, WINDOWED
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
from cxmon.tui.feed import MemoryFeed
from tests.helpers import default_config

WINDOWS = (300.0, 900.0, 3600.0)
START = 1767600000.0
CHANNELS = ("voice", "chat", "email", "sms", "social")
HISTORY = ("wait_p90", "service_level", "offered", "abandoned", "escalations", "csat")
VERSION_RE = re.compile(rb'"version":(\d+)')


def _figures(rng: random.Random) -> MappingProxyType[str, float | None]:
    return MappingProxyType({m: round(rng.uniform(0, 500), 3) for m in WINDOWED})


def _series(rng: random.Random, key: tuple[str, str, str], ts: float) -> SeriesFigures:
    def hist(bounds: tuple[float, ...]) -> Histogram:
        counts = tuple(rng.randrange(0, 500) for _ in range(len(bounds) + 1))
        return Histogram(bounds, counts, float(sum(counts) * 30), sum(counts))

    history = tuple(
        (ts - 60.0 * (60 - i), MappingProxyType({m: round(rng.uniform(0, 300), 3) for m in HISTORY}))
        for i in range(60)
    )
    return SeriesFigures(
        step=key[0],
        channel=key[1],
        queue=key[2],
        windows=MappingProxyType({w: _figures(rng) for w in WINDOWS}),
        instant=MappingProxyType({m: float(rng.randrange(0, 30)) for m in INSTANT}),
        totals=MappingProxyType({t: rng.randrange(0, 10**6) for t in TOTALS}),
        wait_histogram=hist(WAIT_BUCKETS),
        resolution_histogram=hist(RESOLUTION_BUCKETS),
        state=State.OK,
        reason="",
        history=history,
    )


def base_snapshot(series_count: int, seed: int = 1) -> Snapshot:
    """One engine-like snapshot with ``series_count`` series."""
    config = default_config()
    rng = random.Random(seed)
    steps = [s.name for s in config.steps]
    keys = [(steps[i % len(steps)], CHANNELS[i % len(CHANNELS)], f"q{i:03d}") for i in range(series_count)]
    ts = START
    return Snapshot(
        version=1,
        ts=ts,
        windows=WINDOWS,
        service_level_formula="excl_short_abandons",
        steps=tuple(
            StepStatus(s.name, s.label, State.OK, "", START, s.moment_of_truth, "wait_p90", 30.0, 0.0, 12)
            for s in config.steps
        ),
        series=tuple(_series(rng, k, ts) for k in keys),
        sources=(SourceStatus("pbx", "queue_log", True, False, 0, 0, ts, 50.0, 0.0),),
    )


def next_snapshot(prev: Snapshot, rng: random.Random, changed: float) -> Snapshot:
    """The next tick (0.5 s later): ``changed`` of the series re-measured, time and counters moved."""
    ts = prev.ts + 0.5
    series = list(prev.series)
    for i in rng.sample(range(len(series)), round(changed * len(series))):
        s = series[i]
        series[i] = dataclasses.replace(
            s,
            windows=MappingProxyType({w: _figures(rng) for w in WINDOWS}),
            instant=MappingProxyType({**s.instant, "waiting_now": float(rng.randrange(0, 30))}),
            totals=MappingProxyType({**s.totals, "offered": s.totals["offered"] + 1}),
        )
    src = prev.sources[0]
    source = dataclasses.replace(src, events_total=src.events_total + 25, last_event_ts=ts)
    return dataclasses.replace(
        prev,
        version=prev.version + 1,
        ts=ts,
        series=tuple(series),
        sources=(source,),
        events_total=prev.events_total + 25,
    )


# ---------------------------------------------------------------------------------------- watchers


async def _watchers(port: int, count: int, last: int) -> None:
    from websockets.asyncio.client import ClientConnection, connect
    from websockets.typing import Subprotocol

    arrivals: list[dict[int, float]] = [{} for _ in range(count)]
    conns: list[ClientConnection] = []
    for _ in range(count):
        conns.append(
            await connect(
                f"ws://127.0.0.1:{port}",
                subprotocols=[Subprotocol(SUBPROTOCOL)],
                max_size=None,
                ping_interval=None,
                open_timeout=120,
            )
        )
    print("ready", flush=True)

    async def one(i: int) -> None:
        got = arrivals[i]
        while True:
            # Bytes as received: the watchers here only note when each version arrived.
            data = await conns[i].recv(decode=False)
            found = VERSION_RE.search(data[:200])
            if found:
                version = int(found.group(1))
                got[version] = time.monotonic()
                if version >= last:
                    break
        await conns[i].close()

    await asyncio.gather(*(one(i) for i in range(count)))
    print(json.dumps([{str(k): v for k, v in a.items()} for a in arrivals]), flush=True)


# ---------------------------------------------------------------------------------------- the hub


async def _loop_lag(out: list[float]) -> None:
    """Record how late each 10 ms sleep wakes (ms): the longest the loop was held by anything."""
    while True:
        t0 = time.monotonic()
        await asyncio.sleep(0.01)
        out.append((time.monotonic() - t0 - 0.01) * 1000.0)


class Fanout(TypedDict):
    """One run's figures: the hub's latency and the watchers', loop lag, resyncs."""

    hub_p50_ms: float
    hub_p99_ms: float
    hub_within_tick: int
    watchers: int
    compression: str
    """``shared`` or ``per-connection``."""
    ticks: int
    complete_ticks: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    hub_cpu_pct: float
    resyncs: int
    full_builds_on_connect: int
    connect_lag_max_ms: float
    tick_lag_max_ms: float


async def run(watchers: int, snaps: list[Snapshot], tick: float, shared: bool = True) -> Fanout:
    feed = MemoryFeed(default_config(), snaps[0])
    connect_lag: list[float] = []
    tick_lag: list[float] = []
    async with Hub(feed, port=0, ping_interval=None, shared_deflate=shared) as hub:
        lag = asyncio.create_task(_loop_lag(connect_lag))
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", str(hub.port), str(watchers), str(snaps[-1].version)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        line = await asyncio.to_thread(child.stdout.readline)
        if line.strip() != "ready":
            child.kill()
            raise SystemExit(f"the watchers did not all connect ({line!r})")
        for _ in range(400):
            if len(hub.watchers) == watchers and all(w.version == 1 for w in hub.watchers):
                break
            await asyncio.sleep(0.05)
        lag.cancel()
        builds = hub.full.builds
        lag = asyncio.create_task(_loop_lag(tick_lag))
        sent: dict[int, float] = {}
        handed: list[float] = []
        cpu0, wall0 = time.process_time(), time.monotonic()
        for snap in snaps[1:]:
            t0 = sent[snap.version] = time.monotonic()
            feed.publish(snap)
            # When every watcher's writer has handed this delta to its socket (the hub's own part).
            deadline = t0 + tick
            while time.monotonic() < deadline:
                if all(w.version >= snap.version for w in hub.watchers):
                    handed.append((time.monotonic() - t0) * 1000.0)
                    break
                await asyncio.sleep(0.001)
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
        out = await asyncio.to_thread(child.stdout.read)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        lag.cancel()
        child.wait()
        resyncs = hub.stats.resyncs_total
    arrivals = json.loads(out.strip().splitlines()[-1])
    lat = []
    for version, t0 in sent.items():
        times = [a.get(str(version)) for a in arrivals]
        if all(t is not None for t in times):
            lat.append((max(times) - t0) * 1000.0)
    lat.sort()
    handed.sort()
    return {
        "hub_p50_ms": statistics.median(handed) if handed else float("nan"),
        "hub_p99_ms": handed[min(len(handed) - 1, round(0.99 * (len(handed) - 1)))]
        if handed
        else float("nan"),
        "hub_within_tick": len(handed),
        "watchers": watchers,
        "compression": "shared" if shared else "per-connection",
        "ticks": len(sent),
        "complete_ticks": len(lat),
        "p50_ms": statistics.median(lat),
        "p99_ms": lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))],
        "max_ms": lat[-1],
        "hub_cpu_pct": 100.0 * cpu / wall,
        "resyncs": resyncs,
        "full_builds_on_connect": builds,
        "connect_lag_max_ms": max(connect_lag, default=0.0),
        "tick_lag_max_ms": max(tick_lag, default=0.0),
    }


async def _full_frames(base: Snapshot, busy: Snapshot) -> tuple[float, float, float]:
    """Wall ms of FullFrames building ``base`` from nothing and then ``busy`` (5 % changed), and the
    longest the loop was held meanwhile."""
    full = FullFrames()
    lags: list[float] = []
    lag = asyncio.create_task(_loop_lag(lags))
    await asyncio.sleep(0.01)
    t0 = time.monotonic()
    await full.frame(lambda: base)
    first = (time.monotonic() - t0) * 1000.0
    t0 = time.monotonic()
    await full.frame(lambda: busy)
    again = (time.monotonic() - t0) * 1000.0
    lag.cancel()
    return first, again, max(lags, default=0.0)


def sizes(series_count: int) -> dict[str, float]:
    """Bytes of a full snapshot, a quiet tick's delta and a busy tick's, raw and deflated."""
    rng = random.Random(2)
    base = base_snapshot(series_count)
    quiet = next_snapshot(base, rng, 0.0)
    busy = next_snapshot(base, rng, 0.05)
    full = snapshot_frame(base)
    dq, db = delta_frame(base, quiet), delta_frame(base, busy)

    def deflated(b: bytes, level: int = DELTA_LEVEL) -> int:
        return len(deflate(b, level))

    t0 = time.perf_counter()
    for _ in range(20):
        delta_frame(base, busy)
    encode_busy = (time.perf_counter() - t0) / 20 * 1000
    t0 = time.perf_counter()
    for _ in range(5):
        snapshot_frame(base)
    encode_full = (time.perf_counter() - t0) / 5 * 1000
    first, again, slice_max = asyncio.run(_full_frames(base, busy))
    return {
        "full_build_ms": first,
        "full_rebuild_ms": again,
        "full_build_lag_max_ms": slice_max,
        "full_bytes": len(full),
        "full_deflated": deflated(full, SNAPSHOT_LEVEL),
        "quiet_delta_bytes": len(dq),
        "quiet_delta_deflated": deflated(dq),
        "quiet_ratio_pct": 100.0 * len(dq) / len(full),
        "busy_delta_bytes": len(db),
        "busy_delta_deflated": deflated(db),
        "busy_ratio_pct": 100.0 * len(db) / len(full),
        "encode_full_ms": encode_full,
        "encode_busy_delta_ms": encode_busy,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--child", nargs=3, type=int, metavar=("PORT", "COUNT", "LAST"), help=argparse.SUPPRESS
    )
    parser.add_argument("--series", type=int, default=300)
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--tick", type=float, default=0.5, help="seconds between snapshots (default 0.5)")
    parser.add_argument("--watchers", default="1,50,200")
    parser.add_argument(
        "--peer",
        default="200",
        help="watcher counts also run with per-connection compression, the peer (default 200; '' none)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.child:
        asyncio.run(_watchers(*args.child))
        return 0
    rng = random.Random(3)
    snaps = [base_snapshot(args.series)]
    for _ in range(args.ticks):
        snaps.append(next_snapshot(snaps[-1], rng, 0.05))
    size = sizes(args.series)
    results = [asyncio.run(run(int(n), snaps, args.tick)) for n in args.watchers.split(",")]
    results += [asyncio.run(run(int(n), snaps, args.tick, shared=False)) for n in args.peer.split(",") if n]
    if args.json:
        print(json.dumps({"sizes": size, "fanout": results}, indent=2))
        return 0
    s = size
    print(
        f"{args.series} series; full snapshot {s['full_bytes']:,} B ({s['full_deflated']:,} deflated), ",
        end="",
    )
    print(f"encoded whole in {s['encode_full_ms']:.1f} ms (the loop held throughout)")
    print(
        f"full frame built in slices (and deflated in a thread) in {s['full_build_ms']:.1f} ms, "
        f"again after a busy tick in {s['full_rebuild_ms']:.1f} ms; "
        f"longest loop stall meanwhile {s['full_build_lag_max_ms']:.1f} ms"
    )
    print(
        f"quiet tick delta {s['quiet_delta_bytes']:,} B ({s['quiet_delta_deflated']:,} deflated) = ", end=""
    )
    print(f"{s['quiet_ratio_pct']:.2f} % of full (target < 5 %)")
    print(f"busy tick delta (5 % of series) {s['busy_delta_bytes']:,} B ", end="")
    print(f"({s['busy_delta_deflated']:,} deflated) = {s['busy_ratio_pct']:.1f} % of full, ", end="")
    print(f"encoded in {s['encode_busy_delta_ms']:.1f} ms")
    print("latency from snapshot to: the hub's last send (hub) / the last watcher's receipt (recv), ms")
    head = (
        "deflate",
        "watchers",
        "ticks",
        "hub p50",
        "hub p99",
        "recv p50",
        "recv p99",
        "recv max",
        "hub CPU",
        "resyncs",
        "builds",
        "conn lag",
        "tick lag",
    )
    print(" ".join(f"{h:>8}" for h in head))
    for r in results:
        ticks = f"{r['complete_ticks']}/{r['ticks']}"
        print(f"{'shared' if r['compression'] == 'shared' else 'per-conn':>8} ", end="")
        print(f"{r['watchers']:>8} {ticks:>8} {r['hub_p50_ms']:>8.1f} {r['hub_p99_ms']:>8.1f} ", end="")
        print(f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['max_ms']:>8.1f} ", end="")
        print(f"{r['hub_cpu_pct']:>7.1f}% {r['resyncs']:>8} {r['full_builds_on_connect']:>8} ", end="")
        print(f"{r['connect_lag_max_ms']:>8.1f} {r['tick_lag_max_ms']:>8.1f}")
    print("deflate: shared = each frame deflated once for every watcher; per-conn = the peer, each")
    print("connection deflating its own copy (context takeover, level 1). builds: full snapshots encoded")
    print("while the watchers connected; conn/tick lag: the longest the hub's event loop was held (ms)")
    print("while they connected / during the ticks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
