"""``cxmon replay``: a recorded run through the engine again, transition for transition; speed, seek, keys."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Markdown

from collectors.base import Offset
from cxmon.config import Config
from cxmon.engine import Engine
from cxmon.engine.warm import warm_span
from cxmon.errors import ConfigError
from cxmon.events import ContactEvent, EventKind
from cxmon.forecast.baseline import WEEK
from cxmon.replay.command import journey, parse_speed
from cxmon.replay.session import ReplaySession, replayed_transitions
from cxmon.replay.source import ReplaySource, stored_range
from cxmon.rows import Row, decode_rows
from cxmon.snapshot import Snapshot, State, Transition
from cxmon.store import Store
from cxmon.tui.replay import ReplayApp, ReplayBar
from cxmon.tui.screens.help import HelpScreen
from tests.helpers import REPO, one_step_config
from tests.hub.helpers import until
from tests.snapshot_app import sim_config

MINUTES = 60.0


@dataclass
class Recording:
    """A simulator run recorded live into a database, with what the live engine published."""

    db: Path
    config: Config
    transitions: list[Transition] = field(default_factory=list)
    states: dict[float, tuple[tuple[str, State], ...]] = field(default_factory=dict)
    """Tick time → each step's state, as the live engine published it."""


@contextlib.asynccontextmanager
async def running(session: ReplaySession) -> AsyncIterator[ReplaySession]:
    """Run ``session`` in a task for the block; close it and wait for the task after."""
    runner = asyncio.create_task(session.run())
    try:
        yield session
    finally:
        session.close()
        await runner


async def whole_replay_on_screen(recording: Recording) -> tuple[ReplaySession, ReplayApp]:
    """A 1× replay of the whole recording and the dashboard over it (in UTC), neither started."""
    span = await stored_range(recording.db)
    assert span is not None
    session = ReplaySession(recording.config, recording.db, span[0], span[1] + 1.0, speed=1.0)
    return session, ReplayApp(session, refresh_interval=0, utc=True)


async def replay_to_the_end(session: ReplaySession) -> None:
    """Run ``session`` until it has replayed its whole range (flat out or paced), then close it."""
    async with running(session):
        await until(lambda: session.finished, tries=1200)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    """An hour of the seeded simulator (its billing incident opens a pot hole and it heals), recorded."""
    rec = Recording(tmp_path_factory.mktemp("replay") / "live.db", sim_config())

    async def record() -> None:
        async with Engine(rec.config, db_path=str(rec.db)) as engine:

            def seen(snap: Snapshot) -> None:
                rec.transitions.extend(snap.transitions)
                rec.states[snap.ts] = tuple((s.name, s.state) for s in snap.steps)

            engine.add_listener(seen)
            await engine.run(duration=MINUTES * 60.0)

    asyncio.run(record())
    return rec


async def test_replay_reproduces_the_live_transitions_one_by_one(recording: Recording) -> None:
    """Replaying the recorded run with the journey stored in it gives the live transitions, each equal."""
    config = journey(str(recording.db), None)
    span = await stored_range(recording.db)
    assert span is not None
    replayed = await replayed_transitions(config, recording.db, span[0], span[1] + 1.0)
    holes = [t for t in recording.transitions if t.to_state is State.POTHOLE]
    healed = [t for t in recording.transitions if t.from_state is State.POTHOLE]
    assert holes and healed, "the recorded hour has a pot hole that forms and heals"
    assert len(replayed) == len(recording.transitions)
    for live, again in zip(recording.transitions, replayed, strict=True):
        assert again == live


async def test_a_paced_replay_judges_exactly_as_a_flat_out_one(recording: Recording) -> None:
    """Speed sets only how fast data time is walked: 1200× gives the same transitions as max."""
    span = await stored_range(recording.db)
    assert span is not None
    start, end = span[0], span[0] + 20 * 60.0
    flat = await replayed_transitions(recording.config, recording.db, start, end)
    session = ReplaySession(recording.config, recording.db, start, end, speed=1200.0)
    paced: list[Transition] = []
    session.listeners.append(lambda snap: paced.extend(snap.transitions))
    await replay_to_the_end(session)
    assert flat and paced == flat


