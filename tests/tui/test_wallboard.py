"""The wallboard started from the command line (``cxmon run --wallboard``) on a live feed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Label

from cxmon.engine import Engine
from cxmon.tui.app import CxmonApp
from cxmon.tui.screens.wallboard import BigTile, WallboardScreen
from tests.snapshot_app import sim_config
from tests.tui.conftest import settle


async def test_wallboard_mode_starts_on_a_live_feed_and_keeps_up(tmp_path: Path) -> None:
    """Started in wallboard mode while snapshots keep coming, the app shows a big tile per step, each
    with its figure, and is still running (before the fix the first snapshot that met a tile not yet
    composed killed the app)."""
    async with Engine(sim_config(speed="600"), db_path=str(tmp_path / "live.db")) as eng:
        runner = asyncio.create_task(eng.run())
        app = CxmonApp(eng, wallboard=True)
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot, lambda: isinstance(app.screen, WallboardScreen))
            await settle(
                pilot,
                lambda: (
                    len(app.screen.query(BigTile)) == len(eng.config.steps)
                    and all(t._shown is not None for t in app.screen.query(BigTile))
                ),
                tries=1000,
            )
            start = app.snapshot.version
            await settle(pilot, lambda: app.snapshot.version > start + 5, tries=1000)
            assert app.is_running
            assert isinstance(app.screen, WallboardScreen)
        eng.stop()
        await runner
    assert app.return_code in (None, 0)


async def test_a_tile_given_figures_before_it_is_composed_shows_them_once_mounted(engine: Engine) -> None:
    """A snapshot can reach a big tile between its mounting and its composing: the figures are kept,
    not lost to an error, and are on screen once the tile is up."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=(160, 48)) as pilot:
        status = engine.latest.steps[0]
        tile = BigTile(status.name)
        tile.show(status, status.state)
        await app.screen.mount(tile)
        await pilot.pause()
        assert status.label in str(tile.query_one(".big-label", Label).render())


async def shown_tiles(app: CxmonApp, pilot: Pilot[int]) -> list[BigTile]:
    """The wallboard's tiles once each shows its step's figures."""
    await settle(pilot, lambda: isinstance(app.screen, WallboardScreen))
    tiles = list(app.screen.query(BigTile))
    await settle(pilot, lambda: all(t._shown is not None for t in tiles))
    await pilot.pause()
    return tiles


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
async def test_every_tile_shows_its_measure_line_inside_its_border(
    engine: Engine, size: tuple[int, int]
) -> None:
    """On a small terminal as on a TV, each big tile keeps its measure line ("service level % → · 5m")
    inside its border, under its digits, even where its title takes two lines."""
    app = CxmonApp(engine, refresh_interval=0, wallboard=True)
    async with app.run_test(size=size) as pilot:
        tiles = await shown_tiles(app, pilot)
        assert len(tiles) == len(engine.config.steps)
        for tile in tiles:
            unit = tile.query_one(".big-unit", Label)
            inside = tile.content_region
            assert str(unit.render()), tile.step
            assert unit.region.height >= 1 and inside.contains_region(unit.region), (
                tile.step,
                unit.region,
                inside,
            )


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
async def test_every_tile_shows_its_state_word_whole_on_one_line(
    engine: Engine, size: tuple[int, int]
) -> None:
    """Each big tile's title shows its state word ("✔ OK", "▲ WATCH") whole on one line, however
    long the step's name (at 80 × 24, "Pre-sale enquiry ✔ OK" is wider than a tile)."""
    from cxmon.tui.format import STATE_WORD

    app = CxmonApp(engine, refresh_interval=0, wallboard=True)
    async with app.run_test(size=size) as pilot:
        for tile in await shown_tiles(app, pilot):
            label = tile.query_one(".big-label", Label)
            lines = [strip.text.strip() for strip in label.render_lines(label.size.region)]
            words = [w for w in STATE_WORD.values() if any(w in line for line in lines)]
            assert len(words) == 1, (tile.step, lines)
            assert label.region.height >= 2 and tile.content_region.contains_region(label.region), tile.step
