"""Times on the dashboard are in the configured (or the machine's) time zone, and the zone is named."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.app import App, ComposeResult

from cxmon.engine import Engine
from cxmon.localtime import zone, zone_label
from cxmon.snapshot import EMPTY_SNAPSHOT, State
from cxmon.tui.app import CxmonApp
from cxmon.tui.feed import MemoryFeed
from cxmon.tui.widgets.customer_paths import CustomerPaths
from cxmon.tui.widgets.diff_table import DiffTable
from cxmon.tui.widgets.event_log import EventLog, LogEntry
from cxmon.tui.widgets.pothole_board import PotholeBoard
from tests.helpers import REPO
from tests.tui.conftest import SIZE, settle

# The fixture's engine stops 12 minutes after 2026-01-05 08:00 UTC.
END_UTC = "08:12:00"


def in_zone(engine: Engine, zone: str | None) -> MemoryFeed:
    """The engine's final picture under a config whose ``[display] timezone`` is ``zone``."""
    config = dataclasses.replace(engine.config, display_timezone=zone)
    return MemoryFeed(config, engine.latest)


@pytest.fixture
def new_york() -> Iterator[None]:
    """The machine's own zone is New York for the test (TZ), restored afterwards."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    mp.undo()
    time.tzset()


async def test_the_configured_zone_is_used_and_named(engine: Engine) -> None:
    """With ``timezone = "Asia/Jerusalem"`` the 08:12 UTC tick reads 10:12:00 IST (UTC+2 in winter)."""
    app = CxmonApp(in_zone(engine, "Asia/Jerusalem"), refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.snapshot.version > 0)
        await pilot.pause()
        assert app.sub_title.startswith("10:12:00 IST · window 5m"), app.sub_title
        board = app.query_one(PotholeBoard)
        assert [str(c.label) for c in board.ordered_columns][3] == "Since (IST)"


async def test_without_a_configured_zone_the_machines_zone_is_used_and_named(
    engine: Engine, new_york: None
) -> None:
    """With no ``[display]`` table, times follow the machine's zone (TZ): 08:12 UTC is 03:12:00 EST."""
    app = CxmonApp(in_zone(engine, None), refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.snapshot.version > 0)
        await pilot.pause()
        assert app.sub_title.startswith("03:12:00 EST"), app.sub_title


async def test_utc_is_named_utc(engine: Engine) -> None:
    """``timezone = "UTC"`` shows the engine's clock as it is, called UTC."""
    app = CxmonApp(in_zone(engine, "UTC"), refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.snapshot.version > 0)
        await pilot.pause()
        assert app.sub_title.startswith(f"{END_UTC} UTC"), app.sub_title


JANUARY = 1767600000.0
"""2026-01-05 08:00 UTC: winter in Jerusalem (IST)."""
AUGUST = 1786003200.0
"""2026-08-06 08:00 UTC: summer in Jerusalem (IDT)."""


class Tables(App[None]):
    """The pot hole board and the event log, in Jerusalem time."""

    def compose(self) -> ComposeResult:
        yield PotholeBoard(tz=zone("Asia/Jerusalem"))
        yield EventLog(tz=zone("Asia/Jerusalem"))


def titles(table: DiffTable) -> list[str]:
    return [str(c.label) for c in table.ordered_columns]


async def test_a_time_column_names_the_zone_as_it_is_called_at_the_times_it_shows() -> None:
    """Times of the other half of the year (a replay of August in December, or a monitor left running
    across the change of the clocks) are labelled with that season's name of the zone, not today's;
    the label follows the times shown as they move on."""
    tz = zone("Asia/Jerusalem")
    today = zone_label(tz)
    # The season whose name today's is not, so that a label taken from the wall clock is wrong.
    other, same = (AUGUST, JANUARY) if today == "IST" else (JANUARY, AUGUST)
    assert zone_label(tz, other) != today and {zone_label(tz, other), zone_label(tz, same)} == {"IST", "IDT"}
    app = Tables()
    async with app.run_test(size=SIZE) as pilot:
        board, log = app.query_one(PotholeBoard), app.query_one(EventLog)
        for ts in (other, same, other):
            board.snapshot = dataclasses.replace(EMPTY_SNAPSHOT, ts=ts)
            log.entries = (LogEntry(ts, "order", "voice/sales", "OK → WATCH", State.WATCH, "wait"),)
            await pilot.pause()
            name = zone_label(tz, ts)
            assert titles(board)[3] == f"Since ({name})"
            assert titles(log)[0] == f"Time ({name})"
            assert str(log.get_row_at(0)[0]) == ("11:00:00" if name == "IDT" else "10:00:00")


