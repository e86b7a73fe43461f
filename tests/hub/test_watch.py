"""``cxmon watch``: the real dashboard over a hub client, its connection state, several sites, the CLI."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.content import Content
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Header

from cxmon.cli import main
from cxmon.engine import Engine
from cxmon.events import ContactEvent, EventKind
from cxmon.hub.client import HubClient
from cxmon.hub.server import Hub
from cxmon.hub.sites import SitesFeed
from cxmon.hub.watch import watch_command
from cxmon.localtime import zone, zone_label
from cxmon.snapshot import State
from cxmon.tui.app import CxmonApp
from cxmon.tui.feed import MemoryFeed
from cxmon.tui.format import clock_text
from cxmon.tui.messages import CustomerPathLoaded
from cxmon.tui.screens.acknowledge import AcknowledgeScreen
from cxmon.tui.widgets.customer_paths import CustomerPaths
from cxmon.tui.widgets.diff_table import DiffTable
from cxmon.tui.widgets.journey_map import StepTile
from cxmon.tui.widgets.stale_banner import StaleBanner
from cxmon.tui.widgets.status_bar import StatusBar
from cxmon.tui.widgets.step_matrix import StepMatrix
from tests.helpers import REPO, free_port, one_step_config
from tests.hub.helpers import memory_feed, snapshot, until
from tests.snapshot_app import MINUTES, sim_config

SIZE = (120, 40)


async def settle(pilot: Pilot[int], check: Callable[[], object], *, tries: int = 400) -> None:
    """Let the app run until ``check()`` holds (bounded by turns, not by time)."""
    for _ in range(tries):
        if check():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached")


def status(app: CxmonApp) -> str:
    return str(app.query_one(StatusBar).render())


async def test_dashboard_over_the_hub_says_disconnected_then_live_again() -> None:
    """Live: the status bar says so; hub gone: DISCONNECTED, STALE banner, tiles STALE; back: live again."""
    feed = memory_feed()
    hub = Hub(feed, port=0)
    await hub.start()
    port = hub.port
    client = HubClient(f"ws://127.0.0.1:{port}", initial_delay=0.05, max_delay=0.2)
    await client.start()
    await client.wait_ready(10)
    app = CxmonApp(client, refresh_interval=0)
    try:
        async with app.run_test(size=SIZE) as pilot:
            banner = app.query_one(StaleBanner)
            await settle(pilot, lambda: "hub ● live" in status(app))
            assert not banner.display
            tile = app.query_one(StepTile)
            assert "OK" in str(tile.render())
            await hub.aclose()
            await settle(pilot, lambda: "DISCONNECTED" in status(app))
            await settle(pilot, lambda: banner.display)
            assert "no contact with the hub" in str(banner.render())
            assert "STALE" in str(tile.render()) and tile.has_class("-stale")
            hub = Hub(feed, port=port)
            await hub.start()
            feed.publish(snapshot(9))
            await settle(pilot, lambda: "hub ● live" in status(app) and app.snapshot.version == 9)
            await settle(pilot, lambda: not banner.display)
            assert "OK" in str(tile.render())
    finally:
        await client.aclose()
        await hub.aclose()


class FakeWall:
    """A wall clock (epoch seconds) the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def watching(
    delay: tuple[float, float], wall: FakeWall | None = None, **app_options: Any
) -> AsyncIterator[tuple[Hub, HubClient, CxmonApp]]:
    """A hub over the memory feed, a client of it that has its first snapshot (retrying after
    ``delay`` = (first, longest) seconds, on ``wall``'s clock when given) and a dashboard over the
    client, not started; the client and the hub are closed after the block."""
    hub = Hub(memory_feed(), port=0)
    await hub.start()
    clock: dict[str, Any] = {} if wall is None else {"clock": wall}
    client = HubClient(f"ws://127.0.0.1:{hub.port}", initial_delay=delay[0], max_delay=delay[1], **clock)
    try:
        await client.start()
        await client.wait_ready(10)
        if wall is not None:
            app_options["wall_clock"] = wall
        yield hub, client, CxmonApp(client, refresh_interval=0, **app_options)
    finally:
        await client.aclose()
        await hub.aclose()