async def test_a_replay_from_inside_a_pot_hole_opens_on_it(recording: Recording) -> None:
    """--from in the middle of the recorded pot hole: the replay opens on the live picture of that
    moment, the step in POTHOLE and the transition into it in the event log, and goes on with the
    live transitions one by one (before, it opened on empty windows with every step OK)."""
    span = await stored_range(recording.db)
    assert span is not None
    hole = next(t for t in recording.transitions if t.to_state is State.POTHOLE)
    healed = next(t for t in recording.transitions if t.step == hole.step and t.ts > hole.ts)
    start = (hole.ts + healed.ts) / 2.0
    assert start - span[0] < warm_span(recording.config)  # the lead-in reaches the first event
    session = ReplaySession(recording.config, recording.db, start, span[1] + 1.0, speed=None)
    shown: list[Snapshot] = []
    session.listeners.append(shown.append)
    await replay_to_the_end(session)
    first = shown[0]
    assert first.ts >= start and all(snap.ts >= start for snap in shown)
    assert dict(recording.states.get(first.ts, ()))[hole.step] is State.POTHOLE
    assert tuple((s.name, s.state) for s in first.steps) == recording.states[first.ts]
    assert hole in first.recent_transitions
    replayed = [t for snap in shown for t in snap.transitions]
    assert replayed == [t for t in recording.transitions if t.ts >= start]
    assert healed in replayed


async def _strikes_at_the_end(recording: Recording, start: float, lead: float) -> dict[str, int]:
    """Replay from ``start`` (with ``lead`` seconds of lead-in) to the end, flat out; return the
    replaying engine's strikes per customer when it is done."""
    span = await stored_range(recording.db)
    assert span is not None
    session = ReplaySession(recording.config, recording.db, start, span[1] + 1.0, speed=None, lead=lead)
    async with running(session):
        await until(lambda: session.finished, tries=1200)
        assert session.engine is not None
        return dict(session.engine.aggregator.strikes)


async def test_a_replay_from_late_in_the_day_knows_the_strikes_of_the_day_before_it(
    recording: Recording,
) -> None:
    """A replay from 40 minutes in, with a 10-minute lead-in, counts each customer's strikes of the
    half hour before its lead-in too: at the end, the same strikes as a replay of the whole hour
    (before, the customers tab knew only what came after the lead-in began)."""
    span = await stored_range(recording.db)
    assert span is not None
    whole = await _strikes_at_the_end(recording, span[0], 0.0)
    late = await _strikes_at_the_end(recording, span[0] + 2400.0, 600.0)
    with sqlite3.connect(recording.db) as db:
        early = {
            r[0]
            for r in db.execute(
                "SELECT DISTINCT customer_id FROM events"
                " WHERE customer_id IS NOT NULL AND ts < ? AND kind = ?",
                (span[0] + 1800.0, EventKind.ABANDONED.value),
            )
        }
    assert early & set(whole), "some customer's strike (an abandon) came before the lead-in"
    assert late == whole


async def test_seeking_shows_the_picture_the_live_engine_had_then(recording: Recording) -> None:
    """Seek forward 30 minutes, then back 10: each time the steps' states are the live ones at that tick."""
    span = await stored_range(recording.db)
    assert span is not None
    session = ReplaySession(recording.config, recording.db, span[0], span[1] + 1.0, speed=1.0)
    async with running(session):
        await until(lambda: session.latest.version > 0, tries=600)
        for delta, restarts in ((1800.0, 0), (-600.0, 1)):
            target = session.seek(delta)
            # After a seek back, the engine that went is still the latest until the new one
            # publishes: wait for a snapshot near the target, not just any after it.
            await until(
                lambda t=target, r=restarts: (
                    session.restarts == r and t - 5.0 <= session.latest.ts <= t + 10.0
                ),
                tries=1200,
            )
            snap = session.latest
            assert abs(snap.ts - target) <= 10.0
            assert tuple((s.name, s.state) for s in snap.steps) == recording.states[snap.ts]


