"""The websocket collector on a native event stream: bearer auth, reconnects, each event once."""

from __future__ import annotations

import asyncio
import logging
import random
import time

import orjson
import pytest
from websockets.asyncio.server import Server, ServerConnection, serve

from collectors.websocket.options import parse_options
from collectors.websocket.source import WebsocketSource, backoff
from cxmon.customers import Directory
from tests.collectors.webhook.harness import RecordingSink
from tests.collectors.websocket.genesys_server import wait_for


class Feed:
    """A native event server that sends everything it has to every (re)connected client."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.events: list[dict[str, object]] = []
        self.refused = 0
        self.port = 0
        self.server: Server | None = None

    async def start(self) -> None:
        self.server = await serve(self._client, "127.0.0.1", self.port)
        self.port = next(iter(self.server.sockets)).getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _client(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        if (
            ws.request.headers.get("Authorization") != f"Bearer {self.token}"
            or ws.request.headers.get("X-Tenant") != "acme"
        ):
            self.refused += 1
            await ws.close(4001, "unauthorized")
            return
        # Replays its whole history on every connection: the client must not count anything twice.
        await ws.send(orjson.dumps({"version": 1, "events": self.events}).decode())
        await ws.wait_closed()


def source(port: int, token: str) -> WebsocketSource:
    options, problems = parse_options(
        {
            "adapter": "native",
            "url": f"ws://127.0.0.1:{port}/events",
            "bearer": token,
            "headers": {"X-Tenant": "acme"},
            "min_backoff": "20ms",
            "max_backoff": "100ms",
        },
        "collectors[0]",
    )
    assert options is not None, problems
    return WebsocketSource("live", options, directory=Directory(), rng=random.Random(1))


def event(i: int) -> dict[str, object]:
    return {
        "id": f"e{i}",
        "ts": time.time(),
        "kind": "arrived",
        "contact_id": f"k{i}",
        "channel": "chat",
        "queue": "q",
    }


async def test_reconnect_after_restart_counts_each_event_once() -> None:
    """Two events; the server stops (the source is down) and restarts replaying everything plus a
    third event: the source ends with exactly three events."""
    feed = Feed("tok")
    feed.events = [event(1), event(2)]
    await feed.start()
    sink = RecordingSink()
    src = source(feed.port, "tok")
    task = asyncio.create_task(src.run(sink))
    try:
        await wait_for(lambda: len(sink.events) == 2)
        assert sink.up
        await feed.stop()
        await wait_for(lambda: not sink.up)
        feed.events.append(event(3))
        await feed.start()
        await wait_for(lambda: src.counts["connects"] == 2 and len(sink.events) == 3)
        await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await feed.stop()
    assert [e.contact_id for e in sink.events] == ["k1", "k2", "k3"]
    assert src.counts["duplicates"] == 2


async def test_wrong_bearer_is_refused_and_retried_with_backoff() -> None:
    """A server that refuses the token: the source stays down, reports it, and retries with growing delays."""
    feed = Feed("right")
    await feed.start()
    sink = RecordingSink()
    src = source(feed.port, "wrong")
    task = asyncio.create_task(src.run(sink))
    try:
        await wait_for(lambda: feed.refused >= 4)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await feed.stop()
    assert not sink.up and sink.events == []
    assert sink.errors and "connection" in sink.errors[0][1]


def test_backoff_doubles_with_jitter_and_caps() -> None:
    """Delay n lies in [cap/2, cap] with cap = min(max, min·2ⁿ); the jitter makes delays differ."""
    rng = random.Random(7)
    delays = [backoff(n, 1.0, 30.0, rng) for n in range(8)]
    for n, d in enumerate(delays):
        cap = min(30.0, 2.0**n)
        assert cap / 2 <= d <= cap
    assert len({round(d, 6) for d in delays[5:]}) == 3  # capped, but not in lockstep


class Messages:
    """A server that sends each client the given messages, one websocket message each, then ``close``
    (a close code and reason) or nothing (it waits for the client to leave)."""

    def __init__(self, messages: list[str], close: tuple[int, str] | None = None) -> None:
        self.messages = messages
        self.close = close
        self.port = 0
        self.server: Server | None = None

    async def __aenter__(self) -> Messages:
        self.server = await serve(self._client, "127.0.0.1", 0)
        self.port = next(iter(self.server.sockets)).getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _client(self, ws: ServerConnection) -> None:
        for message in self.messages:
            await ws.send(message)
        if self.close is not None:
            await ws.close(*self.close)
        await ws.wait_closed()


def native(*events: dict[str, object]) -> str:
    return orjson.dumps({"version": 1, "events": list(events)}).decode()


async def test_customer_object_off_the_schema_is_reported_with_its_key_path() -> None:
    """A streamed event whose customer object has a key the schema does not name is reported with
    its key path and skipped; the messages around it are taken."""
    bad = {**event(2), "customer": {"phone": "+34600111222", "x": 1}}
    async with Messages([native(event(1)), native(bad), native(event(3))]) as feed:
        sink = RecordingSink()
        src = source(feed.port, "tok")
        task = asyncio.create_task(src.run(sink))
        try:
            await wait_for(lambda: len(sink.events) == 2)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert [e.contact_id for e in sink.events] == ["k1", "k3"]
    assert [msg for _, msg in sink.errors] == ["events[0].customer.x: unknown key"]


async def test_a_garbage_message_is_reported_by_its_number_since_connect() -> None:
    """A message that is not a native body is reported with the feed's URL, its number since the
    connection opened and the connection's; the messages after it are taken."""
    async with Messages([native(event(1)), native(event(2)), "{garbage", native(event(3))]) as feed:
        sink = RecordingSink()
        src = source(feed.port, "tok")
        task = asyncio.create_task(src.run(sink))
        try:
            await wait_for(lambda: len(sink.events) == 3)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    [(where, why)] = sink.errors
    assert where == f"ws://127.0.0.1:{feed.port}/events message 3 of connection 1"
    assert why.startswith("body: not JSON")


async def test_a_clean_close_by_the_server_is_logged_with_its_code_and_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server that closes normally (1000) is a disconnect logged at info with the code and reason,
    not a silent one."""
    caplog.set_level(logging.INFO, logger="collectors.websocket.source")
    async with Messages([native(event(1))], close=(1000, "maintenance")) as feed:
        sink = RecordingSink()
        src = source(feed.port, "tok")
        task = asyncio.create_task(src.run(sink))
        try:
            await wait_for(lambda: src.counts["disconnects"] >= 1)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    closes = [r for r in caplog.records if "closed the connection" in r.getMessage()]
    assert closes and closes[0].levelno == logging.INFO
    assert (
        closes[0].getMessage()
        == f"live: ws://127.0.0.1:{feed.port}/events closed the connection: code 1000 (maintenance)"
    )
