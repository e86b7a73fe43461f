"""The documented keys work from anywhere on the screen they belong to, whatever has the focus."""

from __future__ import annotations

from textual.message import Message
from textual.widgets import TabbedContent, Tabs

from cxmon.engine import Engine
from cxmon.tui.app import CxmonApp
from cxmon.tui.messages import CustomerChosen, StepChosen
from cxmon.tui.widgets.diff_table import DiffTable
from cxmon.tui.widgets.journey_map import JourneyMap
from cxmon.tui.widgets.pothole_board import PotholeBoard
from cxmon.tui.widgets.step_matrix import StepMatrix
from tests.tui.conftest import SIZE, settle


async def test_s_sorts_the_matrix_right_after_1(engine: Engine) -> None:
    """From the journey map, 1 then s ranks the matrix by its first figure (no Tab needed)."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        matrix = app.query_one(StepMatrix)
        await settle(pilot, lambda: matrix.row_count > 3)
        app.query_one(JourneyMap).focus()
        await pilot.press("1", "s")
        await pilot.pause()
        assert matrix.sort_column == 0


async def test_space_expands_with_the_focus_on_the_journey_map(engine: Engine) -> None:
    """Space while the journey map has the focus lists the queues of the matrix row under the cursor."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        matrix = app.query_one(StepMatrix)
        await settle(pilot, lambda: matrix.row_count > 3)
        app.query_one(JourneyMap).focus()
        row = matrix.current_row
        assert row is not None
        step = row.step
        await pilot.press("space")
        await pilot.pause()
        assert matrix.expanded == {step}


async def test_s_does_nothing_on_other_panels(engine: Engine) -> None:
    """s belongs to the matrix: on the pot-hole panel it leaves the matrix order alone."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        matrix = app.query_one(StepMatrix)
        await settle(pilot, lambda: matrix.row_count > 3)
        await pilot.press("2", "s")
        await pilot.pause()
        assert matrix.sort_column is None


async def test_enter_on_the_tab_bar_opens_the_panel(engine: Engine) -> None:
    """With the focus on the tab bar, Enter gives the shown panel's table the focus."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.snapshot.version > 0)
        tabs = app.query_one("#tabs", TabbedContent)
        tabs.active = "potholes"
        app.query_one(Tabs).focus()
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert app.focused is app.query_one(PotholeBoard)


async def test_escape_clears_the_filter_from_anywhere(engine: Engine) -> None:
    """After / billing Enter, Esc with the focus on the journey map brings every row back."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        matrix = app.query_one(StepMatrix)
        await settle(pilot, lambda: matrix.row_count > 3)
        everything = matrix.row_count
        await pilot.press("slash", *"billing", "enter")
        await pilot.pause()
        assert app.filter_text == "billing" and matrix.row_count < everything
        app.query_one(JourneyMap).focus()
        await pilot.press("escape")
        await pilot.pause()
        assert app.filter_text == ""
        assert matrix.row_count == everything


async def test_escape_goes_back_from_a_drill_in_to_the_panel_it_came_from(engine: Engine) -> None:
    """Enter on a matrix row opens the detail; Esc brings the matrix back with the keys on it. From
    the pot-hole panel (2, then a drill-in), Esc goes back there instead."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        matrix = app.query_one(StepMatrix)
        await settle(pilot, lambda: matrix.row_count > 3)
        tabs = app.query_one("#tabs", TabbedContent)
        await pilot.press("1", "down", "enter")
        await pilot.pause()
        assert tabs.active == "detail"
        await pilot.press("escape")
        await pilot.pause()
        assert tabs.active == "matrix" and app.focused is matrix
        await pilot.press("2")
        await pilot.pause()
        app.post_message(StepChosen(engine.config.steps[0].name))
        await settle(pilot, lambda: tabs.active == "detail")
        await pilot.press("escape")
        await pilot.pause()
        assert tabs.active == "potholes"


async def test_4_then_enter_opens_the_first_customer(engine: Engine) -> None:
    """4 then Enter shows the path of the customer with the most strikes (no Tabs needed)."""
    seen: list[Message] = []
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await settle(pilot, lambda: app.snapshot.version > 0)
        await pilot.press("4")
        paths = app.query_one("#leaders", DiffTable)
        await settle(pilot, lambda: paths.row_count > 0)
        await pilot.press("enter")
        await settle(pilot, lambda: any(isinstance(m, CustomerChosen) for m in seen))
        chosen = next(m for m in seen if isinstance(m, CustomerChosen))
        leaders = await engine.customer_leaders(20)
        assert chosen.customer_id == leaders[0][0]
