"""The hub with real websocket watchers on 127.0.0.1: protocol, bad frames, roles, fan-out, stalls."""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import orjson

from cxmon import __version__
from cxmon.engine import Engine
from cxmon.hub.protocol import (
    PROTOCOL,
    apply_delta_frame,
    config_of,
    decode_snapshot,
    delta_frame,
    hello_frame,
    snapshot_frame,
)
from cxmon.hub.server import Hub
from cxmon.snapshot import Snapshot
from tests.helpers import sim_config
from tests.hub.helpers import frame, memory_feed, raw_watcher, snapshot, until


async def test_hello_carries_versions_and_the_journey() -> None:
    """The first frame names the protocol and software versions and the whole journey."""
    feed = memory_feed()
    async with Hub(feed, port=0) as hub:
        ws = await raw_watcher(hub.port)
        hello = await frame(ws)
        await ws.close()
    assert (hello["type"], hello["protocol"], hello["software"], hello["role"]) == (
        "hello",
        PROTOCOL,
        __version__,
        "ack",
    )
    journey = config_of(hello["journey"], "x")
    assert journey.steps == feed.config.steps
    assert (journey.channels, journey.queues, journey.monitor) == (
        feed.config.channels,
        feed.config.queues,
        feed.config.monitor,
    )


def test_a_hello_carries_the_zone_the_site_shows_times_in() -> None:
    """The hello's journey names the hub's `[display] timezone`; a hello without one (a hub before
    it was sent) or with a zone this machine does not know leaves the watcher its own zone."""
    config = dataclasses.replace(memory_feed().config, display_timezone="Asia/Jerusalem")
    journey = orjson.loads(hello_frame(config, "view"))["journey"]
    assert journey["timezone"] == "Asia/Jerusalem"
    assert config_of(journey, "x").display_timezone == "Asia/Jerusalem"
    assert config_of({k: v for k, v in journey.items() if k != "timezone"}, "x").display_timezone is None
    assert config_of({**journey, "timezone": "Mars/Olympus"}, "x").display_timezone is None


async def test_a_full_snapshot_then_deltas_rebuild_every_published_snapshot() -> None:
    """After the full snapshot, each delta applied in turn gives exactly the snapshot published."""
    feed = memory_feed()
    async with Hub(feed, port=0) as hub:
        ws = await raw_watcher(hub.port)
        await frame(ws)
        first = await frame(ws)
        assert first["type"] == "snapshot"
        have = decode_snapshot(first)
        assert have == feed.latest
        published = [snapshot(v, seed=v % 3) for v in range(2, 7)]
        for snap in published:
            feed.publish(snap)
            await asyncio.sleep(0)
            delta = await frame(ws)
            assert delta["type"] == "delta"
            have = apply_delta_frame(have, delta)
            assert have == snap
        await ws.close()


async def test_bad_frames_get_an_error_frame_are_counted_and_hurt_no_one() -> None:
    """Garbage from one watcher earns it error frames and a count; it and others keep receiving."""
    feed = memory_feed()
    async with Hub(feed, port=0) as hub:
        bad, good = await raw_watcher(hub.port), await raw_watcher(hub.port)
        for ws in (bad, good):
            await frame(ws)
            await frame(ws)
        garbage: list[str | bytes] = [
            "not json",
            b"\xff\xfe binary",
            "[1, 2]",
            '{"type": "launch"}',
            '{"type": "ack", "id": 9, "who": "x"}',
        ]
        for message in garbage:
            await bad.send(message)
        errors = [await frame(bad) for _ in garbage]
        assert [e["type"] for e in errors] == ["error"] * len(garbage)
        assert errors[-1]["id"] == 9 and "ack.step" in errors[-1]["message"]
        assert hub.stats.bad_frames_total == len(garbage)
        feed.publish(snapshot(2))
        for ws in (bad, good):
            assert (await frame(ws))["version"] == 2
        await bad.close()
        await good.close()


