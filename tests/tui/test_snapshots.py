"""Screenshots of the dashboard on a fixed simulator picture (80×24 and 160×48), compared to approved SVGs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

from cxmon.tui.widgets.journey_map import StepTile

SNAPSHOT_APP = "../snapshot_app.py"


async def painted(pilot: Pilot[Any]) -> None:
    """Wait until the first snapshot is on screen (every tile painted)."""
    app = pilot.app
    for _ in range(200):
        tiles = list(app.query(StepTile))
        if tiles and all(t._shown is not None for t in tiles):
            break
        await pilot.pause(0.02)
    await pilot.pause()


def then_press(*keys: str) -> Callable[[Pilot[Any]], Any]:
    """Wait for the first snapshot, then press ``keys``."""

    async def run(pilot: Pilot[Any]) -> None:
        await painted(pilot)
        await pilot.press(*keys)
        await pilot.pause()
        await painted(pilot)

    return run


def test_main_screen_80x24(snap_compare: Any) -> None:
    """The main screen fits a small terminal: tiles, the matrix, status bar and footer."""
    assert snap_compare(SNAPSHOT_APP, terminal_size=(80, 24), run_before=painted)


def test_main_screen_160x48(snap_compare: Any) -> None:
    """The main screen on a large terminal."""
    assert snap_compare(SNAPSHOT_APP, terminal_size=(160, 48), run_before=painted)


def test_pothole_board_160x48(snap_compare: Any) -> None:
    """The pot-hole board ranks the billing pot hole first."""
    assert snap_compare(SNAPSHOT_APP, terminal_size=(160, 48), run_before=then_press("2"))


def test_detail_pane_160x48(snap_compare: Any) -> None:
    """Drilling into the worst step shows its sparklines and every window's figures."""
    drill_in = then_press("right", "right", "enter")
    assert snap_compare(SNAPSHOT_APP, terminal_size=(160, 48), run_before=drill_in)


def test_wallboard_160x48(snap_compare: Any) -> None:
    """The wallboard: one big tile per step."""
    assert snap_compare(SNAPSHOT_APP, terminal_size=(160, 48), run_before=then_press("v"))


def test_pothole_board_80x24(snap_compare: Any) -> None:
    """The pot-hole board on a small terminal: one row per problem, the highlighted one in full below."""
    assert snap_compare(SNAPSHOT_APP, terminal_size=(80, 24), run_before=then_press("2"))


def test_explain_view_160x48(snap_compare: Any) -> None:
    """Enter on the red matrix row: the detail works the service level out from its counts."""
    drill_in = then_press("1", "down", "down", "down", "down", "enter")
    assert snap_compare(SNAPSHOT_APP, terminal_size=(160, 48), run_before=drill_in)


def test_detail_pane_80x24(snap_compare: Any) -> None:
    """The detail of the worst step on a small terminal."""
    assert snap_compare(SNAPSHOT_APP, terminal_size=(80, 24), run_before=then_press("3"))


def test_acknowledge_dialog_80x24(snap_compare: Any) -> None:
    """The acknowledge dialog fits a small terminal: three labelled fields and both buttons."""
    assert snap_compare(SNAPSHOT_APP, terminal_size=(80, 24), run_before=then_press("2", "a"))


def test_wallboard_80x24(snap_compare: Any) -> None:
    """The wallboard on a small terminal."""
    assert snap_compare(SNAPSHOT_APP, terminal_size=(80, 24), run_before=then_press("v"))
