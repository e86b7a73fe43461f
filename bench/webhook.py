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
import collections
import hashlib
import hmac
import os
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
    from collectors.webhook import WebhookSource
    from cxmon.config import loads
    from cxmon.engine import Engine

    engine = Engine(loads(CONFIG, "<bench>"), db_path=store, store=store is not None)
    app = web.Application()
    source = engine.sources[0]
    assert isinstance(source, WebhookSource)
    app.add_routes(source.http_routes())

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
            {
                "offered": offered,
                "version": snap.version,
                "rejected": dict(source.rejected),
                "cpu": time.process_time(),
            }
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


def raw_request(path: str, port: int, body: bytes, headers: dict[str, str]) -> bytes:
    """The whole HTTP/1.1 request as bytes (built before the clock starts)."""
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body


class Connection(asyncio.Protocol):
    """One keep-alive connection of the load generator: a request is written whole, its answer read
    by Content-Length. Far cheaper per request than a full HTTP client, so the generator's own cost
    stays small beside the server's (each run prints the generator's CPU share)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiting: collections.deque[asyncio.Future[int]] = collections.deque()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            length = 0
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else None])
            if len(buf) < end + 4 + length:
                return
            del buf[: end + 4 + length]
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_result(int(head[9:12]))

    def connection_lost(self, exc: Exception | None) -> None:
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(ConnectionError("connection lost"))

    def send(self, request: bytes) -> asyncio.Future[int]:
        """Write ``request``; the future is the answer's status code."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.waiting.append(fut)
        assert self.transport is not None
        self.transport.write(request)
        return fut


async def connections(port: int, n: int) -> list[Connection]:
    loop = asyncio.get_running_loop()
    out = []
    for _ in range(n):
        _, proto = await loop.create_connection(Connection, "127.0.0.1", port)
        out.append(proto)
    return out


def close_all(conns: list[Connection]) -> None:
    for c in conns:
        if c.transport is not None:
            c.transport.close()


class Cpu:
    """The generator's CPU time over a run, as a share of one core (near 1.0: it is the bottleneck)."""

    def __enter__(self) -> Cpu:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.share = (time.process_time() - self.cpu) / max(1e-9, time.perf_counter() - self.wall)


async def closed_loop(
    port: int, requests: list[bytes], workers: int
) -> tuple[float, list[float], int, float]:
    """Send every request on ``workers`` keep-alive connections, each as soon as its last answer
    came; return (seconds, latencies, non-200 answers, generator CPU share)."""
    latencies: list[float] = []
    failures = 0
    it = iter(requests)
    conns = await connections(port, workers)
    clock = time.perf_counter

    async def worker(conn: Connection) -> None:
        nonlocal failures
        for request in it:
            t = clock()
            status = await conn.send(request)
            latencies.append(clock() - t)
            failures += status != 200

    with Cpu() as cpu:
        start = clock()
        await asyncio.gather(*(worker(c) for c in conns))
        took = clock() - start
    close_all(conns)
    return took, latencies, failures, cpu.share


async def open_loop(
    port: int, requests: list[bytes], rate: float, pool: int = 64
) -> tuple[list[float], int, float, float]:
    """Send request i at start + i/rate on a free keep-alive connection (waiting for one if all are
    busy); latency runs from the due time, so neither a stalled server nor a late generator can hide
    its queue. Returns (latencies, non-200 answers, the generator's worst lag behind schedule, its
    CPU share)."""
    latencies: list[float] = []
    failures = 0
    conns = await connections(port, pool)
    idle: collections.deque[Connection] = collections.deque(conns)
    backlog: collections.deque[tuple[float, bytes]] = collections.deque()
    clock = time.perf_counter
    pending: set[asyncio.Future[int]] = set()

    def dispatch(conn: Connection, due: float, request: bytes) -> None:
        fut = conn.send(request)
        pending.add(fut)

        def done(f: asyncio.Future[int]) -> None:
            nonlocal failures
            pending.discard(f)
            latencies.append(clock() - due)
            failures += f.exception() is not None or f.result() != 200
            if backlog:
                dispatch(conn, *backlog.popleft())
            else:
                idle.append(conn)

        fut.add_done_callback(done)

    max_lag = 0.0
    with Cpu() as cpu:
        start = clock() + 0.05
        for i, request in enumerate(requests):
            due = start + i / rate
            delay = due - clock()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            max_lag = max(max_lag, clock() - due)
            if idle:
                dispatch(idle.popleft(), due, request)
            else:
                backlog.append((due, request))
        while pending or backlog:
            await asyncio.sleep(0.001)
    close_all(conns)
    return latencies, failures, max_lag, cpu.share


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


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


