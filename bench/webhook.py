"""Webhook benchmark: signed requests per second and latency percentiles from a loopback load generator.

A server process runs the real Engine (store off unless ``--store``) with a Zendesk webhook source
mounted on an aiohttp app on 127.0.0.1; this process is the load generator (aiohttp client, keep-alive
connections), so server and client each have a core. Every request is a distinct, freshly signed
``zen:event-type:ticket.created`` (a new ticket each), so every one passes the whole door: signature,
timestamp, replay memory, parsing, queue. Two runs:

- **closed loop** (``--concurrency`` workers sending as fast as answers come): requests per second;
- **open loop at a fixed rate** (``--rate``, default 1,000/s): latency percentiles, each measured from
  the moment the request was due (not when it was sent), so a stall cannot hide its own queue.

After each run the generator waits until the engine's snapshot counts every ticket (offered), and
prints how long that took. The peer, in the same run and on the same server, is a bare aiohttp
handler that checks the same signature and answers 200 with no queue and no engine: the ratio says
what the rest of the door and the queue cost.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import orjson
from aiohttp import web

SECRET = "bench-secret"
CONFIG = f"""
[monitor]
windows = ["5m"]
tick = "250ms"
queue_size = 256

[journey]
channels = ["email"]
queues = ["support"]

[[journey.steps]]
name = "resolve"
match = [{{ channel = "email" }}]

[[collectors]]
type = "webhook"
name = "zd"
adapter = "zendesk"
secret = "{SECRET}"
queue_size = 4096
queues = {{ "360001" = "support" }}
"""


# ---------------------------------------------------------------------- the server process


async def serve(store: str | None) -> None:
    """Run the engine and the HTTP app; print the port; serve until stdin closes."""
    from cxmon.config import loads
    from cxmon.engine import Engine

    engine = Engine(loads(CONFIG, "<bench>"), db_path=store, store=store is not None)
    app = web.Application()
    source = engine.sources[0]
    app.add_routes(source.http_routes())  # type: ignore[attr-defined]

    async def bare(request: web.Request) -> web.Response:
        body = await request.read()
        stamp = request.headers.get("X-Zendesk-Webhook-Signature-Timestamp", "")
        mac = hmac.new(SECRET.encode(), stamp.encode() + body, hashlib.sha256).digest()
        ok = hmac.compare_digest(
            request.headers.get("X-Zendesk-Webhook-Signature", ""), base64.b64encode(mac).decode()
        )
        return web.json_response({"ok": ok}, status=200 if ok else 401)

    async def status(_: web.Request) -> web.Response:
        snap = engine.latest
        offered = sum((s.totals.get("offered") or 0) for s in snap.series)
        return web.json_response(
            {"offered": offered, "version": snap.version, "rejected": dict(source.rejected)}  # type: ignore[attr-defined]
        )

    app.router.add_post("/bare", bare)
    app.router.add_get("/status", status)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, backlog=1024).start()
    async with engine:
        print(runner.addresses[0][1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


# ---------------------------------------------------------------------- the load generator


def signed(n: int, stamp: str) -> tuple[bytes, dict[str, str]]:
    """Ticket n's created event and its Zendesk headers (signed as Zendesk signs)."""
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = orjson.dumps(
        {
            "type": "zen:event-type:ticket.created",
            "account_id": 12514403,
            "id": f"bench-{n}",
            "time": ts,
            "zendesk_event_version": "2022-11-06",
            "subject": f"zen:ticket:{n}",
            "detail": {
                "id": str(n),
                "created_at": ts,
                "group_id": "360001",
                "requester_id": str(7000 + n % 997),
                "status": "NEW",
                "via": {"channel": "email"},
            },
            "event": {"current": {"status": "NEW"}},
        }
    )
    mac = base64.b64encode(hmac.new(SECRET.encode(), stamp.encode() + body, hashlib.sha256).digest()).decode()
    return body, {
        "Content-Type": "application/json",
        "X-Zendesk-Webhook-Signature": mac,
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def closed_loop(
    url: str, requests: list[tuple[bytes, dict[str, str]]], workers: int
) -> tuple[float, list[float], int]:
    """Send every request with ``workers`` concurrent senders; return (seconds, latencies, failures)."""
    latencies: list[float] = []
    failures = 0
    it = iter(requests)
    conn = aiohttp.TCPConnector(limit=workers, force_close=False)
    async with aiohttp.ClientSession(connector=conn) as http:

        async def worker() -> None:
            nonlocal failures
            for body, headers in it:
                t = time.perf_counter()
                async with http.post(url, data=body, headers=headers) as r:
                    await r.read()
                    failures += r.status != 200
                latencies.append(time.perf_counter() - t)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        return time.perf_counter() - start, latencies, failures


async def open_loop(
    url: str, requests: list[tuple[bytes, dict[str, str]]], rate: float
) -> tuple[list[float], int, float]:
    """Send request i at start + i/rate; latency from that due time. Returns (latencies, failures, lag)."""
    latencies: list[float] = []
    failures = 0
    conn = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=conn) as http:
        start = time.perf_counter() + 0.05
        max_lag = 0.0

        async def one(i: int, body: bytes, headers: dict[str, str]) -> None:
            nonlocal failures
            due = start + i / rate
            async with http.post(url, data=body, headers=headers) as r:
                await r.read()
                failures += r.status != 200
            latencies.append(time.perf_counter() - due)

        tasks = []
        for i, (body, headers) in enumerate(requests):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                max_lag = max(max_lag, -delay)
            tasks.append(asyncio.create_task(one(i, body, headers)))
        await asyncio.gather(*tasks)
        return latencies, failures, max_lag