async def test_replay_keys_move_the_cursor_change_speed_and_pause(recording: Recording) -> None:
    """On screen: ] moves the cursor a minute on, > goes from 1× to 10×, p pauses; the bar says so."""
    session, app = await whole_replay_on_screen(recording)
    async with running(session), app.run_test(size=(140, 40)) as pilot:
        await until(lambda: session.latest.version > 0, tries=600)
        before = session.position
        await pilot.press("right_square_bracket")
        await until(lambda: session.position >= before + 60.0, tries=600)
        await pilot.press("greater_than_sign")
        assert session.speed == 10.0
        await pilot.press("p")
        assert session.paused and app.paused
        bar = str(app.query_one(ReplayBar).render())
        assert "PAUSED" in bar and "10×" in bar and "2026-01-05" in bar
        await pilot.press("p")
        assert not session.paused


async def test_a_replay_started_on_the_wallboard_opens_it_and_its_dashboard_has_the_bar(
    recording: Recording,
) -> None:
    """`cxmon replay DB --wallboard` opens on the wallboard (before, it stopped at once with a
    traceback: the replay bar was mounted on the wallboard, which has no place for it), and v
    shows the dashboard with its replay bar."""
    from cxmon.tui.screens.wallboard import WallboardScreen

    span = await stored_range(recording.db)
    assert span is not None
    session = ReplaySession(recording.config, recording.db, span[0], span[1] + 1.0, speed=1.0)
    app = ReplayApp(session, refresh_interval=0, utc=True, wallboard=True)
    async with running(session), app.run_test(size=(120, 40)) as pilot:
        await until(lambda: session.latest.version > 0, tries=600)
        await pilot.pause()
        assert isinstance(app.screen, WallboardScreen)
        await pilot.press("v")
        await pilot.pause()
        assert not isinstance(app.screen, WallboardScreen)
        assert "REPLAY" in str(app.screen.query_one(ReplayBar).render())
    assert app.return_code in (None, 0)


async def test_a_replays_wallboard_shows_the_replay_bar(recording: Recording) -> None:
    """The wallboard of a replay has the replay bar under its title, which says PAUSED after p and
    takes the seek keys (before, it showed the replayed time of day alone, as if live: no date,
    no PAUSED, no END)."""
    from cxmon.tui.screens.wallboard import WallboardScreen

    session, app = await whole_replay_on_screen(recording)
    async with running(session), app.run_test(size=(80, 24)) as pilot:
        await until(lambda: session.latest.version > 0, tries=600)
        await pilot.press("v")
        await pilot.pause()
        wall = app.screen
        assert isinstance(wall, WallboardScreen)
        assert "REPLAY" in str(wall.query_one(ReplayBar).render())
        await pilot.press("p")
        await pilot.press("right_square_bracket")
        await pilot.pause()
        line = str(wall.query_one(ReplayBar).render())
        assert "PAUSED" in line and "2026-01-05" in line, line
        assert app.screen is wall


async def test_at_80_columns_the_replay_bar_keeps_its_keys_and_the_help_lists_them(
    recording: Recording,
) -> None:
    """At 80 × 24 (a terminal over SSH) the replay bar fits its line with the seek and speed keys
    on it (before, they were past the 80th column), and ? lists every replay key."""
    session, app = await whole_replay_on_screen(recording)
    async with running(session), app.run_test(size=(80, 24)) as pilot:
        await until(lambda: session.latest.version > 0, tries=600)
        bar = app.query_one(ReplayBar)
        await pilot.pause()
        width, line = bar.size.width, str(bar.render())
        await pilot.press("question_mark")
        await until(lambda: isinstance(app.screen, HelpScreen), tries=600)
        source = app.screen.query_one(Markdown).source
    assert width == 80
    assert len(line) <= 80, line
    assert "[ ] { } seek  < > speed" in line and "2026-01-05" in line and ("█" in line or "░" in line), line
    for key, does in (("[ ]", "a minute back / on"), ("{ }", "ten minutes"), ("< >", "slower / faster")):
        assert re.search(rf"^\| {re.escape(key)} \| [^|]*{does}", source, re.MULTILINE), source


