"""Pilot tests of the dashboard driven by the real Engine on the seeded simulator."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TypeVar

from textual.message import Message
from textual.widgets import Input, Static, TabbedContent
from textual.worker import Worker, WorkerState

from cxmon.engine import Engine
from cxmon.events import ContactEvent, EventKind
from cxmon.measures import combine, format_value
from cxmon.snapshot import Ack, State
from cxmon.tui.app import CxmonApp
from cxmon.tui.feed import Feed, MemoryFeed
from cxmon.tui.messages import (
    CustomerLeadersLoaded,
    CustomerPathLoaded,
    PotholeAcknowledged,
    SnapshotPublished,
    StepChosen,
)
from cxmon.tui.screens.acknowledge import AcknowledgeScreen
from cxmon.tui.screens.help import HelpScreen
from cxmon.tui.screens.wallboard import BigTile, WallboardScreen
from cxmon.tui.widgets.customer_paths import CustomerPaths
from cxmon.tui.widgets.detail_pane import DetailPane
from cxmon.tui.widgets.diff_table import DiffTable
from cxmon.tui.widgets.event_log import EventLog
from cxmon.tui.widgets.journey_map import JourneyMap, StepTile
from cxmon.tui.widgets.pothole_board import PotholeBoard
from cxmon.tui.widgets.stale_banner import StaleBanner
from cxmon.tui.widgets.status_bar import StatusBar
from cxmon.tui.widgets.step_matrix import STAFFING_COLUMN, StepMatrix
from cxmon.units import parse_duration
from tests.snapshot_app import MINUTES, sim_config
from tests.tui.conftest import SIZE, settle

M = TypeVar("M", bound=Message)


def posted(seen: list[Message], kind: type[M]) -> list[M]:
    """The distinct messages of ``kind`` (the hook sees a bubbling message at every pump it reaches)."""
    return list({id(m): m for m in seen if isinstance(m, kind)}.values())


async def test_journey_map_shows_steps_in_journey_order_with_state_words(engine: Engine) -> None:
    """Tiles follow the config's step order, and a pot hole is told by class and by word."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: len(app.query(StepTile)) == len(engine.config.steps))
        tiles = list(app.query(StepTile))
        assert [t.step for t in tiles] == [s.name for s in engine.config.steps]
        help_tile = app.query_one("#tile-get_help", StepTile)
        get_help = engine.latest.step("get_help")
        assert get_help is not None and get_help.state is State.POTHOLE
        assert help_tile.has_class("-pothole")
        assert "POTHOLE" in str(help_tile.render())


async def test_arrows_and_enter_drill_into_a_step(engine: Engine) -> None:
    """→ → Enter on the journey map opens the detail of the third step."""
    seen: list[Message] = []
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await settle(pilot, lambda: len(app.query(StepTile)) > 2)
        app.query_one(JourneyMap).focus()
        await pilot.press("right", "right", "enter")
        await pilot.pause()
        third = engine.config.steps[2].name
        assert [m.step for m in posted(seen, StepChosen)] == [third]
        assert app.query_one("#tabs", TabbedContent).active == "detail"
        assert app.query_one(DetailPane).step == third


async def test_matrix_enter_drills_into_the_row_series(engine: Engine) -> None:
    """Enter on a matrix row shows that step and one of its series in the detail pane."""
    seen: list[Message] = []
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        matrix = app.query_one(StepMatrix)
        await settle(pilot, lambda: matrix.row_count > 3)
        matrix.focus()
        await pilot.press("down", "down", "enter")
        await pilot.pause()
        row_key = matrix.row_keys_in_order[2]
        step, channel, _ = row_key.split("\t")
        chosen = posted(seen, StepChosen)
        assert chosen and chosen[-1].step == step
        assert chosen[-1].series is not None and chosen[-1].series[:2] == (step, channel)
        assert app.selected_series == chosen[-1].series
        assert app.query_one("#tabs", TabbedContent).active == "detail"


