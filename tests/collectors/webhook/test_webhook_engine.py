"""A webhook source under the real Engine: refused requests are counted and change no figure."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp import web

from collectors.webhook import WebhookSource
from cxmon.config import loads
from cxmon.engine import Engine
from tests.collectors.webhook import payloads as p
from tests.collectors.webhook.harness import SECRET, body_of, chatwoot_headers, until

CONFIG = f"""
[monitor]
windows = ["5m"]
stale_after = "60s"

[journey]
channels = ["chat"]
queues = ["support"]

[[journey.steps]]
name = "enquire"
match = [{{ channel = "chat" }}]

[[collectors]]
type = "webhook"
name = "cw"
adapter = "chatwoot"
secret = "{SECRET}"
queues = {{ "1" = "support" }}
"""


async def test_refused_requests_count_as_errors_and_change_no_figure() -> None:
    """Three refused requests and one good one: offered is 1, the collector's errors are 3."""
    config = loads(CONFIG)
    engine = Engine(config, store=False)
    [src] = engine.sources
    assert isinstance(src, WebhookSource)
    app = web.Application()
    app.add_routes(src.http_routes())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/cw"
    try:
        async with engine:
            await until(lambda: engine.health["cw"].up)
            body = body_of(p.chatwoot_conversation("conversation_created", 10, time.time()))
            good = chatwoot_headers(body)
            async with aiohttp.ClientSession() as http:
                for headers in (
                    {"Content-Type": "application/json"},
                    chatwoot_headers(body + b"x"),
                    chatwoot_headers(body, ts=time.time() - 3600),
                    good,
                ):
                    async with http.post(url, data=body, headers=headers) as r:
                        await r.read()
            await until(lambda: engine.health["cw"].events_total >= 1)
            await until(lambda: engine.latest.version > 0 and engine.latest.ts > time.time() - 1)
            snap = engine.latest
    finally:
        await runner.cleanup()
    offered = sum((s.totals.get("offered") or 0) for s in snap.series)
    assert offered == 1
    assert engine.health["cw"].errors_total == 3
    assert [s.errors_total for s in snap.sources if s.name == "cw"] == [3]


async def test_refusals_are_exported_per_collector_and_reason() -> None:
    """Served by the daemon's HTTP server: one unsigned, two badly signed, one stale and one GET are
    exported as cxmon_webhook_rejected_total{collector="cw",reason=…} (every other reason 0), and
    promtool accepts the exposition."""
    import re
    import subprocess

    from cxmon.catalogue import WEBHOOK_REJECTIONS
    from cxmon.http_server import start_http
    from tests.helpers import require_binary

    promtool = require_binary("promtool")
    engine = Engine(loads(CONFIG), store=False)
    wanted = {"unsigned": 1, "bad_signature": 2, "stale_timestamp": 1, "wrong_method": 1}
    found: dict[str, float] = {}
    async with engine:
        services = await start_http(engine, "127.0.0.1", 0, sources=engine.sources)
        try:
            base = f"http://127.0.0.1:{services.port}"
            await until(lambda: engine.health["cw"].up)
            body = body_of(p.chatwoot_conversation("conversation_created", 11, time.time()))
            async with aiohttp.ClientSession() as http:
                async with http.get(base + "/webhooks/cw") as r:
                    assert r.status == 405
                for headers in (
                    {"Content-Type": "application/json"},
                    chatwoot_headers(body + b"x"),
                    chatwoot_headers(body + b"y"),
                    chatwoot_headers(body, ts=time.time() - 3600),
                ):
                    async with http.post(base + "/webhooks/cw", data=body, headers=headers) as r:
                        assert r.status == 401
                for _ in range(200):  # bounded: a render follows the next snapshot
                    async with http.get(base + "/metrics") as r:
                        text = await r.text()
                    found = {
                        m.group(1): float(m.group(2))
                        for m in re.finditer(
                            r'^cxmon_webhook_rejected_total\{collector="cw",reason="(\w+)"\} (\S+)$',
                            text,
                            re.M,
                        )
                    }
                    if found.get("wrong_method") == 1 and found.get("stale_timestamp") == 1:
                        break
                    await asyncio.sleep(0.05)
        finally:
            await services.aclose()
    assert found == {reason: float(wanted.get(reason, 0)) for reason in WEBHOOK_REJECTIONS}
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