async def test_the_data_age_grows_while_the_hub_is_out_of_reach() -> None:
    """Hub gone: the status bar's data age counts on from the hub's last snapshot, not the figure it had."""
    wall = FakeWall()
    async with (
        watching((0.05, 0.2), wall) as (hub, _, app),
        app.run_test(size=SIZE) as pilot,
    ):
        await settle(pilot, lambda: "hub ● live" in status(app))
        assert "age 0.0s" in status(app)  # the memory feed's source delivered at the snapshot's time
        await hub.aclose()
        await settle(pilot, lambda: "DISCONNECTED" in status(app))
        wall.now += 125.0
        await settle(pilot, lambda: "age 2m05s" in status(app))


async def test_the_wait_for_the_next_attempt_counts_down_while_the_hub_is_out_of_reach() -> None:
    """Hub gone: "retry in N s" counts down to the client's next attempt, then says it is retrying."""
    wall = FakeWall()
    # Long delays: the attempt stays ahead while the test moves the wall clock towards it.
    async with (
        watching((40.0, 40.0), wall) as (hub, _, app),
        app.run_test(size=SIZE) as pilot,
    ):
        await settle(pilot, lambda: "hub ● live" in status(app))
        await hub.aclose()
        await settle(pilot, lambda: "DISCONNECTED" in status(app))
        assert app.snapshot.hub is not None
        retry_at = app.snapshot.hub.links[0].retry_at
        assert retry_at is not None and retry_at - wall.now >= 20.0
        wall.now = retry_at - 12.5
        await settle(pilot, lambda: "retry in 13 s" in status(app))
        wall.now = retry_at - 2.5
        await settle(pilot, lambda: "retry in 3 s" in status(app))
        wall.now = retry_at + 0.5
        await settle(pilot, lambda: "DISCONNECTED, retrying" in status(app))


async def test_the_status_bar_of_a_watcher_cut_off_fits_80_columns() -> None:
    """Hub gone, at 80×24: the status bar's whole line fits (the age and window too), the cut-off
    feed's last event rates left out."""
    wall = FakeWall()
    async with (
        watching((400.0, 400.0), wall) as (hub, _, app),
        app.run_test(size=(80, 24)) as pilot,
    ):
        await settle(pilot, lambda: "hub ● live" in status(app))
        await hub.aclose()
        wall.now += 125.0
        await settle(pilot, lambda: "retry in" in status(app) and "age 2m05s" in status(app))
        bar = app.query_one(StatusBar)
        line = bar.render()
        assert isinstance(line, Content) and line.cell_length <= bar.content_size.width, str(line)
        assert "ev/s" not in str(line)


async def test_the_stale_banner_of_a_watcher_cut_off_leaves_the_header_in_sight_at_80x24() -> None:
    """Hub gone, at 80×24: the header (its data time and "⚠ STALE") stays on the top line and the
    STALE banner sits whole under it, covering neither the header nor being cut off."""
    async with (
        watching((400.0, 400.0)) as (hub, client, app),
        app.run_test(size=(80, 24)) as pilot,
    ):
        await settle(pilot, lambda: "hub ● live" in status(app))
        await hub.aclose()
        await settle(pilot, lambda: "DISCONNECTED" in status(app) and "⚠ STALE" in app.sub_title)
        await pilot.pause()
        header, banner = app.query_one(Header), app.query_one(StaleBanner)
        assert clock_text(client.latest.ts, app.tz) in app.sub_title
        assert isinstance(app.screen.get_widget_at(40, 0)[0].parent, Header)
        assert banner.region.y >= header.region.bottom
        assert banner.region.height == 2  # its text wraps once at 80 columns
        assert not banner.region.intersection(header.region)


async def test_the_banner_names_the_lost_hub_not_the_silence_between_attempts() -> None:
    """Hub gone for longer than the stale limit between two attempts: the banner still says "no contact
    with the hub at …", not "no snapshot from the feed for …" (counted from the last attempt)."""
    async with (
        watching((400.0, 400.0), silent_after=0.2) as (hub, _, app),
        app.run_test(size=SIZE) as pilot,
    ):
        url = f"ws://127.0.0.1:{hub.port}"
        banner = app.query_one(StaleBanner)
        await settle(pilot, lambda: "hub ● live" in status(app))
        await hub.aclose()
        await settle(pilot, lambda: "DISCONNECTED" in status(app) and app.silent_for is not None)
        await pilot.pause()
        assert f"no contact with the hub at {url}" in str(banner.render())


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    """The real Engine after a seeded simulator run (with its pot holes) into a database."""
    async with Engine(sim_config(), db_path=str(tmp_path / "cxmon.db")) as eng:
        await eng.run(duration=MINUTES * 60.0)
        yield eng