async def test_a_replay_at_its_end_says_its_source_ended_not_that_it_is_down(recording: Recording) -> None:
    """A replay that has come to the end of its range says so of its source in the status bar,
    at any width ("replay ■ end"; "sources 0/1 up, 1 ended" where only the summary fits); before,
    the bar said "replay ✖ down 0 ev/s" under "■ END", as if the history had failed."""
    from cxmon.tui.widgets.status_bar import NO_RATES, SUMMARY, StatusBar

    span = await stored_range(recording.db)
    assert span is not None
    session = ReplaySession(recording.config, recording.db, span[1] - 600.0, span[1] + 1.0, speed=None)
    app = ReplayApp(session, refresh_interval=0, utc=True)
    async with running(session), app.run_test(size=(80, 24)) as pilot:
        await until(lambda: session.finished, tries=1200)
        bar = app.query_one(StatusBar)
        await until(lambda: "■ end" in str(bar.render()), tries=200)
        await pilot.pause()
        line = str(bar.render())
        narrower = str(bar._content(NO_RATES)), str(bar._content(SUMMARY))
        app.query_one(ReplayBar).paint()
        state = str(app.query_one(ReplayBar).render())
    assert "END" in state, state
    assert "replay ■ end" in line and "down" not in line, line
    assert "replay ■ end" in narrower[0] and "down" not in narrower[0], narrower
    assert "sources 0/1 up, 1 ended" in narrower[1], narrower


async def test_at_80_columns_the_replays_wallboard_footer_shows_every_key(recording: Recording) -> None:
    """At 80 × 24 the footer of a replay's wallboard shows every key it names, the replay's seek
    and speed keys as one entry ("[]{}<> replay"); before, it was not made compact and the replay's
    six entries ran under the palette's ^p and past the 80th column ("… p Pause [ ▏^p palette")."""
    from textual.widgets._footer import FooterKey, FooterLabel

    from cxmon.tui.screens.wallboard import WallboardScreen

    session, app = await whole_replay_on_screen(recording)
    async with running(session), app.run_test(size=(80, 24)) as pilot:
        await until(lambda: session.latest.version > 0, tries=600)
        await pilot.press("v")
        await until(lambda: isinstance(app.screen, WallboardScreen), tries=600)
        await pilot.pause()
        keys = list(app.screen.query(FooterKey))
        labels = list(app.screen.query(FooterLabel))
        shown = {k.key for k in keys}
        # The palette's key is docked on the right, over whatever runs under it.
        edge = min([k.region.x for k in keys if k.has_class("-command-palette") and k.display] or [80])
        entries = [k for k in [*keys, *labels] if not k.has_class("-command-palette")]
        cut = [str(k.render()) for k in entries if k.region.right > edge or not k.region.width]
    assert {"v", "q", "p", "left_square_bracket", "right_curly_bracket", "greater_than_sign"} <= shown, shown
    assert not cut, cut


def footer_cut(screen: Any) -> tuple[set[str], list[str]]:
    """The keys the footer of ``screen`` shows, and the entries of it cut off: running past the
    80th column or under the palette's ^p (docked on the right, over whatever runs under it)."""
    from textual.widgets._footer import FooterKey, FooterLabel

    keys = list(screen.query(FooterKey))
    labels = list(screen.query(FooterLabel))
    edge = min([k.region.x for k in keys if k.has_class("-command-palette") and k.display] or [80])
    entries = [k for k in [*keys, *labels] if not k.has_class("-command-palette")]
    cut = [str(k.render()) for k in entries if k.region.right > edge or not k.region.width]
    return {k.key for k in keys}, cut


