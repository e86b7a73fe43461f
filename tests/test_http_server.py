"""Tests for cxmon.http_server under slow and hostile clients, on 127.0.0.1 with real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from cxmon.cli import main
from cxmon.config import HttpConfig
from cxmon.errors import StartupError
from cxmon.http_server import HttpServices, start_http
from tests.helpers import REPO
from tests.integration import free_port
from tests.metrics_helpers import SnapshotFeed, make_config, make_snapshot

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def feed_with(http: HttpConfig) -> SnapshotFeed:
    """A snapshot feed whose config has these ``[http]`` settings."""
    config = make_config()
    config = dataclasses.replace(config, http=http)
    return SnapshotFeed(config, make_snapshot())


@pytest.fixture
async def served() -> AsyncIterator[HttpServices]:
    """The exporter on 127.0.0.1, port 0: idle connections closed after 1 s, 32 connections at most."""
    services = await start_http(feed_with(HttpConfig(idle_timeout=1.0, max_connections=32)), "127.0.0.1", 0)
    try:
        yield services
    finally:
        await services.aclose()


async def scrape(port: int) -> tuple[int, bytes]:
    """One Prometheus-like scrape with a real client, given a generous bound (not a timing claim)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(total=60)) as resp,
    ):
        return resp.status, await resp.read()


async def closed_by_server(conn: Conn, bound: float = 30.0) -> bytes:
    """Read until the server closes the connection (failing after ``bound`` seconds); return what came."""
    reader, writer = conn
    try:
        async with asyncio.timeout(bound):
            return await reader.read()
    except ConnectionResetError:  # closed while we were still sending
        return b""
    finally:
        writer.close()


async def test_idle_connection_is_closed_after_the_idle_timeout(served: HttpServices) -> None:
    """A client that connects and sends nothing is disconnected by the server."""
    conn = await asyncio.open_connection("127.0.0.1", served.port)
    assert await closed_by_server(conn) == b""