async def offered(base: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(base + "/status") as r:
        return float((await r.json())["offered"])


async def drain(base: str, target: float, timeout: float = 60.0) -> float:
    """Seconds until the snapshot counts ``target`` tickets."""
    start = time.perf_counter()
    while await offered(base) < target:
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"only {await offered(base):.0f} of {target:.0f} tickets reached the snapshot")
        await asyncio.sleep(0.05)
    return time.perf_counter() - start


async def generate(args: argparse.Namespace) -> None:
    cmd = [sys.executable, __file__, "--serve"] + (["--store", args.store] if args.store else [])
    server = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdin is not None
    port = int(server.stdout.readline())
    base = f"http://127.0.0.1:{port}"
    try:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        n = args.requests
        batches = [[signed(k * n + i, stamp) for i in range(n)] for k in range(4)]
        # Warm up both paths (connections, caches), not measured.
        await closed_loop(base + "/bare", [signed(10**9 + i, stamp) for i in range(500)], args.concurrency)
        await closed_loop(
            base + "/webhooks/zd", [signed(2 * 10**9 + i, stamp) for i in range(500)], args.concurrency
        )
        await drain(base, 500)

        secs_bare, lat_bare, fail_bare = await closed_loop(base + "/bare", batches[0], args.concurrency)
        secs, lat, fail = await closed_loop(base + "/webhooks/zd", batches[1], args.concurrency)
        drained = await drain(base, 500 + n)
        print(f"closed loop, {args.concurrency} connections, {n:,} signed requests each")
        print(
            f"  cxmon webhook: {n / secs:8,.0f} req/s  p50 {pct(lat, 0.5) * 1e3:6.1f} ms  "
            f"p99 {pct(lat, 0.99) * 1e3:6.1f} ms  non-200: {fail}  all in the snapshot {drained:.2f} s later"
        )
        print(
            f"  bare aiohttp (signature check only): {n / secs_bare:8,.0f} req/s  "
            f"p50 {pct(lat_bare, 0.5) * 1e3:6.1f} ms  p99 {pct(lat_bare, 0.99) * 1e3:6.1f} ms  "
            f"non-200: {fail_bare}"
        )
        print(f"  cxmon / bare: {(n / secs) / (n / secs_bare):.2f}")

        lat_o, fail_o, lag = await open_loop(base + "/webhooks/zd", batches[2], args.rate)
        drained = await drain(base, 500 + 2 * n)
        lat_ob, fail_ob, lag_b = await open_loop(base + "/bare", batches[3], args.rate)
        print(f"open loop at {args.rate:,.0f} req/s, {n:,} requests (latency from the due time)")
        print(
            f"  cxmon webhook: p50 {pct(lat_o, 0.5) * 1e3:6.1f} ms  p90 {pct(lat_o, 0.9) * 1e3:6.1f} ms  "
            f"p99 {pct(lat_o, 0.99) * 1e3:6.1f} ms  max {max(lat_o) * 1e3:6.1f} ms  non-200: {fail_o}  "
            f"generator lag max {lag * 1e3:.1f} ms  all in the snapshot {drained:.2f} s later"
        )
        print(
            f"  bare aiohttp: p50 {pct(lat_ob, 0.5) * 1e3:6.1f} ms  p99 {pct(lat_ob, 0.99) * 1e3:6.1f} ms  "
            f"non-200: {fail_ob}  generator lag max {lag_b * 1e3:.1f} ms"
        )
        print(
            f"  p99 cxmon / bare: {pct(lat_o, 0.99) / pct(lat_ob, 0.99):.2f}   "
            f"(mean {statistics.mean(lat_o) * 1e3:.1f} ms)"
        )
    finally:
        server.stdin.close()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000, help="requests per run")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop connections")
    parser.add_argument("--rate", type=float, default=1000.0, help="open-loop requests per second")
    parser.add_argument("--store", help="history database for the server (default: no store)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.store))
    else:
        asyncio.run(generate(args))


if __name__ == "__main__":
    main()
