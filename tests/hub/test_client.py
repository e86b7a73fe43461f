"""HubClient, the dashboard's Feed over a hub: live data, acks seen by everyone, stale while cut off,
and back live after the daemon is killed and restarted."""

from __future__ import annotations

import asyncio
import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from cxmon.engine import Engine
from cxmon.hub.client import DISCONNECTED, LIVE, HubClient, HubError, backoff_delay
from cxmon.hub.server import Hub
from cxmon.snapshot import State
from tests.helpers import sim_config
from tests.hub.helpers import free_port, memory_feed, snapshot, start_daemon, until
from tests.snapshot_app import sim_config_text


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    """Delays lie in the upper half of min(max, initial·2^n), and are not all equal."""
    rng = random.Random(1)
    for attempt in range(12):
        cap = min(8.0, 0.5 * 2**attempt)
        delays = [backoff_delay(attempt, 0.5, 8.0, rng) for _ in range(50)]
        assert all(cap / 2 <= d <= cap for d in delays)
        assert len(set(delays)) > 1


async def test_client_follows_the_hub_and_goes_stale_when_it_stops() -> None:
    """The client shows each published snapshot live; when the hub goes, every state reads STALE."""
    feed = memory_feed()
    hub = Hub(feed, port=0)
    await hub.start()
    client = HubClient(f"ws://127.0.0.1:{hub.port}", initial_delay=0.05, max_delay=0.2)
    async with client:
        await client.wait_ready(10)
        feed.publish(snapshot(5, seed=2))
        await until(lambda: client.latest.version == 5)
        assert client.latest.hub is not None and client.latest.hub.state == LIVE and not client.latest.stale
        assert client.latest.series == snapshot(5, seed=2).series
        await hub.aclose()
        await until(lambda: client.state == DISCONNECTED)
        shown = client.latest
        assert shown.stale and shown.hub is not None and shown.hub.state == DISCONNECTED
        assert {s.state for s in shown.steps} | {s.state for s in shown.series} == {State.STALE}
        assert all("no contact with the hub" in s.reason for s in shown.steps)
        with pytest.raises(HubError):
            await client.acknowledge("help", "ann", "x")


async def test_a_client_cut_off_from_its_hub_shows_no_source_up() -> None:
    """While the hub is out of reach every source reads STALE, not the "up" the daemon last sent."""
    feed = memory_feed()
    hub = Hub(feed, port=0)
    await hub.start()
    async with HubClient(f"ws://127.0.0.1:{hub.port}", initial_delay=0.05, max_delay=0.2) as client:
        await client.wait_ready(10)
        assert client.latest.sources and not any(s.stale for s in client.latest.sources)
        await hub.aclose()
        await until(lambda: client.state == DISCONNECTED)
        assert all(s.stale for s in client.latest.sources)


async def test_an_ack_from_one_watcher_is_stored_and_seen_by_another() -> None:
    """Acknowledging through one watcher stores it in the daemon's engine; a second watcher sees it."""
    config = sim_config(speed=30)
    async with Engine(config, store=False) as engine:
        runner = asyncio.create_task(engine.run())
        async with Hub(engine, port=0) as hub:
            url = f"ws://127.0.0.1:{hub.port}"
            async with HubClient(url) as one, HubClient(url) as two:
                await one.wait_ready(30)
                await two.wait_ready(30)
                step = config.steps[1].name
                ack = await one.acknowledge(step, "ann", "rerouting")
                assert engine._acks[step] == ack
                await until(
                    lambda: any(a.who == "ann" and a.step == step for a in two.latest.acks), tries=600
                )
                shown = two.latest.step(step)
                assert shown is not None and shown.ack == ack
        engine.stop()
        await runner


@pytest.fixture
def daemon_config(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A simulator config whose hub listens on a fixed free port (the same after a restart)."""
    port = free_port()
    text = sim_config_text(speed="30").replace('listen = "127.0.0.1:8765"', f'listen = "127.0.0.1:{port}"', 1)
    path = tmp_path / "cxmon.toml"
    path.write_text(text, encoding="utf-8")
    yield path, port


async def test_watchers_see_a_killed_daemon_disconnected_then_live_again(
    daemon_config: tuple[Path, int], tmp_path: Path
) -> None:
    """kill -9 the daemon: every watcher shows disconnected and stale; restart it: every one is live again."""
    config, port = daemon_config
    db = tmp_path / "cxmon.db"
    daemon = start_daemon(config, db)
    watchers = [HubClient(f"ws://127.0.0.1:{port}", initial_delay=0.1, max_delay=0.5) for _ in range(10)]
    try:
        for w in watchers:
            await w.start()
        await until(lambda: all(w.state == LIVE and w.latest.version > 0 for w in watchers), tries=1200)
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(30)
        await until(lambda: all(w.state == DISCONNECTED for w in watchers), tries=600)
        assert all(w.latest.stale and {s.state for s in w.latest.steps} == {State.STALE} for w in watchers)
        daemon = start_daemon(config, db)
        await until(lambda: all(w.state == LIVE and w.connects == 2 for w in watchers), tries=1200)
        assert not any(w.latest.stale for w in watchers)
    finally:
        for w in watchers:
            await w.aclose()
        daemon.terminate()
        daemon.wait(30)