async def test_ack_from_a_watching_dashboard_is_stored_and_seen_by_another_watcher(engine: Engine) -> None:
    """``a`` in a dashboard over the hub stores the ack in the daemon; another watcher shows it."""
    async with Hub(engine, port=0) as hub:
        url = f"ws://127.0.0.1:{hub.port}"
        async with HubClient(url) as mine, HubClient(url) as theirs:
            await mine.wait_ready(10)
            await theirs.wait_ready(10)
            holes = [s.name for s in mine.latest.steps if s.state is State.POTHOLE]
            assert holes, "the seeded run has a pot hole"
            app = CxmonApp(mine, refresh_interval=0)
            async with app.run_test(size=SIZE) as pilot:
                app.selected_step = holes[0]
                app.action_show_tab("detail")
                await pilot.press("a")
                await settle(pilot, lambda: isinstance(app.screen, AcknowledgeScreen))
                await pilot.press(*"on it", "enter")
                await settle(pilot, lambda: engine._acks.get(holes[0]) is not None)
            assert engine.store is not None
            assert [(a.step, a.note) for a in await engine.store.acks()] == [(holes[0], "on it")]
            # The engine publishes the ack with its next tick; the other watcher receives it.
            engine._tick(engine.now())
            await until(lambda: any(a.step == holes[0] and a.note == "on it" for a in theirs.latest.acks))


