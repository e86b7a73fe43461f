"""A tile shows the step's configured headline, and its reason line names the measure that breaches."""

from __future__ import annotations

import dataclasses

from cxmon.engine import Engine
from cxmon.snapshot import State
from cxmon.tui.app import CxmonApp
from cxmon.tui.feed import MemoryFeed
from cxmon.tui.widgets.journey_map import StepTile
from tests.tui.conftest import settle

REASON = "voice/billing: abandon rate 32% > 15% for 2m"


async def test_the_reason_line_names_the_breaching_measure_beside_the_headline(engine: Engine) -> None:
    """Getting help's headline is its service level; breaching on abandon rate, the tile says so below."""
    snap = engine.latest
    steps = tuple(
        dataclasses.replace(s, state=State.POTHOLE, reason=REASON) if s.name == "get_help" else s
        for s in snap.steps
    )
    app = CxmonApp(MemoryFeed(engine.config, dataclasses.replace(snap, steps=steps)), refresh_interval=0)
    async with app.run_test(size=(160, 48)) as pilot:
        tile = app.query_one("#tile-get_help", StepTile)
        await settle(pilot, lambda: tile._shown is not None)
        await pilot.pause()
        lines = str(tile.render()).splitlines()
    assert "service level" in lines[2]  # the configured headline
    assert lines[3].startswith("abandon rate 32% > 15%"), lines  # why, measure first
    assert lines[3].endswith("voice/billing")