async def test_ping_frame_gets_a_pong() -> None:
    """The application-level keepalive: a ping frame is answered with a pong echoing its id."""
    async with Hub(memory_feed(), port=0) as hub:
        ws = await raw_watcher(hub.port)
        await frame(ws)
        await frame(ws)
        await ws.send('{"type": "ping", "id": "k1"}')
        assert await frame(ws) == {"type": "pong", "id": "k1"}
        await ws.close()


async def test_viewer_token_cannot_acknowledge() -> None:
    """A watcher holding the viewer token gets ``forbidden`` for an ack, and nothing is stored."""
    feed = memory_feed()
    async with Hub(feed, port=0, viewer_token="see", ack_token="fix") as hub:
        ws = await raw_watcher(hub.port, token="see")
        assert (await frame(ws))["role"] == "view"
        await frame(ws)
        await ws.send(
            orjson.dumps({"type": "ack", "id": 1, "step": "help", "who": "ann", "note": "x"}), text=True
        )
        reply = await frame(ws)
        await ws.close()
    assert (reply["type"], reply["code"], reply["id"]) == ("error", "forbidden", 1)
    assert feed.acks == []
    assert hub.stats.acks_refused_total == 1


async def test_ack_token_acknowledges_through_the_feed() -> None:
    """A watcher holding the ack token has its ack stored by the feed and gets it back."""
    feed = memory_feed()
    async with Hub(feed, port=0, viewer_token="see", ack_token="fix") as hub:
        ws = await raw_watcher(hub.port, token="fix")
        assert (await frame(ws))["role"] == "ack"
        await frame(ws)
        await ws.send(
            orjson.dumps({"type": "ack", "id": 2, "step": "help", "who": "ann", "note": "on it"}), text=True
        )
        reply = await frame(ws)
        await ws.close()
    assert reply["type"] == "ack_result" and reply["id"] == 2
    assert [(a.step, a.who, a.note) for a in feed.acks] == [("help", "ann", "on it")]


async def test_an_ack_ending_out_of_bounds_is_refused_and_not_stored() -> None:
    """An ack whose ``until`` lies beyond the longest an acknowledgement may last (or not after now) gets
    ``bad_ack`` naming ack.until, and the engine stores nothing: every watcher showing its end would fail."""
    config = sim_config(speed=30)
    async with Engine(config, store=False) as engine:
        runner = asyncio.create_task(engine.run())
        async with Hub(engine, port=0) as hub:
            ws = await raw_watcher(hub.port)
            assert (await frame(ws))["role"] == "ack"
            step = config.steps[1].name
            replies = []
            for request_id, until_ in enumerate((1e300, -5.0), 1):
                ack = {
                    "type": "ack",
                    "id": request_id,
                    "step": step,
                    "who": "ann",
                    "note": "x",
                    "until": until_,
                }
                await ws.send(orjson.dumps(ack), text=True)
                while (reply := await frame(ws))["type"] in ("snapshot", "delta"):
                    pass
                replies.append(reply)
            await ws.close()
        engine.stop()
        await runner
    assert [(r["type"], r["code"], r["id"]) for r in replies] == [
        ("error", "bad_ack", 1),
        ("error", "bad_ack", 2),
    ]
    assert all(r["message"].startswith("ack.until:") for r in replies)
    assert engine._acks.get(step) is None


async def test_fifty_watchers_receive_every_tick() -> None:
    """50 watchers on loopback each receive the full snapshot and then every delta, in order."""
    feed = memory_feed(20)
    ticks = 30
    # No keepalive: 50 watchers decoding in the hub's own loop can hold a pong past its timeout.
    async with Hub(feed, port=0, queue_limit=ticks + 5, ping_interval=None) as hub:
        watchers = [await raw_watcher(hub.port) for _ in range(50)]
        seen: list[list[int]] = [[] for _ in watchers]

        async def read(i: int) -> None:
            ws = watchers[i]
            await frame(ws)
            have: Snapshot = decode_snapshot(await frame(ws))
            seen[i].append(have.version)
            while have.version < 1 + ticks:
                have = apply_delta_frame(have, await frame(ws, timeout=30))
                seen[i].append(have.version)

        readers = [asyncio.create_task(read(i)) for i in range(len(watchers))]
        await until(lambda: len(hub.watchers) == 50 and all(w.version == 1 for w in hub.watchers))
        for v in range(2, 2 + ticks):
            feed.publish(snapshot(v, 20, seed=v))
            await asyncio.sleep(0.02)
        await asyncio.wait_for(asyncio.gather(*readers), 120)
        for ws in watchers:
            await ws.close()
    assert all(s == list(range(1, 2 + ticks)) for s in seen)
    assert hub.stats.resyncs_total == 0