async def test_at_80_columns_the_replays_dashboard_footer_shows_every_key(recording: Recording) -> None:
    """At 80 × 24 the footer of a replay's dashboard shows every key it names, whichever panel has
    the focus: before, with the journey map focused, "[]{}<> replay" was cut to "[]{}<> rep" at the
    80th column, and with the matrix focused the replay's keys ran off the line (the compact footer
    now has short labels, "⏎ Open", "w Win", "v Wall", and "␣" for Space)."""
    from cxmon.tui.panels import TABS

    session, app = await whole_replay_on_screen(recording)
    async with running(session), app.run_test(size=(80, 24)) as pilot:
        await until(lambda: session.latest.version > 0, tries=600)
        await pilot.pause()
        seen = [("journey map", *footer_cut(app.screen))]
        for i in range(len(TABS)):
            await pilot.press(str(i + 1))
            await pilot.pause()
            await pilot.pause()
            seen.append((TABS[i], *footer_cut(app.screen)))
    for tab, shown, cut in seen:
        assert {"q", "v", "p", "left_square_bracket", "greater_than_sign"} <= shown, (tab, shown)
        assert not cut, (tab, cut)


def test_the_replays_help_has_one_row_for_p_saying_what_it_does_there(recording: Recording) -> None:
    """The replay's help lists p once, as pausing the replay and the screen (before, the
    dashboard's "pause updates" row and the replay's row both stood in the table)."""
    from cxmon.tui.screens.help import help_text

    session = ReplaySession(recording.config, recording.db, 0.0, 1.0)
    text = help_text(recording.config, "excl_short_abandons", "UTC", (), ReplayApp(session).help_keys())
    rows = [line for line in text.splitlines() if line.startswith("| p |")]
    assert rows == ["| p | pause the replay (and the screen), or go on |"]
    assert "| [ ] | move the time cursor a minute back / on |" in text


async def test_a_customers_path_in_a_replay_stops_at_the_time_cursor(recording: Recording) -> None:
    """The customers tab in a replay: a customer's recorded events of the 24 h up to the cursor, and
    none of the ones recorded after it."""
    span = await stored_range(recording.db)
    assert span is not None
    cursor = span[0] + 30 * 60.0
    with sqlite3.connect(recording.db) as db:
        row = db.execute(
            "SELECT customer_id FROM events WHERE customer_id IS NOT NULL GROUP BY customer_id "
            "HAVING min(ts) < ? AND max(ts) > ? ORDER BY count(*) DESC LIMIT 1",
            (cursor, cursor),
        ).fetchone()
        assert row is not None, "some customer has contacts on both sides of the cursor"
        customer = row[0]
        want = [
            r[0]
            for r in db.execute(
                "SELECT ts FROM events WHERE customer_id = ? AND ts <= ? ORDER BY ts, id", (customer, cursor)
            )
        ]
    session = ReplaySession(recording.config, recording.db, span[0], cursor, speed=None)
    async with running(session):
        await until(lambda: session.finished, tries=1200)
        path = await session.customer_path(customer)
    assert session.position == cursor
    assert want and [e.ts for e in path] == want
    assert {e.customer_id for e in path} == {customer}


class _StalledSink:
    """A sink that takes the first batch, then holds the source in ``emit`` until it is cancelled."""

    def __init__(self) -> None:
        self.got_one = asyncio.Event()

    def set_up(self, up: bool) -> None:
        pass

    def error(self, where: str, msg: str) -> None:
        raise AssertionError(f"{where}: {msg}")

    async def emit(self, events: Sequence[ContactEvent], offset: Offset | None = None) -> None:
        self.got_one.set()
        await asyncio.Event().wait()

    async def emit_rows(self, rows: Sequence[Row], offset: Offset | None, encoded: bytes) -> None:
        await self.emit(decode_rows(rows), offset)

    async def load_offset(self) -> Offset | None:
        return None