async def test_half_sent_request_is_closed_after_the_idle_timeout(served: HttpServices) -> None:
    """A client that stops half way through its headers (slowloris) is disconnected by the server."""
    conn = await asyncio.open_connection("127.0.0.1", served.port)
    conn[1].write(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
    assert await closed_by_server(conn) == b""


async def test_megabyte_header_is_refused_and_scrapes_still_answer(served: HttpServices) -> None:
    """A 1 MB header gets a 4xx and the connection closed; a scrape afterwards is served."""
    conn = await asyncio.open_connection("127.0.0.1", served.port)
    conn[1].write(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")
    with contextlib.suppress(ConnectionError):
        await conn[1].drain()
    answer = await closed_by_server(conn)
    status, body = await scrape(served.port)
    assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")) or answer == b""  # b"": reset
    assert (status, b"cxmon_build_info" in body, served.server.bad_requests) == (200, True, 1)


async def test_garbage_bytes_get_400_and_scrapes_still_answer(served: HttpServices) -> None:
    """Random bytes instead of a request get 400 and a closed connection; a scrape afterwards is served."""
    junk = random.Random(7).randbytes(4096).replace(b"\n", b"")
    conn = await asyncio.open_connection("127.0.0.1", served.port)
    conn[1].write(junk + b"\r\n\r\n")
    answer = await closed_by_server(conn)
    status, _ = await scrape(served.port)
    assert answer.startswith((b"HTTP/1.0 400", b"HTTP/1.1 400"))
    assert (status, served.server.bad_requests) == (200, 1)


async def test_connections_past_the_cap_close_the_oldest_idle_ones(served: HttpServices) -> None:
    """With 100 idle connections against a cap of 32, at most 32 stay open and a scrape still answers."""
    conns: list[Conn] = []
    try:
        for _ in range(100):
            conns.append(await asyncio.open_connection("127.0.0.1", served.port))
        status, _ = await scrape(served.port)
        open_now = served.server.open_connections()
        evicted = served.server.evicted
    finally:
        for _, writer in conns:
            writer.close()
    assert status == 200
    assert open_now <= 32
    assert evicted >= 100 + 1 - 32


async def test_port_in_use_is_one_line_naming_the_address_and_the_fixes() -> None:
    """Binding a port another socket holds raises StartupError: one line, the address, how to fix it."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StartupError) as info:
            await start_http(feed_with(HttpConfig()), "127.0.0.1", port)
    message = str(info.value)
    assert "\n" not in message
    assert f"127.0.0.1:{port}" in message and "already in use" in message
    assert "--metrics-listen" in message and "[prometheus] enabled = false" in message


# --------------------------------------------------------------------------- the real daemon


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc for memory and fds")
async def test_serve_under_a_hostile_flood_keeps_scraping_with_bounded_memory(tmp_path: Path) -> None:
    """`cxmon serve` with 300 idle and 100 half-open connections, a 1 MB header and garbage bytes still
    answers a scrape; its open descriptors stay within [http] max_connections and its RSS grows little."""
    port = free_port()
    default = (REPO / "config" / "default.toml").read_text()
    http = f'[http]\nlisten = "127.0.0.1:{port}"\nmax_connections = 100\nidle_timeout = "120s"\n'
    config = re.sub(r"\[http\]\nlisten = [^\n]*\n", lambda _: http, default)
    config = re.sub(r"\[hub\]\nlisten = [^\n]*\n", "[hub]\nenabled = false\n", config)  # no port of its own
    assert config.count("enabled = false") == default.count("enabled = false") + 1
    (tmp_path / "cxmon.toml").write_text(config)
    argv = [sys.executable, "-m", "cxmon", "serve", "--config", str(tmp_path / "cxmon.toml")]
    argv += ["--db", str(tmp_path / "cxmon.db")]
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    conns: list[Conn] = []
    try:
        status = 0
        for _ in range(300):  # bounded: start-up on a busy machine
            with contextlib.suppress(OSError, aiohttp.ClientError):
                status, _ = await scrape(port)
            if status == 200 or proc.poll() is not None:
                break
            await asyncio.sleep(0.2)
        assert status == 200, (tmp_path / "serve.log").read_text()
        rss_before, fds_before = _rss_kib(proc.pid), _open_fds(proc.pid)

        for _ in range(300):
            conns.append(await asyncio.open_connection("127.0.0.1", port))
        for _ in range(100):
            conn = await asyncio.open_connection("127.0.0.1", port)
            conn[1].write(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            conns.append(conn)
        big = await asyncio.open_connection("127.0.0.1", port)
        big[1].write(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")
        junk = await asyncio.open_connection("127.0.0.1", port)
        junk[1].write(random.Random(3).randbytes(65536))
        await closed_by_server(big, 60)
        await closed_by_server(junk, 60)

        status, body = await scrape(port)
        rss_after, fds_after = _rss_kib(proc.pid), _open_fds(proc.pid)
    finally:
        for _, writer in conns:
            writer.close()
        proc.terminate()
        proc.wait(30)
        log.close()
    assert (status, b"cxmon_build_info" in body) == (200, True)
    assert fds_after - fds_before <= 100
    assert rss_after - rss_before < 64 * 1024, f"RSS grew by {rss_after - rss_before} KiB"
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


def test_check_names_every_bad_http_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`cxmon check` lists each wrong ``[http]`` key by its path and exits 2."""
    default = (REPO / "config" / "default.toml").read_text()
    bad = '[http]\nlisten = "nowhere"\nmax_connections = 0\nidle_timeout = "soon"\nmax_conections = 5\n'
    (tmp_path / "bad.toml").write_text(re.sub(r"\[http\]\nlisten = [^\n]*\n", lambda _: bad, default))
    code = main(["check", str(tmp_path / "bad.toml")])
    err = capsys.readouterr().err
    assert code == 2
    for key in ("http.listen", "http.max_connections", "http.idle_timeout", "http.max_conections"):
        assert key in err


async def test_serve_mounts_webhook_routes_beside_metrics(tmp_path: Path) -> None:
    """`cxmon serve` serves a webhook collector's path on [http] listen, beside /metrics: a signed
    native event POSTed there is taken and counted for the collector in the scrape of the same port."""
    port, secret = free_port(), b"s3cret"
    (tmp_path / "cxmon.toml").write_text(
        f'[http]\nlisten = "127.0.0.1:{port}"\n[hub]\nenabled = false\n[journey]\nchannels = ["web"]\n'
        '[[journey.steps]]\nname = "order"\nmatch = [{ channel = "*", queue = "*" }]\n'
        '[[collectors]]\ntype = "webhook"\nname = "crm"\nadapter = "native"\nsecret = "s3cret"\n'
    )
    argv = [sys.executable, "-m", "cxmon", "serve", "--config", str(tmp_path / "cxmon.toml")]
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([*argv, "--db", str(tmp_path / "x.db")], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            for _ in range(300):  # bounded: start-up on a busy machine
                with contextlib.suppress(OSError, aiohttp.ClientError):
                    async with session.get(f"{url}/healthz") as resp:
                        break
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                await asyncio.sleep(0.2)
            posted = 0
            for _ in range(100):  # bounded; like a vendor, retry while the source answers 503 (starting)
                stamp = str(int(time.time()))
                body = json.dumps(
                    {
                        "version": 1,
                        "id": "e1",
                        "ts": time.time(),
                        "kind": "arrived",
                        "contact_id": "c1",
                        "channel": "web",
                        "queue": "orders",
                    }
                ).encode()
                sig = "sha256=" + hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
                headers = {
                    "Content-Type": "application/json",
                    "X-Cxmon-Timestamp": stamp,
                    "X-Cxmon-Signature": sig,
                }
                async with session.post(f"{url}/webhooks/crm", data=body, headers=headers) as resp:
                    posted = resp.status
                if posted != 503:
                    break
                await asyncio.sleep(0.2)
            counted = None
            for _ in range(300):  # bounded: the event goes through the engine's queue and a tick
                async with session.get(f"{url}/metrics") as resp:
                    text = await resp.text()
                counted = re.search(r'cxmon_collector_events_total\{collector="crm"\} (\S+)', text)
                if counted and float(counted.group(1)) >= 1:
                    break
                await asyncio.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    assert 200 <= posted < 300
    assert counted is not None and float(counted.group(1)) >= 1


async def test_refused_requests_are_counted_in_the_metrics() -> None:
    """A malformed request shows in cxmon_http_refused_requests_total from the next render on."""
    feed = feed_with(HttpConfig(idle_timeout=5.0))
    services = await start_http(feed, "127.0.0.1", 0)
    try:
        conn = await asyncio.open_connection("127.0.0.1", services.port)
        conn[1].write(b"\x16\x03\x01 not http at all\r\n\r\n")
        await closed_by_server(conn)
        feed.publish(make_snapshot(version=2))
        refused = None
        for _ in range(200):  # bounded: the render runs in a worker thread
            _, body = await scrape(services.port)
            found = re.search(rb"^cxmon_http_refused_requests_total (\S+)", body, re.M)
            if found and float(found.group(1)) >= 1:
                refused = float(found.group(1))
                break
            await asyncio.sleep(0.01)
    finally:
        await services.aclose()
    assert refused == 1.0
