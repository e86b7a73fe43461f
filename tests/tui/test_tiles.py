"""A tile shows the step's configured headline, and its reason line names the measure that breaches."""

from __future__ import annotations

import dataclasses

from cxmon.engine import Engine
from cxmon.measures import INSTANT
from cxmon.snapshot import State
from cxmon.tui.app import CxmonApp
from cxmon.tui.feed import MemoryFeed
from cxmon.tui.widgets.journey_map import StepTile
from cxmon.units import format_window
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


async def test_each_tile_names_the_window_its_figure_is_measured_over(engine: Engine) -> None:
    """A tile's figure is read in the window of the step's threshold on its headline (escalation's
    wait p90 over 15m, feedback's CSAT over 60m; the shortest window where no threshold reads it, and
    none for a figure of "now"), and the tile says which, since the matrix beside it shows the window
    chosen with ``w``."""
    windows = {}
    for step in engine.config.steps:
        judged = [th.window for th in step.thresholds if th.measure == step.headline]
        window = judged[0] if judged else min(engine.config.monitor.windows)
        windows[step.name] = 0.0 if step.headline in INSTANT else window
    assert len(set(windows.values())) > 1, "the default journey judges its headlines over several windows"
    app = CxmonApp(MemoryFeed(engine.config, engine.latest), refresh_interval=0)
    async with app.run_test(size=(160, 48)) as pilot:
        tiles = {s.name: app.query_one(f"#tile-{s.name}", StepTile) for s in engine.latest.steps}
        await settle(pilot, lambda: all(t._shown is not None for t in tiles.values()))
        await pilot.pause()
        figure_lines = {name: str(tile.render()).splitlines()[2] for name, tile in tiles.items()}
    for status in engine.latest.steps:
        assert status.headline_window == windows[status.name]
        window = windows[status.name]
        if window:
            assert figure_lines[status.name].endswith(f" {format_window(window)}"), figure_lines
        else:  # a figure of "now" names no window
            labels = [f" {format_window(w)}" for w in engine.config.monitor.windows]
            assert not figure_lines[status.name].endswith(tuple(labels)), figure_lines