class _Kept:
    """A sink that keeps every event it is handed."""

    def __init__(self) -> None:
        self.events: list[ContactEvent] = []

    def set_up(self, up: bool) -> None:
        pass

    def error(self, where: str, msg: str) -> None:
        raise AssertionError(f"{where}: {msg}")

    async def emit(self, events: Sequence[ContactEvent], offset: Offset | None = None) -> None:
        self.events.extend(events)

    async def emit_rows(self, rows: Sequence[Row], offset: Offset | None, encoded: bytes) -> None:
        await self.emit(decode_rows(rows), offset)

    async def load_offset(self) -> Offset | None:
        return None


async def test_a_seek_into_a_quiet_stretch_stops_at_its_target(tmp_path: Path) -> None:
    """A history with two hours of nothing (a night): a seek to the first of them puts the cursor
    there and hands over no call after it (before, it ran on to the morning's first call)."""
    t0 = 1_000_000.0
    where: dict[str, Any] = {"channel": "voice", "queue": "q1", "source": "pbx"}
    arrived = EventKind.ARRIVED
    evening = [ContactEvent(ts=t0 + i, kind=arrived, contact_id=f"e{i}", **where) for i in range(3)]
    morning = [ContactEvent(ts=t0 + 7200 + i, kind=arrived, contact_id=f"m{i}", **where) for i in range(3)]
    db = tmp_path / "night.db"
    store = await Store(str(db)).open()
    await store.add([*evening, *morning], "pbx")
    await store.close()
    source = ReplaySource(db, t0, t0 + 8000.0, speed=1.0, skip_to=t0 + 3600.0)
    sink = _Kept()
    task = asyncio.create_task(source.run(sink))
    try:
        await until(lambda: source.position >= t0 + 3600.0, tries=600)
        await asyncio.sleep(0.3)  # paced at 1× from there: the morning is two wall hours away
        assert source.position < t0 + 3700.0
        calls = [ev for ev in sink.events if ev.kind is not EventKind.HEARTBEAT]
        assert [ev.contact_id for ev in calls] == ["e0", "e1", "e2"]
        # Heartbeats carry the engine's time along with the cursor, never beyond it.
        assert all(ev.ts <= source.position for ev in sink.events)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def _sqlite_threads() -> list[threading.Thread]:
    # aiosqlite runs each connection in a thread named after its worker function.
    return [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]


async def test_a_cancelled_replay_source_has_closed_its_database(recording: Recording) -> None:
    """A replay source cancelled mid-range closes its connection before its task ends, not later in
    a task of the loop's (which may be closed by then: aiosqlite's "Event loop is closed")."""
    span = await stored_range(recording.db)
    assert span is not None
    before = set(_sqlite_threads())
    sink = _StalledSink()
    source = ReplaySource(recording.db, span[0], span[1] + 1.0, speed=None)
    task = asyncio.create_task(source.run(sink))
    await asyncio.wait_for(sink.got_one.wait(), 30.0)
    assert [t for t in _sqlite_threads() if t not in before], "the source reads through a connection"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Without running the loop again: a connection still open now could only be closed by a task.
    for thread in _sqlite_threads():
        if thread not in before:
            thread.join(timeout=5.0)
            assert not thread.is_alive(), "the replay source left its database connection open"


def test_replay_reads_the_journey_from_the_database(recording: Recording, tmp_path: Path) -> None:
    """No --config: the journey is the one recorded; a database without one asks for --config."""
    assert journey(str(recording.db), None).steps == recording.config.steps
    bare = tmp_path / "old.db"
    sqlite3.connect(bare).execute("CREATE TABLE events (ts REAL)").connection.close()
    with pytest.raises(ConfigError) as err:
        journey(str(bare), None)
    assert "pass --config" in err.value.problems[0]