async def server_cpu(base: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(base + "/status") as r:
        return float((await r.json())["cpu"])


async def generate(args: argparse.Namespace) -> None:
    cmd = [sys.executable, __file__, "--serve"] + (["--store", args.store] if args.store else [])
    server = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdin is not None
    port = int(server.stdout.readline())
    base = f"http://127.0.0.1:{port}"
    try:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        n = args.requests

        def batch(first: int, count: int, path: str) -> list[bytes]:
            return [raw_request(path, port, *signed(first + i, stamp)) for i in range(count)]

        zd, bare = "/webhooks/zd", "/bare"
        batches = [batch(k * n, n, zd if k % 2 else bare) for k in range(4)]
        print(f"before: {load()}")
        # Warm up both paths (connections, caches), not measured.
        await closed_loop(port, batch(10**9, 500, bare), args.concurrency)
        await closed_loop(port, batch(2 * 10**9, 500, zd), args.concurrency)
        await drain(base, 500)

        secs_bare, lat_bare, fail_bare, gen_bare = await closed_loop(port, batches[0], args.concurrency)
        cpu0, t0 = await server_cpu(base), time.perf_counter()
        secs, lat, fail, gen = await closed_loop(port, batches[1], args.concurrency)
        served = (await server_cpu(base) - cpu0) / (time.perf_counter() - t0)
        drained = await drain(base, 500 + n)
        print(f"closed loop, {args.concurrency} connections, {n:,} signed requests each  ({load()})")
        print(
            f"  cxmon webhook: {n / secs:8,.0f} req/s  p50 {pct(lat, 0.5) * 1e3:6.1f} ms  "
            f"p99 {pct(lat, 0.99) * 1e3:6.1f} ms  non-200: {fail}  all in the snapshot {drained:.2f} s later"
        )
        print(f"    CPU: generator {gen:.0%} of a core, server {served:.0%}")
        print(
            f"  bare aiohttp (signature check only): {n / secs_bare:8,.0f} req/s  "
            f"p50 {pct(lat_bare, 0.5) * 1e3:6.1f} ms  p99 {pct(lat_bare, 0.99) * 1e3:6.1f} ms  "
            f"non-200: {fail_bare}  (generator {gen_bare:.0%} of a core)"
        )
        print(f"  cxmon / bare: {(n / secs) / (n / secs_bare):.2f}")

        lat_o, fail_o, lag, gen_o = await open_loop(port, batches[3], args.rate)
        drained = await drain(base, 500 + 2 * n)
        lat_ob, fail_ob, lag_b, _ = await open_loop(port, batches[2], args.rate)
        print(f"open loop at {args.rate:,.0f} req/s, {n:,} requests (latency from the due time)  ({load()})")
        print(
            f"  cxmon webhook: p50 {pct(lat_o, 0.5) * 1e3:6.1f} ms  p90 {pct(lat_o, 0.9) * 1e3:6.1f} ms  "
            f"p99 {pct(lat_o, 0.99) * 1e3:6.1f} ms  max {max(lat_o) * 1e3:6.1f} ms  non-200: {fail_o}  "
            f"generator lag max {lag * 1e3:.1f} ms, CPU {gen_o:.0%}  "
            f"all in the snapshot {drained:.2f} s later"
        )
        print(
            f"  bare aiohttp: p50 {pct(lat_ob, 0.5) * 1e3:6.1f} ms  p99 {pct(lat_ob, 0.99) * 1e3:6.1f} ms  "
            f"non-200: {fail_ob}  generator lag max {lag_b * 1e3:.1f} ms"
        )
        print(
            f"  p99 cxmon / bare: {pct(lat_o, 0.99) / pct(lat_ob, 0.99):.2f}   "
            f"(mean {statistics.mean(lat_o) * 1e3:.1f} ms)"
        )
        print(f"after: {load()}")
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
