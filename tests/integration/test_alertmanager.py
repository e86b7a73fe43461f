"""cxmon's alerts against a real Alertmanager (Debian's prometheus-alertmanager) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from cxmon.alerts import AlertDispatcher
from cxmon.engine import Engine
from tests.helpers import one_step_config
from tests.integration import Daemon, free_port, get_json, is_ready, require_binary, sim_config, wait_until

pytestmark = pytest.mark.integration

AM_CONFIG = """
route:
  receiver: "hook"
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: "hook"
    webhook_configs:
      - url: "{hook}"
        send_resolved: true
"""


@pytest.fixture
async def notifications() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback receiver of Alertmanager's webhook notifications: (its URL, the bodies received)."""
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response()

    app = web.Application()
    app.router.add_post("/am", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/am", received
    finally:
        await runner.cleanup()


@pytest.fixture
def alertmanager(tmp_path: Path, notifications: tuple[str, list[dict[str, Any]]]) -> Iterator[str]:
    """A running Alertmanager on a free loopback port, storage in tmp_path, notifying the
    ``notifications`` receiver; yields its base URL."""
    binary = require_binary("prometheus-alertmanager")
    port = free_port()
    (tmp_path / "am.yml").write_text(AM_CONFIG.format(hook=notifications[0]))
    argv = [
        binary,
        f"--config.file={tmp_path / 'am.yml'}",
        f"--storage.path={tmp_path / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    with Daemon(argv, tmp_path / "alertmanager.log"):
        yield f"http://127.0.0.1:{port}"


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def test_incident_alert_fires_then_resolves_in_alertmanager(
    alertmanager: str, notifications: tuple[str, list[dict[str, Any]]]
) -> None:
    """The simulator's billing outage shows up in Alertmanager as get_help's pot hole, then resolves.

    The simulator runs at 90x: get_help becomes a pot hole about 6 simulated minutes in and recovers
    about 17 minutes in (some 7 s). While it fires the alert is re-sent every 2 s with endsAt 8 s
    ahead, so Alertmanager listing it with more than one endsAt proves the re-sends reached it. An
    alert that expired is notified as resolved with the last endsAt it was given, later than any
    Alertmanager listed; one cxmon resolved carries the moment it was resolved (endsAt = now), so a
    resolved notification with an endsAt earlier than the latest listed one proves the resolve.
    Only timestamps cxmon gave the alert are compared, never the test's own clock.
    """
    _, received = notifications
    await wait_until(lambda: is_ready(f"{alertmanager}/-/ready"), 30, "Alertmanager to be ready")
    config = sim_config(
        speed=90, duration="19m", alertmanager_url=alertmanager, resend_interval="2s", log=False
    )
    engine = Engine(config, store=False)
    dispatcher = AlertDispatcher(config)
    dispatcher.attach(engine)

    seen: list[dict[str, Any]] = []

    async def pothole_listed() -> bool:
        alerts = await get_json(f"{alertmanager}/api/v2/alerts")
        mine = [a for a in alerts if a["labels"].get("alertname") == "CxmonPothole"]
        if mine:
            seen.append(mine[0])
        return bool(mine)

    def resolved() -> list[dict[str, Any]]:
        return [
            a
            for body in received
            for a in body.get("alerts", [])
            if a["labels"].get("alertname") == "CxmonPothole" and a["status"] == "resolved"
        ]

    async def pothole_resolved() -> bool:
        await pothole_listed()
        return bool(resolved())

    async with dispatcher, engine:
        runner = asyncio.create_task(engine.run())
        try:
            await wait_until(pothole_listed, 60, "the CxmonPothole alert to reach Alertmanager")
            await wait_until(pothole_resolved, 60, "Alertmanager to notify the CxmonPothole alert resolved")
        finally:
            engine.stop()
            await asyncio.wait_for(runner, 30)

    alert = seen[0]
    step = config.step("get_help")
    assert alert["labels"]["step"] == "get_help"
    assert alert["labels"]["severity"] == "critical"  # get_help is a moment of truth
    assert alert["labels"]["measure"] in {t.measure for t in step.thresholds}
    assert alert["labels"]["window"] == "5m"
    assert alert["status"]["state"] == "active"
    assert alert["annotations"]["summary"].startswith("Getting help: ")
    assert len({a["endsAt"] for a in seen}) >= 2, "no re-send ever moved the alert's endsAt"
    (gone,) = resolved()
    assert gone["labels"]["step"] == "get_help"
    assert _ts(gone["endsAt"]) < max(_ts(a["endsAt"]) for a in seen), (
        "alert expired instead of being resolved"
    )
    alertmanager_sink = dispatcher.status().sink("alertmanager")
    assert alertmanager_sink is not None and alertmanager_sink.sent >= 3


async def test_a_pot_hole_alert_stays_firing_in_alertmanager_across_a_restart(
    alertmanager: str, notifications: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """A pot hole alerted before cxmon restarts is one unbroken alert in Alertmanager: the restarted
    engine takes it up from its history and re-sends it, so it never expires (endsAt is four 1 s
    re-sends ahead) and Alertmanager notifies it firing, never resolved. Without the warm start the
    restarted engine showed the step OK, sent nothing, and the alert resolved by itself 4 s later."""
    from tests.test_warm_start import Listed, Quiet, calls

    _, received = notifications
    await wait_until(lambda: is_ready(f"{alertmanager}/-/ready"), 30, "Alertmanager to be ready")
    config = one_step_config(
        f'[alerts]\nalertmanager_url = "{alertmanager}"\nresend_interval = "1s"\nlog = false\n'
    )
    db = str(tmp_path / "h.db")
    now = time.time()
    first = AlertDispatcher(config)
    recorder = Engine(config, db_path=db, sources=[Listed(calls(now - 600, now - 1, 90.0))], clock="events")
    first.attach(recorder)
    async with first, recorder:
        await recorder.run()

    async def listed() -> list[dict[str, Any]]:
        alerts = await get_json(f"{alertmanager}/api/v2/alerts")
        return [a for a in alerts if a["labels"].get("alertname") == "CxmonPothole"]

    async def fired() -> bool:
        return bool(await listed())

    await wait_until(fired, 30, "the pot hole's alert to reach Alertmanager")
    (before,) = await listed()
    again = AlertDispatcher(config)
    engine = Engine(config, db_path=db, sources=[Quiet()])
    again.attach(engine)
    async with again, engine:
        runner = asyncio.create_task(engine.run())
        try:
            await asyncio.sleep(10.0)  # past the endsAt the first run gave it, and twice again
            after = await listed()
        finally:
            engine.stop()
            await asyncio.wait_for(runner, 30)
    assert [a["fingerprint"] for a in after] == [before["fingerprint"]], after
    assert after[0]["status"]["state"] == "active"
    assert after[0]["endsAt"] > before["endsAt"]
    statuses = [
        a["status"]
        for body in received
        for a in body.get("alerts", [])
        if a["labels"]["alertname"] == "CxmonPothole"
    ]
    assert statuses and "resolved" not in statuses, statuses
