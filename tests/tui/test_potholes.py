"""The pot-hole board and its tab count list each problem once, with the series that drives it."""

from __future__ import annotations

import dataclasses

from textual.widgets import TabbedContent

from cxmon.engine import Engine
from cxmon.snapshot import State
from cxmon.tui.app import CxmonApp
from cxmon.tui.feed import MemoryFeed
from cxmon.tui.format import clock_text
from cxmon.tui.widgets.pothole_board import PotholeBoard
from tests.tui.conftest import SIZE, settle


def problems(engine: Engine) -> set[tuple[str, str, str]]:
    """The reference: every series that is not OK, under a step that is not OK."""
    snap = engine.latest
    bad_steps = {s.name for s in snap.steps if s.state is not State.OK}
    return {s.key for s in snap.series if s.state is not State.OK and s.step in bad_steps}


async def test_the_tab_counts_each_problem_once(engine: Engine) -> None:
    """The Pot holes tab's count is the number of series in trouble, not steps plus series."""
    expected = problems(engine)
    assert expected  # the incident is on
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        tabs = app.query_one("#tabs", TabbedContent)
        await settle(pilot, lambda: app.snapshot.version > 0)
        await pilot.pause()
        assert str(tabs.get_tab("potholes").label) == f"Pot holes ({len(expected)})"


async def test_the_board_lists_each_problem_once_with_its_series(engine: Engine) -> None:
    """Each series in trouble is one row naming its channel/queue; no step is listed again as a whole."""
    expected = problems(engine)
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        board = app.query_one(PotholeBoard)
        await pilot.press("2")
        await settle(pilot, lambda: board.row_count > 0)
        keys = board.row_keys_in_order
        assert len(keys) == len(set(keys)) == len(expected)
        assert {tuple(k.split("\t")) for k in keys} == expected
        wheres = [str(board.get_row(k)[2]) for k in keys]
        assert "whole step" not in wheres


async def test_since_is_when_the_series_entered_its_state_in_a_skipped_snapshot(engine: Engine) -> None:
    """A WATCH → POTHOLE transition in a snapshot the dashboard never applied still sets the row's Since."""
    latest = engine.latest
    key = next(s.key for s in latest.series if s.key in problems(engine) and s.state is State.POTHOLE)
    ours = [tr for tr in latest.recent_transitions if (tr.step, tr.channel, tr.queue) == key]
    watch = next(tr for tr in ours if tr.to_state is State.WATCH)
    pothole = next(tr for tr in ours if tr.to_state is State.POTHOLE and tr.ts > watch.ts)
    first = dataclasses.replace(latest, version=1, transitions=(watch,), recent_transitions=(watch,))
    feed = MemoryFeed(engine.config, first)
    app = CxmonApp(feed, refresh_interval=0, timezone="UTC")
    async with app.run_test(size=SIZE) as pilot:
        board = app.query_one(PotholeBoard)
        await pilot.press("2")
        await settle(pilot, lambda: board.row_count > 0)
        # The tick of the pot hole (version 2) is skipped: the next one the app sees has no transition.
        feed.publish(
            dataclasses.replace(latest, version=3, transitions=(), recent_transitions=(watch, pothole))
        )
        await settle(pilot, lambda: app.snapshot.version == 3)
        await pilot.pause()
        since = str(board.get_row("\t".join(key))[3])
        assert since == clock_text(pothole.ts, app.tz)