async def test_a_viewer_watcher_is_told_at_once_it_may_not_acknowledge() -> None:
    """A viewer-token watcher pressing ``a`` gets a notification that its token may view, not
    acknowledge, and no acknowledgement form to fill in for nothing."""
    feed = memory_feed()
    async with (
        Hub(feed, port=0, viewer_token="see", ack_token="fix") as hub,
        HubClient(f"ws://127.0.0.1:{hub.port}", token="see") as client,
    ):
        await client.wait_ready(10)
        app = CxmonApp(client, refresh_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            app.selected_step = "help"
            await pilot.press("a")
            await settle(pilot, lambda: bool(app._notifications))
            await pilot.pause()
            assert not isinstance(app.screen, AcknowledgeScreen)
            [note] = list(app._notifications)
            assert note.severity == "warning"
            assert "this watcher's token may view, not acknowledge" in note.message
            assert feed.acks == []


async def test_an_ack_refused_to_a_viewer_token_is_told_in_words() -> None:
    """A viewer-token watcher's ack the hub refuses (the role not known beforehand): a notification
    titled "Acknowledgement failed" with the hub's why."""
    async with (
        Hub(memory_feed(), port=0, viewer_token="see", ack_token="fix") as hub,
        HubClient(f"ws://127.0.0.1:{hub.port}", token="see") as client,
    ):
        await client.wait_ready(10)
        client.role = None  # as from a hub whose hello names no role: only its refusal tells
        app = CxmonApp(client, refresh_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            app.selected_step = "help"
            await pilot.press("a")
            await settle(pilot, lambda: isinstance(app.screen, AcknowledgeScreen))
            await pilot.press(*"on it", "enter")
            await settle(pilot, lambda: app.last_ack_error is not None)
            [note] = [n for n in app._notifications if n.severity == "error"]
            assert note.title == "Acknowledgement failed"
            assert "forbidden: this watcher's token may view, not acknowledge" in note.message


async def test_several_sites_show_one_map_per_site_and_acks_go_to_their_site() -> None:
    """Two hubs: steps named by site in the journey, figures kept apart, an ack reaches only its site."""
    leeds, york = memory_feed(2), memory_feed(3)
    async with Hub(leeds, port=0) as a, Hub(york, port=0) as b:
        clients = [HubClient(f"ws://127.0.0.1:{a.port}"), HubClient(f"ws://127.0.0.1:{b.port}")]
        for c in clients:
            await c.start()
            await c.wait_ready(10)
        sites = SitesFeed(clients, ["leeds", "york"])
        try:
            assert [s.name for s in sites.config.steps] == ["leeds-help", "york-help"]
            assert [s.label for s in sites.config.steps] == ["leeds · help", "york · help"]
            stream = sites.subscribe()
            merged = await anext(stream)
            assert [s.name for s in merged.steps] == ["leeds-help", "york-help"]
            assert len(merged.series_of("leeds-help")) == 2 and len(merged.series_of("york-help")) == 3
            york.publish(snapshot(4, 3, seed=1))
            merged = await anext(stream)
            while merged.series_of("york-help")[0].windows != snapshot(4, 3, seed=1).series[0].windows:
                merged = await anext(stream)
            ack = await sites.acknowledge("york-help", "ann", "on it")
            assert ack.step == "york-help"
            assert [a.step for a in york.acks] == ["help"] and leeds.acks == []
        finally:
            await sites.aclose()
            for c in clients:
                await c.aclose()


async def test_several_sites_know_which_sites_the_token_may_acknowledge_on() -> None:
    """One token, two sites: a viewer at one and an acknowledger at the other; the merged feed
    lets only the second site's steps be acknowledged from the dashboard."""
    async with (
        Hub(memory_feed(2), port=0, viewer_token="tok", ack_token="other") as a,
        Hub(memory_feed(3), port=0, viewer_token="other", ack_token="tok") as b,
    ):
        clients = [
            HubClient(f"ws://127.0.0.1:{a.port}", token="tok"),
            HubClient(f"ws://127.0.0.1:{b.port}", token="tok"),
        ]
        for c in clients:
            await c.start()
            await c.wait_ready(10)
        sites = SitesFeed(clients, ["leeds", "york"])
        try:
            assert not sites.may_acknowledge("leeds-help")
            assert sites.may_acknowledge("york-help")
        finally:
            await sites.aclose()
            for c in clients:
                await c.aclose()


async def test_several_sites_name_their_site_on_each_tile_and_matrix_row() -> None:
    """Two sites with the same journey: each tile and each matrix row says which site it is
    ("leeds · help"), so a pot hole or a STALE tile can be told to its floor."""
    async with Hub(memory_feed(1), port=0) as a, Hub(memory_feed(1), port=0) as b:
        clients = [HubClient(f"ws://127.0.0.1:{a.port}"), HubClient(f"ws://127.0.0.1:{b.port}")]
        for c in clients:
            await c.start()
            await c.wait_ready(10)
        sites = SitesFeed(clients, ["leeds", "york"])
        app = CxmonApp(sites, refresh_interval=0)
        try:
            async with app.run_test(size=SIZE) as pilot:
                await settle(pilot, lambda: len(app.query(StepTile)) == 2 and app.snapshot.steps)
                await pilot.pause()
                tiles = [" ".join(str(t.render()).split()) for t in app.query(StepTile)]
                assert "leeds · help" in tiles[0] and "york · help" in tiles[1]
                matrix = app.query_one(StepMatrix)
                await settle(pilot, lambda: matrix.row_count == 2)
                cells = [str(matrix.get_row_at(i)[0]) for i in range(2)]
                assert "leeds · help" in cells[0] and "york · help" in cells[1]
        finally:
            await sites.aclose()
            for c in clients:
                await c.aclose()


async def test_several_sites_leave_a_lost_sites_rate_out_of_the_total() -> None:
    """Two sites at 8 and 18 events/s: 26 ev/s total; York's hub gone, 8 ev/s total (not York's last rate)."""
    leeds = MemoryFeed(one_step_config(), dataclasses.replace(snapshot(1), events_per_second=8.0))
    york = MemoryFeed(one_step_config(), dataclasses.replace(snapshot(1), events_per_second=18.0))
    a, b = Hub(leeds, port=0), Hub(york, port=0)
    await a.start()
    await b.start()
    clients = [HubClient(f"ws://127.0.0.1:{h.port}", initial_delay=400.0, max_delay=400.0) for h in (a, b)]
    for c in clients:
        await c.start()
        await c.wait_ready(10)
    sites = SitesFeed(clients, ["leeds", "york"])
    app = CxmonApp(sites, refresh_interval=0)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: "hubs 2/2 live" in status(app))
            assert "26 ev/s total" in status(app)
            await b.aclose()
            await settle(pilot, lambda: "hubs 1/2 live" in status(app))
            assert "8 ev/s total" in status(app) and "26 ev/s" not in status(app)
    finally:
        await sites.aclose()
        for c in clients:
            await c.aclose()
        await a.aclose()
        await b.aclose()


async def test_at_80_columns_several_sites_keep_the_age_and_window_in_the_status_bar() -> None:
    """Three sites at 80×24: the status bar's line fits, with the data age and the window; the
    sources are said more briefly instead (by name and health, or how many are up)."""
    hubs = [Hub(memory_feed(1), port=0) for _ in range(3)]
    for h in hubs:
        await h.start()
    clients = [HubClient(f"ws://127.0.0.1:{h.port}") for h in hubs]
    for c in clients:
        await c.start()
        await c.wait_ready(10)
    sites = SitesFeed(clients, ["leeds", "york", "hull"])
    app = CxmonApp(sites, refresh_interval=0)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot, lambda: "hubs 3/3 live" in status(app))
            await pilot.pause()
            bar = app.query_one(StatusBar)
            line = bar.render()
            assert isinstance(line, Content) and line.cell_length <= bar.content_size.width, str(line)
            assert "age 0.0s" in str(line) and "window 1m" in str(line)
    finally:
        await sites.aclose()
        for c in clients:
            await c.aclose()
        for h in hubs:
            await h.aclose()


