"""The forecast as Prometheus gauges: the snapshot's figures, one sample per series, promtool-clean."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

from prometheus_client import CollectorRegistry

from cxmon.engine import Engine
from cxmon.exposition import SnapshotCollector, render
from cxmon.forecast.usual import UsualFigure
from cxmon.snapshot import EMPTY_SNAPSHOT, Snapshot
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


def test_baselines_are_gauges_per_measure_with_window_and_quantile() -> None:
    """Each ready baseline of the snapshot is two samples of ``cxmon_baseline_<the measure's gauge>``
    (the median at percentile 50, the limit at its own: 5 or 95), labelled with the window; the text
    exposition and prometheus-client agree, and promtool finds nothing wrong."""
    config = sim_config()
    usual = (
        UsualFigure("get_help", "voice", "billing", "service_level", 300.0, 0.93, 0.86, 0.05, 3),
        UsualFigure("escalate", "voice", "tier2", "wait_p90", 900.0, 75.0, 140.0, 0.95, 2),
    )
    snap = dataclasses.replace(EMPTY_SNAPSHOT, baselines=usual)
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(snap, config))
    get = registry.get_sample_value
    billing = {"step": "get_help", "channel": "voice", "queue": "billing", "window": "5m"}
    assert get("cxmon_baseline_service_level_ratio", {**billing, "percentile": "50"}) == 0.93
    assert get("cxmon_baseline_service_level_ratio", {**billing, "percentile": "5"}) == 0.86
    tier2 = {"step": "escalate", "channel": "voice", "queue": "tier2", "window": "15m"}
    assert get("cxmon_baseline_wait_p90_seconds", {**tier2, "percentile": "95"}) == 140.0
    body = render(snap, config)
    line = 'cxmon_baseline_wait_p90_seconds{step="escalate",channel="voice",queue="tier2",window="15m",'
    assert (line + 'percentile="50"} 75.0').encode() in body
    promtool = require_binary("promtool")
    proc = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert proc.returncode == 0 and proc.stdout + proc.stderr == b"", proc.stdout + proc.stderr
