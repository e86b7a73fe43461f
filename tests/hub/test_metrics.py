"""The hub's counters on the daemon's /metrics: what watchers did shows up, and promtool accepts it."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.exceptions import InvalidStatus

from cxmon.engine import Engine
from cxmon.http_server import start_http
from cxmon.hub.client import HubClient
from cxmon.hub.metrics import export
from cxmon.hub.server import Hub
from tests.hub.helpers import frame, free_port, raw_watcher, start_daemon
from tests.integration import require_binary
from tests.metrics_helpers import samples
from tests.snapshot_app import sim_config, sim_config_text


def _value(body: bytes, name: str, **labels: str) -> float | None:
    want = tuple(sorted(labels.items()))
    for sample_name, sample_labels, value in samples(body):
        if sample_name == name and sample_labels == want:
            return value
    return None


async def test_hub_counters_are_exported_and_pass_promtool() -> None:
    """Two watchers (view, ack), a refused token, a bad frame, a refused ack, a resync asked for and a
    customer question each show in the cxmon_hub_* samples of /metrics; promtool finds no problem."""
    promtool = require_binary("promtool")
    async with Engine(sim_config(speed=30), store=False) as engine:
        runner = asyncio.create_task(engine.run())
        services = await start_http(engine, "127.0.0.1", 0)
        hub = Hub(engine, port=0, viewer_token="see", ack_token="fix")
        await hub.start()
        export(hub, services.exporter)
        try:
            viewer = await raw_watcher(hub.port, token="see")
            acker = await raw_watcher(hub.port, token="fix")
            for ws in (viewer, acker):
                await frame(ws)
                await frame(ws)
            with pytest.raises(InvalidStatus):
                await raw_watcher(hub.port, token="wrong")
            await viewer.send("not json")
            await viewer.send('{"type": "ack", "id": 1, "step": "x", "who": "ann"}')
            await viewer.send('{"type": "resync"}')
            await viewer.send('{"type": "customers", "id": 2}')
            want: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {
                ("cxmon_hub_watchers", (("role", "view"),)): 1,
                ("cxmon_hub_watchers", (("role", "ack"),)): 1,
                ("cxmon_hub_connections_total", ()): 2,
                ("cxmon_hub_refused_connections_total", ()): 1,
                ("cxmon_hub_bad_frames_total", ()): 1,
                ("cxmon_hub_acks_refused_total", ()): 1,
                ("cxmon_hub_resyncs_total", (("reason", "requested"),)): 1,
                ("cxmon_hub_queries_total", ()): 1,
                ("cxmon_hub_frames_sent_total", (("kind", "snapshot"),)): 3,
            }
            body = b""
            async with aiohttp.ClientSession() as session:
                for _ in range(600):
                    async with session.get(f"http://127.0.0.1:{services.port}/metrics") as resp:
                        body = await resp.read()
                    got = {(n, labels): v for n, labels, v in samples(body) if n.startswith("cxmon_hub_")}
                    if all(got.get(k) == v for k, v in want.items()) and _delta_bytes(got) > 0:
                        break
                    await asyncio.sleep(0.05)
            assert {k: got.get(k) for k in want} == want
            assert _delta_bytes(got) > 0
            for ws in (viewer, acker):
                await ws.close()
        finally:
            await hub.aclose()
            await services.aclose()
            engine.stop()
            await runner
    proc = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, b"")


def _delta_bytes(got: dict[Any, float]) -> float:
    return got.get(("cxmon_hub_sent_bytes_total", (("kind", "delta"),)), 0.0)


async def test_cxmon_serve_exports_its_hub_counters(tmp_path: Path) -> None:
    """`cxmon serve`: a watcher connected to its hub shows in cxmon_hub_watchers on its /metrics."""
    hub_port, http_port = free_port(), free_port()
    text = sim_config_text(speed="30").replace(
        'listen = "127.0.0.1:8765"', f'listen = "127.0.0.1:{hub_port}"', 1
    )
    text = text.replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{http_port}"', 1)
    config = tmp_path / "cxmon.toml"
    config.write_text(text, encoding="utf-8")
    daemon = start_daemon(config, tmp_path / "cxmon.db")
    client = HubClient(f"ws://127.0.0.1:{hub_port}", initial_delay=0.1, max_delay=0.5)
    watching: float | None = None
    try:
        await client.start()
        await client.wait_ready(60)
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{http_port}/metrics") as resp:
                        watching = _value(await resp.read(), "cxmon_hub_watchers", role="ack")
                if watching == 1:
                    break
                await asyncio.sleep(0.05)
    finally:
        await client.aclose()
        daemon.terminate()
        daemon.wait(30)
    assert watching == 1
