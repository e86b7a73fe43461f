"""Tests for cxmon.exporter on the real HTTP server: /metrics and /healthz on 127.0.0.1, a real client."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from cxmon import __version__
from cxmon.config import known_labels
from cxmon.engine import Engine
from cxmon.exposition import CONTENT_TYPE, render
from cxmon.http_server import HttpServices, start_http
from cxmon.snapshot import EMPTY_SNAPSHOT, TOTALS
from tests.integration import require_binary, sim_config
from tests.metrics_helpers import (
    LABELS,
    SnapshotFeed,
    exported_names,
    make_config,
    make_series,
    make_snapshot,
    samples,
)

PUBLISHED = "cxmon_snapshot_published_timestamp_seconds"


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    """A real HTTP client that leaves compressed bodies as they came."""
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session


async def get(
    session: aiohttp.ClientSession, port: int, path: str, method: str = "GET", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """Do one request on 127.0.0.1 (uncompressed unless asked); return status, headers, body."""
    headers = {"Accept-Encoding": "identity", **headers}
    async with session.request(
        method, f"http://127.0.0.1:{port}{path}", headers=headers, timeout=aiohttp.ClientTimeout(30)
    ) as resp:
        body = await resp.read()
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, body


async def test_metrics_serves_the_latest_snapshot(client: aiohttp.ClientSession) -> None:
    """GET /metrics returns the rendered snapshot with the text-format content type and its length."""
    config = make_config()
    feed = SnapshotFeed(config, make_snapshot())
    services = await start_http(feed, "127.0.0.1", 0)
    try:
        status, headers, body = await get(client, services.port, "/metrics")
    finally:
        await services.aclose()
    assert status == 200
    assert headers["content-type"] == CONTENT_TYPE
    assert int(headers["content-length"]) == len(body)
    assert body.startswith(render(feed.latest, config))


async def test_metrics_follow_new_snapshots(client: aiohttp.ClientSession) -> None:
    """A snapshot published after the first scrape shows up in a later scrape."""
    feed = SnapshotFeed(make_config(), make_snapshot(version=1))
    services = await start_http(feed, "127.0.0.1", 0)
    try:
        await get(client, services.port, "/metrics")
        totals = dict.fromkeys(TOTALS, 0) | {"offered": 999}
        feed.publish(make_snapshot((make_series(totals=totals),), version=2))
        body = b""
        for _ in range(200):  # bounded: the render runs in a worker thread
            _, _, body = await get(client, services.port, "/metrics")
            if b"999.0" in body:
                break
            await asyncio.sleep(0.01)
    finally:
        await services.aclose()
    offered = ("cxmon_contacts_total", tuple(sorted({**LABELS, "outcome": "offered"}.items())), 999.0)
    assert offered in samples(body)


async def test_metrics_carry_the_wall_time_the_snapshot_was_published(
    client: aiohttp.ClientSession,
) -> None:
    """cxmon_snapshot_published_timestamp_seconds is the wall time the engine published the snapshot."""
    feed = SnapshotFeed(make_config(), make_snapshot(version=1))
    services = await start_http(feed, "127.0.0.1", 0)
    try:
        before = time.time()
        feed.publish(make_snapshot(version=2, ts=1_700_000_002.0))
        after = time.time()
        value = None
        for _ in range(200):  # bounded: wait for the render of version 2
            _, _, body = await get(client, services.port, "/metrics")
            if services.exporter.renders and b"cxmon_snapshot_timestamp_seconds 1700000002" in body:
                value = next(v for name, _, v in samples(body) if name == PUBLISHED)
                break
            await asyncio.sleep(0.01)
    finally:
        await services.aclose()
    assert value is not None and before <= value <= after


async def test_healthz_names_the_snapshot_and_the_software_version(client: aiohttp.ClientSession) -> None:
    """GET /healthz answers 200 with the snapshot's number as ``snapshot`` and cxmon's as ``version``."""
    feed = SnapshotFeed(make_config(), make_snapshot(version=42))
    services = await start_http(feed, "127.0.0.1", 0)
    try:
        status, headers, body = await get(client, services.port, "/healthz")
    finally:
        await services.aclose()
    doc = json.loads(body)
    assert (status, headers["content-type"].split(";")[0]) == (200, "application/json")
    assert (doc["status"], doc["snapshot"], doc["version"]) == ("ok", 42, __version__)


async def test_healthz_is_503_starting_until_the_first_snapshot(client: aiohttp.ClientSession) -> None:
    """Before the engine's first snapshot (a restart reading its history back) /healthz answers
    503 "starting", not "ok" for a monitor that has judged nothing yet; 200 from the first one."""
    feed = SnapshotFeed(make_config(), EMPTY_SNAPSHOT)
    services = await start_http(feed, "127.0.0.1", 0)
    try:
        status, _, body = await get(client, services.port, "/healthz")
        feed.publish(make_snapshot(version=1))
        after, _, _ = await get(client, services.port, "/healthz")
    finally:
        await services.aclose()
    assert (status, json.loads(body)["status"], json.loads(body)["snapshot"], after) == (
        503,
        "starting",
        0,
        200,
    )


async def test_healthz_is_503_when_everything_is_stale(client: aiohttp.ClientSession) -> None:
    """A snapshot marked stale (every source silent) makes /healthz answer 503 "stale"."""
    feed = SnapshotFeed(make_config(), make_snapshot(stale=True))
    services = await start_http(feed, "127.0.0.1", 0)
    try:
        status, _, body = await get(client, services.port, "/healthz")
    finally:
        await services.aclose()
    assert (status, json.loads(body)["status"]) == (503, "stale")


async def test_healthz_is_503_while_no_snapshot_is_published(client: aiohttp.ClientSession) -> None:
    """An engine that stops publishing snapshots is reported frozen (503) until it publishes again."""
    feed = SnapshotFeed(make_config(), make_snapshot(version=1))
    services = await start_http(feed, "127.0.0.1", 0)
    try:
        services.exporter.frozen_after = 0.3
        feed.publish(make_snapshot(version=2))
        fresh, _, _ = await get(client, services.port, "/healthz")
        status, doc = fresh, {}
        for _ in range(100):  # bounded: 0.3 s of silence is enough
            await asyncio.sleep(0.05)
            status, _, body = await get(client, services.port, "/healthz")
            doc = json.loads(body)
            if status == 503:
                break
        feed.publish(make_snapshot(version=3))
        again, _, _ = await get(client, services.port, "/healthz")
    finally:
        await services.aclose()
    assert (fresh, status, doc["status"], again) == (200, 503, "frozen", 200)


async def test_unknown_path_is_404_post_is_405_and_head_has_no_body(client: aiohttp.ClientSession) -> None:
    """Only /metrics and /healthz exist; POST is refused; HEAD gives the headers of GET and no body."""
    feed = SnapshotFeed(make_config(), make_snapshot())
    services = await start_http(feed, "127.0.0.1", 0)
    try:
        missing, _, _ = await get(client, services.port, "/nope")
        post, _, _ = await get(client, services.port, "/metrics", method="POST")
        head, headers, body = await get(client, services.port, "/metrics", method="HEAD")
        _, _, full = await get(client, services.port, "/metrics")
    finally:
        await services.aclose()
    assert (missing, post, head, body) == (404, 405, 200, b"")
    assert int(headers["content-length"]) == len(full)


async def test_gzip_scrape_decompresses_to_the_plain_exposition(client: aiohttp.ClientSession) -> None:
    """With Accept-Encoding: gzip the server sends the cached gzip body of the same exposition."""
    feed = SnapshotFeed(make_config(), make_snapshot())
    services = await start_http(feed, "127.0.0.1", 0)
    try:
        _, _, plain = await get(client, services.port, "/metrics")
        status, headers, packed = await get(client, services.port, "/metrics", **{"Accept-Encoding": "gzip"})
    finally:
        await services.aclose()
    assert (status, headers["content-encoding"]) == (200, "gzip")
    assert gzip.decompress(packed) == plain


async def test_live_scrape_passes_promtool(client: aiohttp.ClientSession) -> None:
    """`promtool check metrics` reports nothing on bytes scraped from the running server."""
    promtool = require_binary("promtool")
    feed = SnapshotFeed(make_config(), make_snapshot())
    services = await start_http(feed, "127.0.0.1", 0)
    try:
        _, _, body = await get(client, services.port, "/metrics")
    finally:
        await services.aclose()
    proc = await asyncio.create_subprocess_exec(promtool, "check", "metrics", stdin=-1, stdout=-1, stderr=-2)
    out, _ = await asyncio.wait_for(proc.communicate(body), 30)
    assert (proc.returncode, out) == (0, b"")
    assert {"cxmon_wait_seconds_bucket", PUBLISHED} <= exported_names(body)


async def test_metrics_disabled_serves_healthz_but_no_metrics(client: aiohttp.ClientSession) -> None:
    """With ``[prometheus] enabled = false`` /metrics is 404 on a listener that serves webhooks."""
    config = make_config()
    config = dataclasses.replace(config, prometheus=dataclasses.replace(config.prometheus, enabled=False))
    feed = SnapshotFeed(config, make_snapshot())
    services = await start_http(feed, "127.0.0.1", 0, sources=[_Hook()])
    try:
        metrics, _, _ = await get(client, services.port, "/metrics")
        health, _, _ = await get(client, services.port, "/healthz")
    finally:
        await services.aclose()
    assert (metrics, health) == (404, 200)


def test_nothing_listens_without_metrics_or_routes() -> None:
    """``[prometheus] enabled = false`` and no source with routes: no listener at all."""
    config = make_config()
    config = dataclasses.replace(config, prometheus=dataclasses.replace(config.prometheus, enabled=False))
    assert HttpServices(SnapshotFeed(config, make_snapshot())).listeners == []


class _Hook:
    """A source with one webhook route (the RouteSource contract), counting what it was sent."""

    name = "hook"

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def http_routes(self) -> list[web.RouteDef]:
        return [web.post("/webhooks/hook", self._post)]

    async def _post(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        return web.Response(status=202, text="queued\n")


async def test_routes_of_sources_are_mounted_beside_metrics(client: aiohttp.ClientSession) -> None:
    """A source's http_routes are served on the same port as /metrics and receive the request."""
    hook = _Hook()
    feed = SnapshotFeed(make_config(), make_snapshot())
    services = await start_http(feed, "127.0.0.1", 0, sources=[hook, object()])
    try:
        async with client.post(f"http://127.0.0.1:{services.port}/webhooks/hook", data=b'{"a": 1}') as resp:
            posted = resp.status
        metrics, _, _ = await get(client, services.port, "/metrics")
    finally:
        await services.aclose()
    assert (posted, metrics, hook.bodies) == (202, 200, [b'{"a": 1}'])