def test_replay_names_the_one_time_option_that_does_not_parse(
    recording: Recording, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cxmon replay DB --from 09:00 --to later` exits 2 with one line naming `--to`, the option at
    fault, and what it was given."""
    import argparse

    from cxmon.replay.command import replay_command

    args = argparse.Namespace(
        db=str(recording.db), config=None, from_="1999-08-02T09:00", to="later", speed="max", wallboard=False
    )
    assert replay_command(args) == 2
    assert capsys.readouterr().err == (
        "--to: expected ISO 8601 or epoch seconds, got 'later' (Invalid isoformat string: 'later')\n"
    )


def test_a_replay_from_after_the_history_names_its_last_event_not_a_to_never_given(
    recording: Recording, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cxmon replay DB --from T`, T after the last stored event and no --to, exits 2 with one line
    naming --from and the history's last event (before: "--to must come after --from", an option
    the user had not given)."""
    import argparse

    from cxmon.replay.command import replay_command

    args = argparse.Namespace(
        db=str(recording.db), config=None, from_="2100-01-01T00:00Z", to=None, speed="max", wallboard=False
    )
    assert replay_command(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "cxmon replay: --from 2100-01-01T00:00Z (2100-01-01T00:00:00Z) is after the last event of"
    )
    assert "--to must" not in err and err.count("\n") == 1


def test_replay_of_a_path_that_is_not_there_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cxmon replay` on a database path that does not exist names it and exits 2 (not SQLite's
    "unable to open database file")."""
    import argparse

    from cxmon.replay.command import replay_command

    missing = tmp_path / "histroy.db"
    args = argparse.Namespace(db=str(missing), config=None, from_=None, to=None, speed="max", wallboard=False)
    assert replay_command(args) == 2
    err = capsys.readouterr().err
    assert f"{missing}: no such history database" in err and "unable to open" not in err
    assert not missing.exists()


