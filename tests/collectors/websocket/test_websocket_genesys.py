"""The websocket collector on Genesys Cloud's notification flow, against a loopback Genesys."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from collectors.websocket import WebsocketSource
from collectors.websocket.genesys import GenesysCloudAdapter
from cxmon.config import loads
from cxmon.engine import Engine
from cxmon.snapshot import State
from tests.collectors.websocket.genesys_server import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeGenesys,
    conversation,
    observation,
    wait_for,
)

QID = "8d2cf4b5-0b2c-4a5e-9f7e-3c4a2d1e0f11"


def config(api: str, **extra: str) -> str:
    more = "".join(f'{k} = "{v}"\n' for k, v in extra.items())
    return f"""
[monitor]
windows = ["5m"]
tick = "100ms"
stale_after = "10m"
recover_after = "200ms"  # a socket that is back counts soon (the test waits on the wall clock)

[journey]
channels = ["voice"]
queues = ["billing"]

[[journey.steps]]
name = "get_help"
match = [{{ channel = "voice" }}]

[[collectors]]
type = "websocket"
name = "genesys"
adapter = "genesys_cloud"
api = "{api}"
login = "{api}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
queues = {{ "{QID}" = "billing" }}
min_backoff = "50ms"
max_backoff = "200ms"
{more}"""


@pytest.fixture
async def genesys() -> AsyncIterator[FakeGenesys]:
    server = FakeGenesys()
    await server.start()
    yield server
    await server.close()


def totals(engine: Engine) -> dict[str, float]:
    out: dict[str, float] = {}
    for s in engine.latest.series:
        for k, v in s.totals.items():
            out[k] = out.get(k, 0) + (v or 0)
    return out


async def test_subscribes_to_the_queue_topics(genesys: FakeGenesys) -> None:
    """Token by client credentials, one channel, the queue's two topics subscribed, socket connected."""
    async with Engine(loads(config(genesys.api)), store=False) as engine:
        await wait_for(lambda: genesys.connections == 1)
        # the server counts the socket at its handshake; the source says up once it has it too
        await wait_for(lambda: engine.health["genesys"].up)
    assert genesys.tokens == ["token-1"]
    assert genesys.channels == {
        "streaming-0-1": [f"v2.routing.queues.{QID}.conversations", f"v2.analytics.queues.{QID}.observations"]
    }


async def test_kill_and_restart_shows_stale_then_recovers_without_double_counting(
    genesys: FakeGenesys,
) -> None:
    """A call queued and answered; the socket dies (the step goes STALE, the source down); it comes
    back, the conversation's state is sent again with the call ended: offered, answered and resolved
    are each 1."""
    now = time.time()
    async with Engine(loads(config(genesys.api)), store=False) as engine:
        await wait_for(lambda: genesys.connections == 1)
        await genesys.send(f"v2.routing.queues.{QID}.conversations", conversation("c-1", QID, now - 60))
        await genesys.send(
            f"v2.routing.queues.{QID}.conversations", conversation("c-1", QID, now - 60, agent_at=now - 30)
        )
        await wait_for(lambda: totals(engine).get("answered") == 1)
        await genesys.kill_socket()
        await wait_for(lambda: not engine.health["genesys"].up)
        await wait_for(lambda: [s.state for s in engine.latest.steps] == [State.STALE])
        assert [s.stale for s in engine.latest.sources] == [True]
        await genesys.start_socket()
        await wait_for(lambda: genesys.connections == 2)
        await wait_for(lambda: engine.health["genesys"].up)
        for _ in range(2):  # the whole state again, twice: nothing new but the end
            await genesys.send(
                f"v2.routing.queues.{QID}.conversations",
                conversation("c-1", QID, now - 60, agent_at=now - 30, agent_end=now - 1),
            )
        await wait_for(lambda: totals(engine).get("resolved") == 1)
        await wait_for(lambda: [s.state for s in engine.latest.steps] != [State.STALE])
        figures = totals(engine)
    assert (figures["offered"], figures["answered"], figures["resolved"]) == (1, 1, 1)
    assert genesys.tokens == ["token-1"] and len(genesys.channels) == 1  # the channel was reused


async def test_unanswered_call_that_leaves_the_queue_is_abandoned(genesys: FakeGenesys) -> None:
    """The acd participant ends with no agent: abandoned, with its wait."""
    now = time.time()
    async with Engine(loads(config(genesys.api)), store=False) as engine:
        await wait_for(lambda: genesys.connections == 1)
        await genesys.send(
            f"v2.routing.queues.{QID}.conversations", conversation("c-2", QID, now - 50, left=now - 5)
        )
        await wait_for(lambda: totals(engine).get("abandoned") == 1)


