"""The forecast inside the engine: a lost half of the billing agents is WATCHed on the projection."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from cxmon.engine import Engine
from cxmon.snapshot import Snapshot, State, Transition
from tests.helpers import SIM_START_TS, sim_config

INCIDENT_AT = 900.0
INCIDENT = [{"queue": "billing", "at": "15m", "duration": "10m", "agents_factor": 0.5}]
"""Half the billing agents leave once the forecast has warmed up (default.toml's own is at +3m)."""


async def run(
    tmp_path: Path, minutes: float, reasons: list[tuple[float, str]] | None = None, **options: object
) -> tuple[Engine, list[Transition]]:
    """Run the default simulator at max speed; collect transitions (and billing's reasons)."""
    engine = Engine(sim_config(speed="max", **options), db_path=str(tmp_path / "h.db"))
    seen: list[Transition] = []

    def listen(snap: Snapshot) -> None:
        seen.extend(snap.transitions)
        if reasons is not None:
            for s in snap.series:
                if s.queue == "billing" and s.channel == "voice":
                    reasons.append((snap.ts - SIM_START_TS, s.reason))

    engine.add_listener(listen)
    async with engine:
        await engine.run(duration=minutes * 60)
    return engine, seen


async def test_lost_agents_are_watched_on_the_projection_before_the_breach(tmp_path: Path) -> None:
    """Billing's series is WATCHed with "service level projected below 80% …: 25 agents, need …" after
    the incident starts and before get_help becomes a pot hole; the snapshot carries the forecast."""
    reasons: list[tuple[float, str]] = []
    engine, seen = await run(tmp_path, 24, reasons, incidents=INCIDENT)
    pothole_at = next(t.ts for t in seen if t.step == "get_help" and t.to_state is State.POTHOLE)
    projected = [
        t for t, r in reasons if r.startswith("service level projected below 80%") and "25 agents, need" in r
    ]
    assert projected, reasons
    assert INCIDENT_AT < projected[0] < pothole_at - SIM_START_TS
    assert not any("projected" in r for t, r in reasons if t < INCIDENT_AT)
    billing = next(s for s in engine.latest.series if s.queue == "billing" and s.channel == "voice")
    assert billing.forecast is not None and billing.forecast.agents == 25
    assert billing.forecast.agents_needed is not None and billing.forecast.agents_needed > 25
    assert billing.forecast.summary().startswith("needs ")


async def test_minute_figures_store_the_forecast(tmp_path: Path) -> None:
    """The stored minute figures of a voice queue carry forecast_* figures; an email queue's do not."""
    await run(tmp_path, 14, incidents_enabled=False)
    con = sqlite3.connect(tmp_path / "h.db")
    rows = con.execute("SELECT queue, figures FROM snapshots ORDER BY minute DESC").fetchall()
    con.close()
    latest: dict[str, dict[str, float]] = {}
    for queue, figures in rows:
        latest.setdefault(queue, orjson.loads(figures))
    assert latest["billing"]["forecast_agents"] == 50.0
    assert 0.0 <= latest["billing"]["forecast_service_level"] <= 1.0
    assert not any(k.startswith("forecast_") for k in latest["tickets"])


async def test_a_quiet_well_staffed_half_hour_raises_no_watch(tmp_path: Path) -> None:
    """Without the incident, no step of the default journey leaves OK in 30 minutes."""
    _, seen = await run(tmp_path, 30, incidents_enabled=False)
    assert [t for t in seen if t.channel == "" and t.to_state is not State.OK] == []
