"""The event log is read from the top: what just happened stays in view as entries arrive."""

from __future__ import annotations

from datetime import UTC

from textual.app import App, ComposeResult

from cxmon.snapshot import State
from cxmon.tui.widgets.event_log import EventLog, LogEntry

START = 1767600000.0
"""2026-01-05 08:00 UTC."""


class Log(App[None]):
    """The event log alone, on a screen too short for all of its entries."""

    def compose(self) -> ComposeResult:
        yield EventLog(tz=UTC)


def entries(n: int) -> tuple[LogEntry, ...]:
    """``n`` transitions a minute apart, newest first, as the app hands them to the log."""
    made = [
        LogEntry(START + 60.0 * i, "order", "voice/sales", f"OK → WATCH #{i}", State.WATCH, "wait")
        for i in range(n)
    ]
    return tuple(reversed(made))


def shown_times(log: EventLog) -> list[str]:
    """The Time cells of the rows in view, top to bottom."""
    first = int(log.scroll_y)
    return [str(log.get_row_at(i)[0]) for i in range(first, min(first + 3, log.row_count))]


async def test_the_cursor_on_the_newest_entry_stays_on_the_newest_as_entries_arrive() -> None:
    """With the cursor on the top row (where it starts), each entry that arrives takes the top row
    and the cursor and the view stay there (before, the cursor kept to the entry it was on, so
    every arrival walked it, and the view with it, down the log: after a busy spell a manager
    opening the events tab saw the transitions of an hour before, the newest scrolled out of view)."""
    app = Log()
    async with app.run_test(size=(100, 12)) as pilot:
        log = app.query_one(EventLog)
        for n in range(1, 41):
            log.entries = entries(n)
            await pilot.pause()
        assert log.cursor_row == 0
        assert log.scroll_y == 0
        assert shown_times(log)[0] == "08:39:00"


async def test_a_cursor_moved_down_the_log_stays_on_its_entry() -> None:
    """A cursor the manager moved onto an older entry stays on that entry as new ones arrive above."""
    app = Log()
    async with app.run_test(size=(100, 12)) as pilot:
        log = app.query_one(EventLog)
        log.entries = entries(10)
        await pilot.pause()
        log.move_cursor(row=3, animate=False)
        picked = log.current_key
        log.entries = entries(15)
        await pilot.pause()
        assert log.current_key == picked
        assert log.cursor_row == 8