async def test_an_observed_count_past_any_real_one_is_refused_and_the_rest_stored(
    genesys: FakeGenesys, tmp_path: Path
) -> None:
    """An observation counting 1e308 waiting is refused and reported; the conversation after it is
    stored (the count used to reach the store as a 309-digit integer that failed the commit of
    every event with it)."""
    now = time.time()
    db = tmp_path / "h.db"
    async with Engine(loads(config(genesys.api)), db_path=str(db)) as engine:
        await wait_for(lambda: genesys.connections == 1)
        counted = observation(QID, 0, 2, 5)
        counted["data"][0]["stats"]["count"] = 1e308  # oWaiting
        await genesys.send(f"v2.analytics.queues.{QID}.observations", counted)
        await genesys.send(
            f"v2.routing.queues.{QID}.conversations", conversation("c-9", QID, now - 50, left=now - 5)
        )
        await wait_for(lambda: totals(engine).get("abandoned") == 1)
    assert "contacts_waiting" in (engine.health["genesys"].last_error or "")
    con = sqlite3.connect(db)
    assert [r[0] for r in con.execute("SELECT kind FROM events WHERE contact_id != '' ORDER BY id")] == [
        "arrived",
        "abandoned",
    ]


async def test_observations_feed_staffing(genesys: FakeGenesys) -> None:
    """oOnQueueUsers (all routing statuses) is agents staffed, its IDLE part agents available."""
    async with Engine(loads(config(genesys.api)), store=False) as engine:
        await wait_for(lambda: genesys.connections == 1)
        await genesys.send(f"v2.analytics.queues.{QID}.observations", observation(QID, 3, 2, 5))
        await wait_for(lambda: any(s.instant.get("agents_staffed") == 7 for s in engine.latest.series))
        [series] = engine.latest.series
    assert series.instant["agents_available"] == 2
    source = engine.sources[0]
    assert isinstance(source, WebsocketSource) and isinstance(source.adapter, GenesysCloudAdapter)
    assert source.adapter.observed_waiting == {"billing": 3}


async def test_observed_waiting_is_the_snapshots_waiting_now(genesys: FakeGenesys) -> None:
    """oWaiting stands for the queue's waiting-now figure, which no conversation event reported:
    3, then 1 a moment later; the snapshot follows each observation."""
    async with Engine(loads(config(genesys.api)), store=False) as engine:
        await wait_for(lambda: genesys.connections == 1)
        topic = f"v2.analytics.queues.{QID}.observations"
        seen: list[float | None] = []
        for waiting in (3, 1):
            await genesys.send(topic, observation(QID, waiting, 2, 5))
            await wait_for(
                lambda w=waiting: [s.instant.get("waiting_now") for s in engine.latest.series] == [w]
            )
            [series] = engine.latest.series
            seen.append(series.instant["waiting_now"])
    assert seen == [3, 1]
    assert totals(engine).get("offered", 0) == 0  # counted, not invented as contacts


async def test_observed_interacting_gives_available_without_a_status_breakdown(genesys: FakeGenesys) -> None:
    """oMemberUsers 6 and oInteracting 4 with no on-queue figure: 6 staffed, 2 available."""
    body = {
        "group": {"queueId": QID, "mediaType": "voice"},
        "data": [
            {"metric": "oMemberUsers", "stats": {"count": 6}},
            {"metric": "oInteracting", "stats": {"count": 4}},
        ],
    }
    async with Engine(loads(config(genesys.api)), store=False) as engine:
        await wait_for(lambda: genesys.connections == 1)
        await genesys.send(f"v2.analytics.queues.{QID}.observations", body)
        await wait_for(lambda: any(s.instant.get("agents_staffed") == 6 for s in engine.latest.series))
        [series] = engine.latest.series
    assert series.instant["agents_available"] == 2


async def test_socket_closing_reconnects(genesys: FakeGenesys) -> None:
    """v2.system.socket_closing: the source connects again at once (same channel)."""
    async with Engine(loads(config(genesys.api)), store=False):
        await wait_for(lambda: genesys.connections == 1)
        await genesys.socket_closing()
        await wait_for(lambda: genesys.connections == 2)
    assert len(genesys.channels) == 1


async def test_heartbeats_keep_the_source_fresh(genesys: FakeGenesys) -> None:
    """channel.metadata heartbeats count as signs of life (the source's last event moves)."""
    async with Engine(loads(config(genesys.api)), store=False) as engine:
        await wait_for(lambda: genesys.connections == 1)
        await genesys.heartbeat()
        await wait_for(lambda: engine.health["genesys"].last_event_ts is not None)
        source = engine.sources[0]
        assert isinstance(source, WebsocketSource)
        assert source.counts["heartbeats"] == 1


async def test_channel_is_renewed_before_it_expires() -> None:
    """A channel that expires in 3 s with renew_before 2 s: a new channel is made and subscribed
    before expiry, and the socket moves to it."""
    server = FakeGenesys(channel_lifetime=3.0)
    await server.start()
    try:
        async with Engine(loads(config(server.api, renew_before="2s")), store=False):
            await wait_for(lambda: len(server.channels) >= 2 and server.connections >= 2)
    finally:
        await server.close()
    assert all(len(topics) == 2 for topics in server.channels.values())


async def test_refused_token_is_reported_and_retried(genesys: FakeGenesys) -> None:
    """A refused token: the source is down, the error is reported, and it retries with backoff."""
    genesys.refuse_tokens = True
    async with Engine(loads(config(genesys.api)), store=False) as engine:
        await wait_for(lambda: engine.health["genesys"].errors_total >= 2)
        assert not engine.health["genesys"].up
        genesys.refuse_tokens = False
        await wait_for(lambda: genesys.connections == 1)
    assert "HTTP 401" in (engine.health["genesys"].last_error or "")
