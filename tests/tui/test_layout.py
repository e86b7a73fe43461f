"""At 80 × 24 (an SSH window) the dashboard fits: whole tiles, the useful columns, sideways scroll."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import Static

from cxmon.engine import Engine
from cxmon.measures import MEASURES
from cxmon.tui.app import CxmonApp
from cxmon.tui.format import (
    MATRIX_MEASURES,
    SHORT_TITLES,
    SPARK_MEASURES,
    STATE_WORD,
    threshold_text,
    thresholds_for,
)
from cxmon.tui.widgets.detail_pane import DetailPane, pick_series
from cxmon.tui.widgets.journey_map import StepTile
from cxmon.tui.widgets.step_matrix import FIXED_COLUMNS, STAFFING_COLUMN, StepMatrix
from tests.tui.conftest import settle

SMALL = (80, 24)


async def test_every_tile_shows_its_whole_label_state_and_figure_at_80x24(engine: Engine) -> None:
    """No tile is cut: each line of each tile fits its width, and the label and state word are there."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot, lambda: len(app.query(StepTile)) == len(engine.config.steps))
        await pilot.pause()
        for tile in app.query(StepTile):
            status = engine.latest.step(tile.step)
            assert status is not None
            text = str(tile.render())
            assert status.label in text and STATE_WORD[status.state] in text, text
            width = tile.content_size.width
            assert all(len(line) <= width for line in text.splitlines()), (text, width)
            assert tile.region.right <= SMALL[0] and tile.region.bottom <= SMALL[1]


async def test_the_matrix_keeps_the_most_useful_columns_in_view_at_80x24(engine: Engine) -> None:
    """Step, channel, state and at least service level, wait p90 and waiting now are wholly on screen."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SMALL) as pilot:
        matrix = app.query_one(StepMatrix)
        await settle(pilot, lambda: matrix.row_count > 3)
        await pilot.pause()
        assert matrix.compact
        edges = []
        right = 0
        for column in matrix.ordered_columns:
            right += column.get_render_width(matrix)
            edges.append(right)
        visible = matrix.scrollable_content_region.width
        in_view = sum(1 for edge in edges if edge <= visible)
        assert in_view >= 3 + 3, (edges, visible)
        assert MATRIX_MEASURES[:3] == ("service_level", "wait_p90", "waiting_now")


async def scroll_to_the_end(pilot: Pilot[int], matrix: StepMatrix) -> None:
    """Press → once per cell the matrix can scroll (each press moves one cell), and let it settle."""
    presses = matrix.max_scroll_x
    assert presses > 0  # the last columns are off the right edge
    await pilot.press(*["right"] * presses)
    await settle(pilot, lambda: matrix.scroll_x == matrix.max_scroll_x)


async def test_right_arrow_scrolls_the_matrix_to_its_last_columns(engine: Engine) -> None:
    """→ on the matrix scrolls sideways, one cell a press, until the last column is wholly in view;
    step, channel and state stay in view at the left (they are fixed), the key figures after them."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SMALL) as pilot:
        matrix = app.query_one(StepMatrix)
        await settle(pilot, lambda: matrix.row_count > 3)
        await pilot.press("1")
        titles = [str(c.label) for c in matrix.ordered_columns]
        assert titles[:3] == list(FIXED_COLUMNS) and matrix.fixed_columns == 3
        assert titles[3:6] == [SHORT_TITLES[m] for m in ("service_level", "wait_p90", "waiting_now")]
        await pilot.press("right")
        await settle(pilot, lambda: matrix.scroll_x == 1)
        await scroll_to_the_end(pilot, matrix)
        widths = [c.get_render_width(matrix) for c in matrix.ordered_columns]
        # Scrolled by scroll_x, the last column starts right of the fixed ones and ends in view.
        assert sum(widths[:-1]) - matrix.scroll_x >= sum(widths[:3])
        assert sum(widths) - matrix.scroll_x <= matrix.scrollable_content_region.width
        assert titles[-1] == STAFFING_COLUMN


async def test_a_wide_screen_shows_every_column_with_its_full_title(engine: Engine) -> None:
    """At 160 × 48 the matrix needs no scrolling and titles are the measures' full labels."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=(160, 48)) as pilot:
        matrix = app.query_one(StepMatrix)
        await settle(pilot, lambda: matrix.row_count > 3)
        await pilot.pause()
        assert not matrix.compact and matrix.max_scroll_x == 0
        titles = [str(c.label) for c in matrix.ordered_columns][3:]
        assert titles == [*(MEASURES[m].label for m in MATRIX_MEASURES), STAFFING_COLUMN]


async def test_a_sideways_scroll_survives_the_rows_being_reordered(engine: Engine) -> None:
    """Scrolled to the last columns, the matrix stays there when s re-sorts its rows (a rebuild)."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SMALL) as pilot:
        matrix = app.query_one(StepMatrix)
        await settle(pilot, lambda: matrix.row_count > 3)
        await pilot.press("1")
        await scroll_to_the_end(pilot, matrix)
        before, x = matrix.row_keys_in_order, matrix.scroll_x
        await pilot.press("s", "s")  # by wait p90, worst first: a new order
        await pilot.pause()
        assert matrix.row_keys_in_order != before
        await settle(pilot, lambda: matrix.scroll_x == x)


async def test_the_detail_sparklines_leave_room_for_their_thresholds_at_80x24(engine: Engine) -> None:
    """Each sparkline line of the detail fits 80 columns whole: its warn and breach are not cut."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot, lambda: app.snapshot.version > 0)
        await pilot.press("3")
        pane = app.query_one(DetailPane)
        sparks = app.query_one("#detail-sparks", Static)
        await settle(pilot, lambda: sparks.size.height >= len(SPARK_MEASURES))
        await pilot.pause()
        _, series = pick_series(app.snapshot, None, None)
        assert series is not None
        shown = [
            "".join(seg.text for seg in sparks.render_line(y)).rstrip() for y in range(sparks.size.height)
        ]
        for measure, line in zip(SPARK_MEASURES, shown, strict=True):
            ths = thresholds_for(engine.config, series.step, measure, series.channel)
            limits = threshold_text(ths, min(series.windows))
            assert line.endswith(limits) and "…" not in line, (line, limits)
        assert any("breach" in line for line in shown)
        assert pane.region.right <= SMALL[0]


async def test_every_key_of_the_footer_is_on_screen_at_80x24(engine: Engine) -> None:
    """At 80 columns the footer shows every key it names, on the journey map and on each panel:
    acknowledging, pausing and the wallboard were cut off the end of the line (the command
    palette's ^p goes, it is in the help)."""
    from textual.widgets._footer import FooterKey

    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot, lambda: app.snapshot.version > 0)
        for key in ("", "1", "2", "3", "4", "5"):
            if key:
                await pilot.press(key)
            await pilot.pause()
            shown = list(app.query(FooterKey))
            names = {k.description for k in shown}
            assert {"Quit", "Help", "Ack", "Pause", "Wall"} <= names, (key, names)
            cut = [k.description for k in shown if k.region.right > SMALL[0] or not k.region.width]
            assert not cut, (key, cut)
