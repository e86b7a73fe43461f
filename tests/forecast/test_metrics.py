"""The forecast as Prometheus gauges: the snapshot's figures, one sample per series, promtool-clean."""

from __future__ import annotations

import subprocess
from pathlib import Path

from prometheus_client import CollectorRegistry

from cxmon.engine import Engine
from cxmon.exposition import SnapshotCollector, render
from cxmon.snapshot import Snapshot
from tests.helpers import require_binary, sim_config

INCIDENT = [{"queue": "billing", "at": "11m", "duration": "10m", "agents_factor": 0.5}]


async def snapshot_during_incident() -> tuple[Snapshot, Engine]:
    """13 simulated minutes: the forecast has warmed up and billing has lost half its agents."""
    engine = Engine(sim_config(speed="max", incidents=INCIDENT), store=False)
    async with engine:
        await engine.run(duration=780)
    return engine.latest, engine


async def test_gauges_carry_the_snapshot_forecast(tmp_path: Path) -> None:
    """Each forecast gauge of billing equals the snapshot's forecast, labelled with its model; the
    projected breach has an ETA; promtool finds nothing wrong."""
    snap, engine = await snapshot_during_incident()
    billing = next(s for s in snap.series if s.queue == "billing" and s.channel == "voice")
    f = billing.forecast
    assert f is not None and f.figures is not None and f.model is not None
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(snap, engine.config))
    labels = {"step": "get_help", "channel": "voice", "queue": "billing"}
    modelled = {**labels, "model": f.model}
    get = registry.get_sample_value
    assert get("cxmon_forecast_service_level_ratio", modelled) == f.figures.service_level
    assert get("cxmon_forecast_abandon_ratio", modelled) == f.figures.p_abandon
    assert get("cxmon_forecast_agents", labels) == 25.0
    assert get("cxmon_forecast_agents_needed", modelled) == f.agents_needed
    assert get("cxmon_forecast_arrivals_per_second", labels) == f.arrival_rate
    eta = get("cxmon_forecast_breach_eta_seconds", {**labels, "measure": "service_level", "window": "5m"})
    assert eta is not None and eta >= 0.0
    assert get("cxmon_forecast_agents", {"step": "resolve", "channel": "email", "queue": "tickets"}) is None

    promtool = require_binary("promtool")
    body = render(snap, engine.config)
    proc = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert proc.returncode == 0 and proc.stdout + proc.stderr == b"", proc.stdout + proc.stderr


async def test_the_hub_carries_the_forecast() -> None:
    """A snapshot with forecasts survives the hub's codec unchanged (watchers see the same staffing)."""
    from cxmon.hub.codec import decode, dumps, encode, loads

    snap, _ = await snapshot_during_incident()
    assert any(s.forecast is not None and s.forecast.projections for s in snap.series)
    assert decode(loads(dumps(encode(snap, Snapshot))), Snapshot) == snap