async def test_a_viewer_gets_the_same_strikes_list_and_customer_path_as_in_process(engine: Engine) -> None:
    """Over the hub, with the viewer token, the strikes list and a customer's path are the daemon's own."""
    async with (
        Hub(engine, port=0, viewer_token="see", ack_token="fix") as hub,
        HubClient(f"ws://127.0.0.1:{hub.port}", token="see") as client,
    ):
        await client.wait_ready(10)
        assert client.role == "view"
        leaders = await client.customer_leaders(20)
        assert leaders and leaders == await engine.customer_leaders(20)
        customer = leaders[0][0]
        path = await client.customer_path(customer)
        assert path and path == await engine.customer_path(customer)
        assert await client.customer_path("nobody-at-all") == []
    assert hub.stats.queries_total == 3


async def test_the_customers_tab_over_the_hub_shows_the_stored_path(engine: Engine) -> None:
    """The dashboard watching a hub lists the strike leaders; Enter shows the path the store holds."""
    async with Hub(engine, port=0) as hub, HubClient(f"ws://127.0.0.1:{hub.port}") as client:
        await client.wait_ready(10)
        seen: list[Message] = []
        app = CxmonApp(client, refresh_interval=0)
        async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
            await pilot.press("4")
            paths = app.query_one(CustomerPaths)
            leaders = paths.query_one("#leaders", DiffTable)
            await settle(pilot, lambda: leaders.row_count > 0)
            leaders.focus()
            await pilot.press("enter")
            await settle(pilot, lambda: any(isinstance(m, CustomerPathLoaded) for m in seen))
            loaded = next(m for m in seen if isinstance(m, CustomerPathLoaded))
            assert loaded.customer_id == paths.leaders[0][0]
            assert loaded.events and loaded.events == await engine.customer_path(loaded.customer_id)
            await settle(pilot, lambda: paths.query_one("#path", DiffTable).row_count == len(loaded.events))