class EmptyTables(App[None]):
    """The event log and the customer path before they show any time, in Jerusalem time."""

    def compose(self) -> ComposeResult:
        from cxmon.config import default_config_path, load

        yield EventLog(tz=zone("Asia/Jerusalem"))
        yield CustomerPaths(load(default_config_path()), tz=zone("Asia/Jerusalem"))


async def test_an_empty_time_column_names_the_zone_as_it_is_called_at_the_engines_time() -> None:
    """Before the event log has an entry, and before a customer's path is shown, their time column
    names the zone as it is at the engine's time (a replay of August opened in December says IDT,
    as the header does), not at the wall clock's."""
    tz = zone("Asia/Jerusalem")
    today = zone_label(tz)
    other, same = (AUGUST, JANUARY) if today == "IST" else (JANUARY, AUGUST)
    app = EmptyTables()
    async with app.run_test(size=SIZE) as pilot:
        log, paths = app.query_one(EventLog), app.query_one(CustomerPaths)
        path = paths.query_one("#path", DiffTable)
        for ts in (other, same, other):
            log.snapshot = paths.snapshot = dataclasses.replace(EMPTY_SNAPSHOT, ts=ts)
            await pilot.pause()
            name = zone_label(tz, ts)
            assert titles(log)[0] == f"Time ({name})"
            assert titles(path)[0] == f"Time ({name})"


def test_cxmon_check_rejects_an_unknown_zone(tmp_path: Path) -> None:
    """`cxmon check` names the key and exits 2 for a zone that does not exist."""
    text = (REPO / "config" / "default.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text('[display]\ntimezone = "Mars/Olympus"\n\n' + text)
    res = subprocess.run(
        [sys.executable, "-m", "cxmon", "check", str(bad)], capture_output=True, text=True, cwd=REPO
    )
    assert res.returncode == 2
    assert "display.timezone: expected a time zone" in res.stderr and "Mars/Olympus" in res.stderr


def test_the_bank_replay_is_shown_in_the_banks_zone() -> None:
    """The Anonymous Bank config shows Israel time: its replay starts at 07:00 on screen, as documented."""
    from cxmon.config import load

    assert load(REPO / "config" / "anonymous-bank.toml").display_timezone == "Asia/Jerusalem"


class PathOnly(App[None]):
    """A customer's path, in Jerusalem time."""

    def compose(self) -> ComposeResult:
        from cxmon.config import default_config_path, load

        yield CustomerPaths(load(default_config_path()), tz=zone("Asia/Jerusalem"))


async def test_a_path_event_of_the_day_before_shows_its_date() -> None:
    """The path covers 24 h: at 10:06 (Jerusalem) an abandon of 14:47 the day before reads
    "05 Aug 14:47:36", not "14:47:36" (a time still to come that day), while one of 09:00 that day
    reads "09:00:00"; and when the engine's clock passes midnight under the path shown, that
    morning's events take their date too."""
    from cxmon.events import ContactEvent, EventKind

    def ev(ts: float, kind: EventKind) -> ContactEvent:
        return ContactEvent(ts, kind, "c1", "voice", "sales", "sim", "cust", wait=9.0)

    # 2026-08-06 07:06 UTC is 10:06 IDT; the day before at 14:47:36 IDT is 11:47:36 UTC.
    now = AUGUST - 54 * 60
    yesterday, this_morning = AUGUST - 86400 + 3 * 3600 + 47 * 60 + 36, AUGUST - 2 * 3600
    app = PathOnly()
    async with app.run_test(size=SIZE) as pilot:
        paths = app.query_one(CustomerPaths)
        table = paths.query_one("#path", DiffTable)
        paths.snapshot = dataclasses.replace(EMPTY_SNAPSHOT, ts=now)
        paths.path = ("cust", (ev(yesterday, EventKind.ABANDONED), ev(this_morning, EventKind.ANSWERED)))
        await pilot.pause()
        assert [str(table.get_row_at(i)[0]) for i in range(2)] == ["05 Aug 14:47:36", "09:00:00"]
        paths.snapshot = dataclasses.replace(EMPTY_SNAPSHOT, ts=now + 86400)
        await pilot.pause()
        assert [str(table.get_row_at(i)[0]) for i in range(2)] == ["05 Aug 14:47:36", "06 Aug 09:00:00"]