async def test_space_expands_a_steps_queues(engine: Engine) -> None:
    """Space on a channel row lists each queue of the step under it."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        matrix = app.query_one(StepMatrix)
        await settle(pilot, lambda: matrix.row_count > 3)
        matrix.focus()
        target = matrix.row_keys_in_order.index("get_help\tvoice\t")
        matrix.move_cursor(row=target)
        await pilot.press("space")
        await pilot.pause()
        keys = matrix.row_keys_in_order
        assert "get_help\tvoice\tbilling" in keys and "get_help\tvoice\ttech" in keys
        assert keys.index("get_help\tvoice\tbilling") > keys.index("get_help\tvoice\t")


async def test_staffing_column_says_how_many_agents_a_channel_is_short(engine: Engine) -> None:
    """The matrix's last column gives, per channel row, the agents its queues are short of the
    forecast's need ("N short of 80/20", marked as a breach) and, per queue row, that queue's own."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        matrix = app.query_one(StepMatrix)
        await settle(pilot, lambda: matrix.row_count > 3)
        assert str(matrix.ordered_columns[-1].label) == STAFFING_COLUMN
        voice = [s for s in engine.latest.series if s.step == "get_help" and s.channel == "voice"]
        short = {}
        for s in voice:
            f = s.forecast
            assert f is not None and f.agents is not None and f.agents_needed is not None
            short[s.queue] = max(0, f.agents_needed - f.agents)
        assert short["billing"] > 0  # half its agents are away (the scripted incident)
        row = matrix.get_row("get_help\tvoice\t")
        assert str(row[-1]) == f"{sum(short.values())} short of 80/20"
        assert row[-1].style == matrix.cell_styles()["breach"]
        matrix.expanded = frozenset({"get_help"})
        await pilot.pause()
        assert str(matrix.get_row("get_help\tvoice\tbilling")[-1]) == f"{short['billing']} short of 80/20"


async def test_filter_keeps_only_matching_channels_and_queues(engine: Engine) -> None:
    """/ billing Enter leaves only rows with a billing series; Esc in the box brings every row back."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        matrix = app.query_one(StepMatrix)
        await settle(pilot, lambda: matrix.row_count > 3)
        everything = matrix.row_count
        await pilot.press("slash", *"billing", "enter")
        await pilot.pause()
        expected = {
            f"{s.step}\t{s.channel}\t" for s in engine.latest.series if "billing" in (s.channel + s.queue)
        }
        assert app.filter_text == "billing"
        assert set(matrix.row_keys_in_order) == expected
        assert "billing" in str(app.query_one(StatusBar).render())
        box = app.query_one("#filter", Input)
        box.focus()
        await pilot.press("escape")
        await pilot.pause()
        assert app.filter_text == ""
        assert matrix.row_count == everything


async def test_w_cycles_the_window_shown_in_the_matrix(engine: Engine) -> None:
    """w moves the matrix from 5m to 15m figures, and three presses come back to 5m."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        matrix = app.query_one(StepMatrix)
        await settle(pilot, lambda: matrix.row_count > 3)
        await pilot.press("w")
        await pilot.pause()
        assert app.window == parse_duration("15m") == matrix.window
        # get_help's voice queues during the incident: their 5m and 15m service levels differ.
        billing = next(s for s in engine.latest.series if s.key == ("get_help", "voice", "billing"))
        assert billing.value("service_level", 900.0) != billing.value("service_level", 300.0)
        column = next(
            i for i, col in enumerate(matrix.ordered_columns) if str(col.label).startswith("service level")
        )
        shown = str(matrix.get_row("get_help\tvoice\t")[column])
        # a channel row combines its queues as every consumer does: their contacts' service level
        voice = [s for s in engine.latest.series if s.step == "get_help" and s.channel == "voice"]
        formula = engine.latest.service_level_formula
        combined = combine("service_level", [s.windows[900.0] for s in voice], formula)
        assert shown == format_value("service_level", combined)
        await pilot.press("w", "w")
        await pilot.pause()
        assert app.window == 300.0


async def test_acknowledge_stores_the_ack_through_the_engine(engine: Engine) -> None:
    """a on the pot-hole board, a note, Enter: the ack is in the engine's store and on the board."""
    seen: list[Message] = []
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        board = app.query_one(PotholeBoard)
        await pilot.press("2")
        await settle(pilot, lambda: board.row_count > 0)
        board.focus()
        row = board.current_row
        assert row is not None
        step = row.step
        await pilot.press("a")
        await settle(pilot, lambda: isinstance(app.screen, AcknowledgeScreen))
        await pilot.press(*"callback team on it", "enter")
        await settle(pilot, lambda: any(isinstance(m, PotholeAcknowledged) for m in seen))
        assert engine.store is not None
        stored = await engine.store.acks()
        assert [(a.step, a.note) for a in stored] == [(step, "callback team on it")]
        entries = app.query_one(EventLog).entries
        assert entries[0].step == step and entries[0].reason == "callback team on it"