def test_replay_reads_a_time_without_a_zone_as_the_clock_its_dashboard_shows(
    recording: Recording, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cxmon replay DB --config bank.toml --from 1999-08-02T09:00`, where the config shows times in
    Jerusalem, replays from 09:00 there (06:00 UTC), not from 09:00 UTC (12:00 on its screen)."""
    import argparse
    from datetime import UTC, datetime

    from cxmon.replay import command

    ranges: list[tuple[float, float]] = []

    async def no_dashboard(config: Config, db: str, start: float, end: float, *rest: object) -> int:
        ranges.append((start, end))
        return 0

    monkeypatch.setattr(command, "_replay", no_dashboard)
    cfg = tmp_path / "jerusalem.toml"
    cfg.write_text(
        (REPO / "config" / "default.toml").read_text() + '\n[display]\ntimezone = "Asia/Jerusalem"\n'
    )
    args = argparse.Namespace(
        db=str(recording.db), config=str(cfg), from_="1999-08-02T09:00", to="1999-08-02T10:00Z",
        speed="max", wallboard=False,
    )  # fmt: skip
    assert command.replay_command(args) == 0
    assert ranges == [
        (
            datetime(1999, 8, 2, 6, 0, tzinfo=UTC).timestamp(),
            datetime(1999, 8, 2, 10, 0, tzinfo=UTC).timestamp(),
        )
    ]


def test_speed_takes_max_or_a_positive_number() -> None:
    """--speed: "max" is flat out; 0, negative, infinite and words are refused."""
    assert parse_speed("max") is None and parse_speed("60") == 60.0
    for bad in ("0", "-1", "inf", "fast"):
        with pytest.raises(ValueError):
            parse_speed(bad)


def test_replay_shows_the_clock_and_judges_with_the_forecast_the_history_was_written_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A history written with `[display] timezone = "Asia/Jerusalem"` and its own `[forecast]`
    options records both: `cxmon replay DB` with no --config shows Jerusalem time (09:00 there is
    06:00 UTC) and judges with those options, as the floor saw it live (before, it showed the
    machine's zone and the default forecast)."""
    import argparse
    from datetime import UTC, datetime

    from cxmon.config import loads
    from cxmon.replay import command
    from cxmon.store import Store

    text = (REPO / "config" / "default.toml").read_text()
    text = text.replace('profile_interval = "5m"', 'profile_interval = "5m"\nbreach_chance = "4%"')
    written = loads(text + '\n[display]\ntimezone = "Asia/Jerusalem"\n', "<site>")
    db = tmp_path / "site.db"

    async def write() -> None:
        store = await Store(str(db), config=written).open()
        await store.close()

    asyncio.run(write())
    seen: list[tuple[Config, float]] = []

    async def no_dashboard(config: Config, db: str, start: float, *rest: object) -> int:
        seen.append((config, start))
        return 0

    monkeypatch.setattr(command, "_replay", no_dashboard)

    async def some_range(db: str) -> tuple[float, float]:
        return 0.0, 2e9

    monkeypatch.setattr("cxmon.replay.source.stored_range", some_range)
    args = argparse.Namespace(
        db=str(db),
        config=None,
        from_="1999-08-02T09:00",
        to="1999-08-02T10:00Z",
        speed="max",
        wallboard=False,
    )
    assert command.replay_command(args) == 0
    ((config, start),) = seen
    assert config.display_timezone == "Asia/Jerusalem"
    assert config.forecast.breach_chance == pytest.approx(0.04)
    assert start == datetime(1999, 8, 2, 6, 0, tzinfo=UTC).timestamp()


async def test_seeks_pressed_while_paused_add_up(recording: Recording) -> None:
    """Paused, ] ] ] is three minutes on and then [ [ two back, on the bar too; before, each seek
    started from the unmoved cursor (one minute on in all) and a seek back from the range's start."""
    session, app = await whole_replay_on_screen(recording)
    async with running(session), app.run_test(size=(140, 40)) as pilot:
        await until(lambda: session.latest.version > 0, tries=600)
        await pilot.press("right_curly_bracket")
        await until(lambda: session.position >= session.start + 600.0, tries=600)
        await pilot.press("p")
        assert session.paused
        here = session.position
        await pilot.press("right_square_bracket", "right_square_bracket", "right_square_bracket")
        assert session.aim == pytest.approx(here + 180.0)
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert session.aim == pytest.approx(here + 60.0)
        await pilot.press("left_curly_bracket")  # back past where it stopped: a fresh engine
        await until(lambda: session.restarts == 1, tries=600)
        assert session.aim == pytest.approx(here - 540.0)
        await pilot.press("right_square_bracket")
        assert session.aim == pytest.approx((here - 540.0) + 60.0)
        await pilot.pause()
        bar = app.query_one(ReplayBar)
        bar.paint()
        stamp = datetime.fromtimestamp(session.aim, UTC).strftime("%H:%M:%S")
        assert "PAUSED" in str(bar.render()) and stamp in str(bar.render())
        await pilot.press("p")
        await until(lambda: session.position >= (here - 540.0) + 60.0, tries=600)


async def test_a_replay_knows_what_was_usual_from_the_weeks_stored_before_it(tmp_path: Path) -> None:
    """Over a history with minute figures from the three weeks before its range (and three after
    it), a replay's baselines are ready on those three weeks, as the floor's monitor's were then;
    before, a replay read none and said "learning (0 of 2 weeks of history)" however much history
    the database held."""
    config = one_step_config()
    db = tmp_path / "weeks.db"
    store = await Store(str(db)).open()
    await store.close()
    start = 1_000_000_200.0 - 1_000_000_200.0 % 3600  # on the hour
    figures = '{"offered": 10.0, "answered": 10.0, "wait_p90": 5.0}'
    with sqlite3.connect(db) as con:
        con.executemany(
            "INSERT INTO snapshots (minute, step, channel, queue, state, figures) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (start - weeks * WEEK + minute * 60.0, "help", "voice", "q1", "ok", figures)
                for weeks in (-3, -2, -1, 1, 2, 3)
                for minute in range(0, 60, 5)
            ],
        )
    session = ReplaySession(config, db, start, start + 600.0, speed=None, lead=0.0)
    async with running(session):
        await until(lambda: session.latest.version > 0 and session.latest.baseline is not None, tries=600)
        baseline = session.latest.baseline
    assert baseline is not None and baseline.ready and baseline.weeks == 3, baseline