async def test_a_stalled_watcher_delays_no_one_and_its_memory_stays_bounded() -> None:
    """A watcher that stops reading falls behind the kept deltas; the others get every tick; the hub
    keeps at most ``queue_limit`` deltas and one frame over the socket's high-water mark for it."""
    feed = memory_feed(50)
    limit = 8
    ticks = 80
    async with Hub(feed, port=0, queue_limit=limit, ping_interval=None) as hub:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", hub.port))
        stalled = await raw_watcher(hub.port, sock=sock, max_queue=1, compression=None)
        live = [await raw_watcher(hub.port) for _ in range(3)]
        counts = [0] * len(live)

        async def read(i: int) -> None:
            ws = live[i]
            await frame(ws)
            have = decode_snapshot(await frame(ws))
            while have.version < 1 + ticks:
                have = apply_delta_frame(have, await frame(ws, timeout=30))
                counts[i] += 1

        readers = [asyncio.create_task(read(i)) for i in range(len(live))]
        await until(lambda: len(hub.watchers) == 4 and all(w.version == 1 for w in hub.watchers))
        stuck = next(w for w in hub.watchers if w.ws.remote_address[1] == sock.getsockname()[1])
        # Small socket buffers on both ends, so the stall shows after a few frames rather than megabytes.
        stuck.ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        biggest = 0
        worst_backlog = worst_buffer = 0
        for v in range(2, 2 + ticks):
            # Every tick changes every series: deltas of kilobytes the stalled socket cannot take.
            prev, snap = feed.latest, snapshot(v, 50, seed=v)
            feed.publish(snap)
            # The stalled watcher takes frames uncompressed: a delta, or a full snapshot on resync.
            biggest = max(biggest, len(delta_frame(prev, snap)), len(snapshot_frame(snap)))
            await asyncio.sleep(0.005)
            worst_backlog = max(worst_backlog, hub.backlog)
            transport = stuck.ws.transport
            worst_buffer = max(worst_buffer, transport.get_write_buffer_size() if transport else 0)
        await asyncio.wait_for(asyncio.gather(*readers), 120)
        assert counts == [ticks] * len(live)
        # Stuck in a send: it is further behind than the hub keeps deltas, and will be resynced.
        assert hub.lagging() == 1
        assert worst_backlog <= limit
        # websockets waits for the buffer to drain below its high-water mark (32 KiB) before the
        # next send, and the hub writes at once only below it: at most one frame (and its header of
        # up to 10 bytes) sits above it.
        assert worst_buffer <= 2**15 + biggest + 10
        stalled.transport.abort()
        for ws in live:
            await ws.close()


async def test_a_malformed_customer_question_gets_an_error_frame() -> None:
    """``path`` without a customer, or ``customers`` with a limit of 0, earn ``bad_request`` and a count."""
    async with Hub(memory_feed(), port=0) as hub:
        ws = await raw_watcher(hub.port)
        await frame(ws)
        await frame(ws)
        await ws.send('{"type": "path", "id": 1}')
        await ws.send('{"type": "customers", "id": 2, "limit": 0}')
        replies = [await frame(ws), await frame(ws)]
        await ws.close()
    assert [(r["type"], r["code"], r["id"]) for r in replies] == [
        ("error", "bad_request", 1),
        ("error", "bad_request", 2),
    ]
    assert "path.customer" in replies[0]["message"] and "customers.limit" in replies[1]["message"]
    assert hub.stats.bad_frames_total == 2