async def test_separate_metrics_address_splits_the_listeners(client: aiohttp.ClientSession) -> None:
    """``[prometheus] listen`` apart from ``[http] listen``: /metrics on one port, webhooks on the other."""
    config = make_config()
    config = dataclasses.replace(
        config,
        http=dataclasses.replace(config.http, port=0),
        prometheus=dataclasses.replace(config.prometheus, host="localhost", port=0),
    )
    feed = SnapshotFeed(config, make_snapshot())
    services = HttpServices(feed, [_Hook()])
    await services.start()
    try:
        web_port, metrics_port = services.server.ports
        on_web = await get(client, web_port, "/metrics")
        on_metrics = await get(client, metrics_port, "/metrics")
        async with client.post(f"http://127.0.0.1:{web_port}/webhooks/hook", data=b"x") as resp:
            posted = resp.status
        async with client.post(f"http://127.0.0.1:{metrics_port}/webhooks/hook", data=b"x") as resp:
            posted_to_metrics = resp.status
    finally:
        await services.aclose()
    assert (on_web[0], on_metrics[0], posted, posted_to_metrics) == (404, 200, 202, 404)


async def test_real_engine_on_the_simulator_exports_a_clean_exposition(client: aiohttp.ClientSession) -> None:
    """The Engine on the simulator (speed max) serves /metrics that promtool accepts, with bounded labels."""
    promtool = require_binary("promtool")
    config = sim_config(speed="max", duration="20m")
    async with Engine(config, store=False) as engine:
        services = await start_http(engine, "127.0.0.1", 0)
        try:
            await engine.run()
            _, _, body = await get(client, services.port, "/metrics")
            snap = engine.latest
        finally:
            await services.aclose()
    proc = await asyncio.create_subprocess_exec(promtool, "check", "metrics", stdin=-1, stdout=-1, stderr=-2)
    out, _ = await asyncio.wait_for(proc.communicate(body), 30)
    assert (proc.returncode, out) == (0, b"")
    steps, queues = {s.name for s in config.steps} | {"other"}, known_labels(config)[1]
    exported = [s for s in samples(body) if s[0] == "cxmon_contacts_total"]
    assert exported
    assert all(dict(labels)["step"] in steps and dict(labels)["queue"] in queues for _, labels, _ in exported)
    offered = sum(v for _, labels, v in exported if dict(labels)["outcome"] == "offered")
    assert offered == sum(s.totals["offered"] for s in snap.series) > 0