async def test_several_sites_add_up_strikes_and_merge_a_customers_path() -> None:
    """Two sites: a customer's strikes are summed across them; the path is both sites' events in time
    order, each source named by its site."""

    def ev(ts: float, queue: str) -> ContactEvent:
        return ContactEvent(
            ts, EventKind.ARRIVED, f"c{ts:g}", "voice", queue, source="pbx", customer_id="bob"
        )

    leeds = MemoryFeed(
        one_step_config(),
        snapshot(1),
        leaders=[("ann", 3), ("bob", 2)],
        paths={"bob": [ev(10, "a"), ev(30, "a")]},
    )
    york = MemoryFeed(
        one_step_config(), snapshot(1), leaders=[("bob", 2), ("cy", 1)], paths={"bob": [ev(20, "b")]}
    )
    async with Hub(leeds, port=0) as a, Hub(york, port=0) as b:
        clients = [HubClient(f"ws://127.0.0.1:{a.port}"), HubClient(f"ws://127.0.0.1:{b.port}")]
        for c in clients:
            await c.start()
            await c.wait_ready(10)
        sites = SitesFeed(clients, ["leeds", "york"])
        try:
            assert await sites.customer_leaders(20) == [("bob", 4), ("ann", 3), ("cy", 1)]
            path = await sites.customer_path("bob")
        finally:
            await sites.aclose()
            for c in clients:
                await c.aclose()
    assert [(e.ts, e.queue, e.source) for e in path] == [
        (10.0, "a", "leeds-pbx"),
        (20.0, "b", "york-pbx"),
        (30.0, "a", "leeds-pbx"),
    ]


def watch_nobody(timeout: float) -> tuple[argparse.Namespace, int]:
    """`cxmon watch` arguments for a port nobody listens on, and the port."""
    port = free_port()
    args = argparse.Namespace(
        urls=[f"ws://127.0.0.1:{port}"], token=None, connect_timeout=timeout, wallboard=False, timezone=None
    )
    return args, port


def test_watch_exits_2_when_no_hub_answers(capsys: pytest.CaptureFixture[str]) -> None:
    """`cxmon watch` on a port nobody listens on says why and exits 2 (it does not open a blank screen)."""
    args, port = watch_nobody(1.0)
    assert watch_command(args) == 2
    assert f"127.0.0.1:{port}" in capsys.readouterr().err


def test_watch_says_why_a_hub_has_not_answered_while_it_waits(capsys: pytest.CaptureFixture[str]) -> None:
    """A second into waiting for a hub that does not answer, `cxmon watch` says which and why, and goes
    on trying until its timeout: a blank terminal would not tell a wrong port from a hub starting."""
    args, port = watch_nobody(2.0)
    assert watch_command(args) == 2
    lines = capsys.readouterr().err.splitlines()
    [waiting] = [line for line in lines if "trying again" in line]
    assert f"ws://127.0.0.1:{port}: " in waiting and "up to 2 s in all" in waiting
    assert "Connect call failed" in waiting  # the refusal itself, not a guess
    assert "no answer within 2 s" in lines[-1]


async def test_a_hub_that_answers_at_once_is_joined_without_a_word() -> None:
    """Nothing is said while waiting for a hub that answers within the first second."""
    from cxmon.hub.watch import open_feed

    hub = Hub(memory_feed(), port=0)
    await hub.start()
    said: list[str] = []
    try:
        feed, clients, _ = await open_feed([f"ws://127.0.0.1:{hub.port}"], None, 10.0, said.append)
        assert feed is clients[0] and clients[0].latest.version > 0
        for client in clients:
            await client.aclose()
    finally:
        await hub.aclose()
    assert said == []


def test_watch_refuses_a_url_that_is_not_a_websocket() -> None:
    """An http:// URL is a usage error (exit 2), not a connection attempt."""
    args = argparse.Namespace(
        urls=["http://127.0.0.1:1"], token=None, connect_timeout=1.0, wallboard=False, timezone=None
    )
    assert watch_command(args) == 2


BAD_URLS = ("ws://", "ws://127.0.0.1:notaport", "ws://127.0.0.1:99999", "ws://[::1")


