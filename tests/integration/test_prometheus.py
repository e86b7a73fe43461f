"""A real Prometheus (Debian's prometheus) scraping a running cxmon on 127.0.0.1."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cxmon.engine import Engine
from cxmon.http_server import start_http
from cxmon.snapshot import Snapshot
from tests.integration import Daemon, free_port, get_json, is_ready, require_binary, sim_config, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
async def cxmon_run() -> AsyncIterator[tuple[Snapshot, int]]:
    """cxmon after 30 simulated minutes (engine finished, exporter still serving): (snapshot, port)."""
    config = sim_config(speed="max", duration="30m")
    async with Engine(config, store=False) as engine:
        await engine.run()
        services = await start_http(engine, "127.0.0.1", 0)
        try:
            yield engine.latest, services.port
        finally:
            await services.aclose()


async def query(base: str, promql: str) -> list[dict[str, Any]]:
    """Run an instant query through Prometheus' HTTP API."""
    doc = await get_json(f"{base}/api/v1/query?query={urllib.parse.quote(promql)}")
    assert doc["status"] == "success", doc
    result: list[dict[str, Any]] = doc["data"]["result"]
    return result


async def test_prometheus_scrapes_what_the_snapshot_says(
    cxmon_run: tuple[Snapshot, int], tmp_path: Path
) -> None:
    """Prometheus (scrape interval 1 s) sees the target up, and its queries agree with cxmon's snapshot."""
    binary = require_binary("prometheus")
    snap, metrics_port = cxmon_run
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: cxmon\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{metrics_port}']\n"
    )
    argv = [
        binary,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    base = f"http://127.0.0.1:{port}"
    with Daemon(argv, tmp_path / "prometheus.log") as daemon:
        await wait_until(lambda: is_ready(f"{base}/-/ready"), 60, "Prometheus to be ready")

        async def target_up() -> bool:
            doc = await get_json(f"{base}/api/v1/targets")
            return any(t["health"] == "up" for t in doc["data"]["activeTargets"])

        async def scraped() -> bool:
            return bool(await query(base, "cxmon_build_info"))

        await wait_until(target_up, 60, f"the cxmon target to be up\n{daemon.log_tail()}")
        await wait_until(scraped, 30, "the first samples to be queryable")

        billing = next(s for s in snap.series if s.key == ("get_help", "voice", "billing"))
        (offered,) = await query(
            base, 'cxmon_contacts_total{step="get_help",channel="voice",queue="billing",outcome="offered"}'
        )
        (total,) = await query(base, 'sum(cxmon_contacts_total{outcome="answered"})')
        (p90,) = await query(base, 'cxmon_wait_p90_seconds{step="get_help",queue="billing",window="5m"}')
        states = await query(base, "cxmon_step_state == 1")

    assert float(offered["value"][1]) == billing.totals["offered"]
    assert float(total["value"][1]) == sum(s.totals["answered"] for s in snap.series)
    assert float(p90["value"][1]) == pytest.approx(billing.value("wait_p90", 300.0))
    assert {r["metric"]["step"]: r["metric"]["state"] for r in states} == {
        s.name: s.state.value for s in snap.steps
    }
    assert offered["metric"]["job"] == "cxmon"
