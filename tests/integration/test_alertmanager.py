"""cxmon's alerts against a real Alertmanager (Debian's prometheus-alertmanager) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cxmon.alerts import AlertDispatcher
from cxmon.engine import Engine
from tests.integration import Daemon, free_port, get_json, is_ready, require_binary, sim_config, wait_until

pytestmark = pytest.mark.integration

AM_CONFIG = """
route:
  receiver: "null"
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: "null"
"""


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """A running Alertmanager on a free loopback port, storage in tmp_path; yields its base URL."""
    binary = require_binary("prometheus-alertmanager")
    port = free_port()
    (tmp_path / "am.yml").write_text(AM_CONFIG)
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


async def test_incident_alert_fires_then_resolves_in_alertmanager(alertmanager: str) -> None:
    """The simulator's billing outage shows up in Alertmanager as get_help's pot hole, then resolves.

    The simulator runs at 90x: get_help becomes a pot hole about 6 simulated minutes in and recovers
    about 17 minutes in. While it fires the alert is re-sent every second with endsAt 4 s ahead, so
    Alertmanager listing it with more than one endsAt proves the re-sends reached it; its leaving the
    list before the last endsAt it carried proves the resolve (endsAt = now) rather than expiry.
    """
    await wait_until(lambda: is_ready(f"{alertmanager}/-/ready"), 30, "Alertmanager to be ready")
    config = sim_config(
        speed=90, duration="19m", alertmanager_url=alertmanager, resend_interval="1s", log=False
    )
    engine = Engine(config, store=False)
    dispatcher = AlertDispatcher(config)
    dispatcher.attach(engine)

    seen: list[dict[str, Any]] = []
    gone_at: float | None = None

    async def pothole_listed() -> bool:
        alerts = await get_json(f"{alertmanager}/api/v2/alerts")
        mine = [a for a in alerts if a["labels"].get("alertname") == "CxmonPothole"]
        if mine:
            seen.append(mine[0])
        return bool(mine)

    async def pothole_gone() -> bool:
        nonlocal gone_at
        if await pothole_listed():
            return False
        gone_at = time.time()
        return True

    async with dispatcher, engine:
        runner = asyncio.create_task(engine.run())
        try:
            await wait_until(pothole_listed, 60, "the CxmonPothole alert to reach Alertmanager")
            await wait_until(pothole_gone, 60, "the CxmonPothole alert to be resolved")
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
    assert gone_at is not None
    assert len({a["endsAt"] for a in seen}) >= 2, "no re-send ever moved the alert's endsAt"
    assert gone_at < max(_ts(a["endsAt"]) for a in seen), "alert expired instead of being resolved"
    assert dispatcher.status()["sinks"]["alertmanager"]["sent"] >= 3