@pytest.mark.parametrize("url", BAD_URLS)
def test_watch_names_a_malformed_url_and_exits_2(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A ws:// URL without a host, with a port that is no port, or with a broken [address] is one line
    on stderr naming it, and exit 2: not a traceback."""
    assert main(["watch", url, "--connect-timeout", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cxmon watch: {url!r}: expected ws://HOST:PORT (") and err.count("\n") == 1


def test_web_refuses_a_malformed_url_instead_of_serving_it() -> None:
    """`cxmon web` checks its hub URL as `cxmon watch` does: exit 2 and one line, before serving pages
    whose every session would fail."""
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "cxmon", "web", "ws://127.0.0.1:notaport", "--listen", f"127.0.0.1:{port}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("cxmon web: 'ws://127.0.0.1:notaport': expected ws://HOST:PORT (")
    assert "Traceback" not in done.stderr


def test_web_on_a_taken_address_says_so_in_one_line_and_exits_2() -> None:
    """`cxmon web --listen` on an address another program holds: one line naming it and --listen, exit 2
    (it was a traceback and exit 1, after a banner announcing it served there)."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "cxmon", "web", "ws://127.0.0.1:1", "--listen", f"127.0.0.1:{port}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert done.stderr.startswith(f"cxmon web: cannot listen on 127.0.0.1:{port} for the browsers: ")
    assert "already in use" in done.stderr and "--listen" in done.stderr and done.stderr.count("\n") == 1
    assert "Serving" not in done.stdout


@pytest.mark.parametrize("value", ["-1", "0", "nan", "soon"])
def test_watch_refuses_a_connect_timeout_that_is_not_above_zero(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--connect-timeout takes seconds above zero: -1 and nan were taken and gave "no answer within
    -1 s (None)" or a wait without end."""
    with pytest.raises(SystemExit) as exited:
        main(["watch", "ws://127.0.0.1:1", "--connect-timeout", value])
    assert exited.value.code == 2
    assert "--connect-timeout: expected a number of seconds" in capsys.readouterr().err


def zoned_feed(name: str | None, n_series: int = 2) -> MemoryFeed:
    """A one-step feed whose config shows times in the zone ``name``."""
    feed = memory_feed(n_series)
    feed.config = dataclasses.replace(feed.config, display_timezone=name)
    return feed


async def title_of(client: HubClient, timezone: str | None) -> tuple[str, float]:
    """The dashboard's header over ``client`` (with ``--timezone``), and the engine time it shows."""
    app = CxmonApp(client, refresh_interval=0, timezone=timezone)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.snapshot.version > 0)
        await pilot.pause()
        return str(app.sub_title), app.snapshot.ts


async def test_a_watching_dashboard_shows_times_in_the_hubs_zone_unless_told_otherwise() -> None:
    """A hub configured with `[display] timezone = "Asia/Jerusalem"` has its watchers show Jerusalem
    time (the site's clock, not the watching machine's); `--timezone UTC` overrides it."""
    async with Hub(zoned_feed("Asia/Jerusalem"), port=0) as hub:
        client = HubClient(f"ws://127.0.0.1:{hub.port}")
        await client.start()
        try:
            await client.wait_ready(10)
            assert client.config.display_timezone == "Asia/Jerusalem"
            title, ts = await title_of(client, None)
            jerusalem = zone("Asia/Jerusalem")
            assert zone_label(jerusalem, ts) in ("IST", "IDT")
            assert title.startswith(f"{clock_text(ts, jerusalem)} {zone_label(jerusalem, ts)}"), title
            title, ts = await title_of(client, "UTC")
            assert title.startswith(f"{clock_text(ts, zone('UTC'))} UTC"), title
        finally:
            await client.aclose()


async def test_several_sites_share_a_zone_only_when_they_all_show_it() -> None:
    """Hubs in one zone are watched in it; hubs in different zones in the watching machine's own."""
    async with (
        Hub(zoned_feed("Europe/London"), port=0) as leeds,
        Hub(zoned_feed("Europe/London"), port=0) as york,
        Hub(zoned_feed("Europe/Madrid"), port=0) as madrid,
    ):
        for hubs, zone_name in (((leeds, york), "Europe/London"), ((leeds, madrid), None)):
            clients = [HubClient(f"ws://127.0.0.1:{h.port}") for h in hubs]
            for c in clients:
                await c.start()
                await c.wait_ready(10)
            sites = SitesFeed(clients, ["a", "b"])
            try:
                assert sites.config.display_timezone == zone_name
            finally:
                await sites.aclose()
                for c in clients:
                    await c.aclose()


def test_watch_refuses_a_zone_that_does_not_exist(capsys: pytest.CaptureFixture[str]) -> None:
    """`cxmon watch --timezone Mars/Olympus` names the option and exits 2 before connecting."""
    args, _ = watch_nobody(1.0)
    args.timezone = "Mars/Olympus"
    assert watch_command(args) == 2
    err = capsys.readouterr().err
    assert "--timezone: unknown time zone 'Mars/Olympus'" in err and "trying again" not in err
