"""Exporter benchmark: render cost, scrape latency and size, and event-loop stalls at 1k and 10k series."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cxmon.config import Config, loads
from cxmon.exposition import render, render_payload, render_with_client
from cxmon.http_server import start_http
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

STEPS = 10
CHANNELS = ("voice", "chat", "email", "sms", "social")
WINDOWS = (300.0, 900.0, 3600.0)


def bench_config(series: int) -> Config:
    """A config whose known labels cover ``series`` distinct (step, channel, queue) combinations."""
    queues = [f"q{i}" for i in range(max(series // (STEPS * len(CHANNELS)), 1))]
    steps = "\n".join(
        f'[[journey.steps]]\nname = "s{i}"\nmatch = [{{ channel = "*", queue = "q*" }}]\n'
        for i in range(STEPS)
    )
    return loads(
        f"[journey]\nchannels = {list(CHANNELS)!r}\nqueues = {queues!r}\n{steps}".replace("'", '"'),
        "<bench>",
    )


def bench_snapshot(config: Config, series: int, version: int = 1) -> Snapshot:
    """A snapshot with ``series`` series, every measure and both histograms filled."""
    figures = MappingProxyType(
        {
            "offered": 120.0 + version,
            "answered": 100.0,
            "abandoned": 20.0,
            "short_abandoned": 4.0,
            "lost": 0.0,
            "service_level": 0.8,
            "asa": 14.0,
            "wait_p50": 9.0,
            "wait_p90": 41.0,
            "wait_p99": 95.0,
            "abandon_rate": 0.14,
            "resolution_p50": 300.0,
            "resolution_p90": 900.0,
            "escalations": 5.0,
            "escalation_rate": 0.05,
            "transfers": 2.0,
            "reopen_rate": 0.01,
            "csat": 4.2,
            "resolved": 90.0,
            "feedback": 30.0,
        }
    )
    windows = MappingProxyType(dict.fromkeys(WINDOWS, figures))
    instant = MappingProxyType({"waiting_now": 4.0, "longest_wait_now": 33.0, "agents_staffed": 10.0})
    totals = MappingProxyType({k: 1000 + version for k in TOTALS})
    wait = Histogram(
        WAIT_BUCKETS, tuple(range(len(WAIT_BUCKETS) + 1)), 12345.0, sum(range(len(WAIT_BUCKETS) + 1))
    )
    res = Histogram(RESOLUTION_BUCKETS, tuple([3] * (len(RESOLUTION_BUCKETS) + 1)), 99999.0, 45)
    _, queues = config.channels, sorted(config.queues)
    rows = []
    for i in range(series):
        step = f"s{i % STEPS}"
        channel = CHANNELS[(i // STEPS) % len(CHANNELS)]
        queue = queues[i // (STEPS * len(CHANNELS)) % len(queues)]
        rows.append(SeriesFigures(step, channel, queue, windows, instant, totals, wait, res, State.OK, ""))
    steps = tuple(
        StepStatus(f"s{i}", f"S{i}", State.OK, "", 0.0, False, "wait_p90", 41.0, 0.0, 10)
        for i in range(STEPS)
    )
    src = (SourceStatus("sim", "simulator", True, False, 10**6, 3, 1.7e9, 500.0, 0.0),)
    return Snapshot(version, 1.7e9 + version, WINDOWS, "excl_short_abandons", steps, tuple(rows), src)


class Feed:
    """Stands in for the engine: ``latest``, ``config`` and listeners."""

    def __init__(self, config: Config, snap: Snapshot) -> None:
        self.config = config
        self.latest = snap
        self.listeners: list[Callable[[Snapshot], None]] = []

    def add_listener(self, fn: Callable[[Snapshot], None]) -> None:
        self.listeners.append(fn)

    def publish(self, snap: Snapshot) -> None:
        self.latest = snap
        for fn in self.listeners:
            fn(snap)


class StallMeter:
    """A task on the loop that sleeps 1 ms at a time and records how late it wakes up."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.001)
            self.worst = max(self.worst, time.perf_counter() - t0 - 0.001)

    def __enter__(self) -> StallMeter:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


SCRAPER = """
import http.client, json, sys, time
port, n, gz = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "gzip"
out = []
for _ in range(n):
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"} if gz else {})
    body = conn.getresponse().read()
    conn.close()
    out.append((time.perf_counter() - t0, len(body)))
print(json.dumps(out))
"""