async def test_customer_paths_load_from_the_store(engine: Engine) -> None:
    """The customers tab lists strike leaders; Enter shows that customer's events, oldest first."""
    seen: list[Message] = []
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await pilot.press("4")
        await settle(pilot, lambda: any(isinstance(m, CustomerLeadersLoaded) for m in seen))
        paths = app.query_one(CustomerPaths)
        leaders = paths.query_one("#leaders", DiffTable)
        await settle(pilot, lambda: leaders.row_count > 0)
        leaders.focus()
        await pilot.press("enter")
        await settle(pilot, lambda: any(isinstance(m, CustomerPathLoaded) for m in seen))
        loaded = posted(seen, CustomerPathLoaded)[0]
        assert loaded.customer_id == paths.leaders[0][0]
        assert loaded.events and [e.ts for e in loaded.events] == sorted(e.ts for e in loaded.events)
        assert {e.customer_id for e in loaded.events} == {loaded.customer_id}
        await settle(pilot, lambda: paths.query_one("#path", DiffTable).row_count == len(loaded.events))


async def test_wallboard_shows_one_big_tile_per_step(engine: Engine) -> None:
    """--wallboard opens on big tiles, one per step; v goes back to the dashboard."""
    app = CxmonApp(engine, refresh_interval=0, wallboard=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: len(app.screen.query(BigTile)) == len(engine.config.steps))
        assert isinstance(app.screen, WallboardScreen)
        await pilot.press("v")
        await pilot.pause()
        assert not isinstance(app.screen, WallboardScreen)


async def test_help_opens_and_q_quits_with_code_0(engine: Engine) -> None:
    """? shows the help, Esc closes it, q ends the app with exit code 0."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await settle(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, HelpScreen))
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


# ---------------------------------------------------------------------- live (paced) runs


async def test_pause_holds_the_screen_until_resumed(live_engine: Engine) -> None:
    """p freezes the snapshot on screen and shows PAUSED; p again jumps to the newest."""
    app = CxmonApp(live_engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.snapshot.version > 0)
        await pilot.press("p")
        await pilot.pause()
        held = app.snapshot.version
        assert "PAUSED" in str(app.query_one(StatusBar).render())
        await settle(pilot, lambda: live_engine.latest.version > held + 2)
        assert app.snapshot.version == held
        await pilot.press("p")
        await settle(pilot, lambda: app.snapshot.version > held)
        assert "PAUSED" not in str(app.query_one(StatusBar).render())


async def test_event_log_collects_transitions_newest_first(tmp_path: Path) -> None:
    """As the incident opens a pot hole, its transitions show in the log, newest first.

    The simulator runs at "max" beside the app (time follows its events, not the wall), so a busy
    machine cannot make the source look stale and hide the pot hole.
    """
    seen: list[Message] = []
    async with Engine(sim_config(), db_path=str(tmp_path / "log.db")) as eng:
        app = CxmonApp(eng, refresh_interval=0)
        async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
            runner = asyncio.create_task(eng.run(duration=MINUTES * 60.0))
            await settle(pilot, lambda: runner.done(), tries=3000)
            await settle(pilot, lambda: any(e.state is State.POTHOLE for e in app.log_entries))
            times = [e.ts for e in app.log_entries]
            assert times == sorted(times, reverse=True)
            assert any(isinstance(m, SnapshotPublished) for m in seen)


async def test_stale_banner_shows_when_the_source_goes_quiet(tmp_path: Path) -> None:
    """When the simulator has sent nothing for longer than stale_after (60 s), a STALE banner appears."""
    config = sim_config(simulator='duration = "10m"')  # then the simulator has nothing more to say
    start = 1767600000.0  # the simulator's start (tests.snapshot_app.START)
    now = [start]
    async with Engine(config, db_path=str(tmp_path / "stale.db"), clock=lambda: now[0]) as eng:
        runner = asyncio.create_task(eng.run())
        app = CxmonApp(eng, refresh_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            banner = app.query_one(StaleBanner)
            await settle(pilot, lambda: eng.health["sim"].finished, tries=1000)
            last = eng.health["sim"].last_event_ts
            assert last is not None  # the source has finished, after events
            now[0] = last
            await settle(pilot, lambda: app.snapshot.ts == now[0], tries=1000)
            assert not banner.display
            now[0] += 3600.0
            await settle(pilot, lambda: app.snapshot.stale, tries=1000)
            await settle(pilot, lambda: banner.display)
            assert "STALE" in str(banner.render())
            assert all(t.has_class("-stale") for t in app.query(StepTile))
        eng.stop()
        await runner


# ---------------------------------------------------------------------- errors


class FailingFeed(MemoryFeed):
    """A feed whose store is gone: reading customers or acknowledging fails."""

    async def customer_leaders(self, limit: int = 20) -> list[tuple[str, int]]:
        raise OSError("database is locked")

    async def acknowledge(self, step: str, who: str, note: str, until: float | None = None) -> Ack:
        raise OSError("database is locked")


async def test_a_failing_worker_is_reported_and_the_app_carries_on(engine: Engine) -> None:
    """A worker error becomes a notification (WorkerState.ERROR); the dashboard keeps running."""
    seen: list[Message] = []
    feed: Feed = FailingFeed(engine.config, engine.latest)
    app = CxmonApp(feed, refresh_interval=0)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await pilot.press("4")
        await settle(
            pilot,
            lambda: any(isinstance(m, Worker.StateChanged) and m.state is WorkerState.ERROR for m in seen),
        )
        assert any("database is locked" in n.message for n in app._notifications)
        assert app.is_running


async def test_resizing_from_80x24_to_200x60_keeps_every_step_and_the_status_bar(engine: Engine) -> None:
    """At 80×24 and after growing to 200×60, every step tile and the status bar are on screen."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: len(app.query(StepTile)) == len(engine.config.steps))
        for size in ((80, 24), (200, 60)):
            await pilot.resize_terminal(*size)
            await pilot.pause(0.05)
            width, height = size
            for tile in app.query(StepTile):
                region = tile.region
                assert region.width > 0 and region.height > 0, (size, tile.step)
                assert region.right <= width and region.bottom <= height, (size, tile.step)
            bar = app.query_one(StatusBar).region
            assert bar.height > 0 and bar.bottom <= height, size