async def scrape(port: int, n: int, gzip: bool) -> list[tuple[float, int]]:
    """Scrape ``n`` times from another process (as Prometheus would): [(seconds, bytes)]."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SCRAPER,
        str(port),
        str(n),
        "gzip" if gzip else "identity",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    return [(float(s), int(b)) for s, b in json.loads(out)]


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


async def bench_size(series: int, repeat: int, reference: bool) -> None:
    config = bench_config(series)
    snap = bench_snapshot(config, series)
    body = render(snap, config)
    lines = body.count(b"\n")
    renders = timed(lambda: render(snap, config), repeat)
    print(f"\n== {series:,} series ({lines:,} lines, {len(body) / 1e6:.1f} MB)")
    print(f"render (fast writer)                : median {statistics.median(renders) * 1e3:8.1f} ms")
    payloads = timed(lambda: render_payload(snap, config), 1)
    print(f"render + gzip (what the thread does): {payloads[0] * 1e3:8.1f} ms")
    if reference:
        ref = timed(lambda: render_with_client(snap, config), 1)
        print(f"render (prometheus-client generate_latest): {ref[0] * 1e3:8.1f} ms (reference)")

    feed = Feed(config, snap)
    services = await start_http(feed, "127.0.0.1", 0)
    server = services.exporter
    try:
        await server.body()  # first render
        # Scrapes of cached bytes, from another process, while a meter watches the loop.
        for gzip in (False, True):
            with StallMeter() as meter:
                results = await scrape(services.port, repeat, gzip)
                await asyncio.sleep(0.01)
            lat = [r[0] for r in results]
            kind = "gzip" if gzip else "identity"
            print(
                f"scrape latency, {kind:8} (cached)  : median {statistics.median(lat) * 1e3:8.1f} ms,"
                f" max {max(lat) * 1e3:.1f} ms, {results[0][1]:,} bytes on the wire"
            )
            print(f"longest loop stall during scrapes   : {meter.worst * 1e3:8.1f} ms")

        # New snapshots re-render in the worker thread; the loop keeps ticking.
        fresh = [bench_snapshot(config, series, v) for v in range(2, 2 + 3)]  # built off the clock
        with StallMeter() as meter:
            before = server.renders
            for v, new in enumerate(fresh, start=2):
                feed.publish(new)
                async with asyncio.timeout(120):
                    while server.renders < before + (v - 1):
                        await asyncio.sleep(0.001)
            await asyncio.sleep(0.01)
        print(f"longest loop stall during renders   : {meter.worst * 1e3:8.1f} ms")

        # For contrast: rendering on the loop itself.
        with StallMeter() as meter:
            await asyncio.sleep(0.005)
            render(snap, config)
            await asyncio.sleep(0.005)
        print(f"(render ON the loop would stall it  : {meter.worst * 1e3:8.1f} ms)")
    finally:
        await services.aclose()


async def bench_per_tick(repeat: int) -> None:
    """Render cost per tick for a journey the size of config/default.toml, on the real engine if it runs."""
    root = Path(__file__).resolve().parents[1]
    snap: Snapshot | None = None
    config: Config | None = None
    try:
        import tomllib

        from cxmon.config import validate
        from cxmon.engine import Engine

        raw = tomllib.loads((root / "config" / "default.toml").read_text())
        raw["collectors"][0].update(speed="max", duration="30m")
        config = validate(raw)
        async with Engine(config, store=False) as engine:
            await engine.run()
            snap = engine.latest
        events = snap.events_total
    except Exception as exc:  # the bench still reports the synthetic figures
        print(f"\n(engine run unavailable: {exc}; using a synthetic snapshot)")
        config = bench_config(60)
        snap = bench_snapshot(config, 60)
        events = 0
    assert snap is not None and config is not None
    ticks = timed(lambda: render(snap, config), repeat)
    med = statistics.median(ticks)
    tick = config.monitor.tick
    print(f"\n== per tick, default journey ({len(snap.series)} series, {events:,} events simulated)")
    share = med / tick * 100
    print(
        f"render per tick                     : median {med * 1e3:8.2f} ms ({share:.2f} % of a {tick}s tick)"
    )
    print(
        "cost per event of keeping metrics   : none (metrics are rendered from the snapshot, not per event)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reference", action="store_true", help="also time prometheus-client's writer")
    args = parser.parse_args()
    for n in args.series:
        await bench_size(n, args.repeat, args.reference)
    await bench_per_tick(max(args.repeat, 20))


if __name__ == "__main__":
    asyncio.run(main())