async def test_light_and_dark_themes_both_render(engine: Engine) -> None:
    """Switching between Textual's light and dark themes keeps the state classes and the tiles."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: len(app.query(StepTile)) == len(engine.config.steps))
        for theme in ("textual-light", "textual-dark"):
            app.theme = theme
            await pilot.pause(0.05)
            assert app.current_theme.dark is (theme == "textual-dark")
            assert app.query_one("#tile-get_help", StepTile).has_class("-pothole")


async def _path_shown(engine: Engine, path: list[ContactEvent]) -> tuple[str, list[list[str]]]:
    """Open customer C1's path on the Customers tab; return its title and its rows' cells."""
    feed = MemoryFeed(engine.config, engine.latest, leaders=[("C1", 1)], paths={"C1": path})
    app = CxmonApp(feed, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        paths = app.query_one(CustomerPaths)
        leaders = paths.query_one("#leaders", DiffTable)
        await settle(pilot, lambda: leaders.row_count > 0)
        leaders.focus()
        await pilot.press("enter")
        title = paths.query_one("#path-title", Static)
        await settle(pilot, lambda: "Customer C1" in str(title.render()))
        table = paths.query_one("#path", DiffTable)
        await settle(pilot, lambda: table.row_count == len(path))
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        return str(title.render()), rows


async def test_a_customer_path_shows_a_surveys_score_and_the_customers_words(engine: Engine) -> None:
    """A survey sent reads "survey sent"; its answer reads "feedback 4" with the customer's comment
    verbatim in the Comment column."""
    path = [
        ContactEvent(100.0, EventKind.FEEDBACK, "k1", "survey", "billing", "sim", customer_id="C1"),
        ContactEvent(
            160.0,
            EventKind.FEEDBACK,
            "k1",
            "survey",
            "billing",
            "sim",
            "C1",
            score=4.0,
            reason="Quick thanks",
        ),
    ]
    _, rows = await _path_shown(engine, path)
    assert [r[4] for r in rows] == ["survey sent", "feedback 4"]
    assert rows[1][-1] == "Quick thanks"


async def test_a_low_feedback_score_is_a_bump_in_the_customer_path(engine: Engine) -> None:
    """A score at or below monitor.low_score is a strike, so the path marks it as a bump and counts
    it in its title; a score above it is not."""
    path = [
        ContactEvent(100.0, EventKind.FEEDBACK, "k1", "survey", "billing", "sim", "C1", score=2.0),
        ContactEvent(160.0, EventKind.FEEDBACK, "k2", "survey", "billing", "sim", "C1", score=5.0),
    ]
    title, rows = await _path_shown(engine, path)
    assert title == "Customer C1: 2 events, 1 bump (oldest first)"
    assert [r[6] for r in rows] == ["☹ low score", ""]


async def test_a_customer_path_title_counts_one_bump_in_the_singular(engine: Engine) -> None:
    """A path of two events with one abandon is titled "2 events, 1 bump", not "1 bumps"."""
    path = [
        ContactEvent(ts, kind, "k1", "voice", "billing", "sim", customer_id="C1")
        for ts, kind in ((100.0, EventKind.ARRIVED), (160.0, EventKind.ABANDONED))
    ]
    title, _ = await _path_shown(engine, path)
    assert title == "Customer C1: 2 events, 1 bump (oldest first)"
