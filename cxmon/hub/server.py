"""Hub server: one websocket endpoint fanning the engine's snapshots out to every watcher.

Each tick's delta is encoded once and the same bytes go to every watcher. A watcher owns a bounded
queue and a writer task: when it falls more than ``queue_limit`` frames behind, its queue is dropped
and it is resynced from the latest full snapshot (websockets ``docs/topics/broadcast.rst``), so a
stalled watcher costs the hub at most its queue and one socket's write buffer, and holds no one up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.http11 import Request, Response

from cxmon.config import Config
from cxmon.hub.auth import Decision, authorize, bearer
from cxmon.hub.codec import CodecError, loads
from cxmon.hub.protocol import (
    ACK,
    SUBPROTOCOL,
    ack_result_frame,
    delta_frame,
    error_frame,
    hello_frame,
    parse_ack,
    pong_frame,
    snapshot_frame,
)
from cxmon.snapshot import Ack, Snapshot

log = logging.getLogger(__name__)

QUEUE_LIMIT = 32
"""Frames a watcher may be behind before it is resynced from a full snapshot."""
CONTROL_LIMIT = 64
"""Replies (pong, error, ack_result) waiting for one watcher; more are dropped."""
COMPRESSION_LEVEL = 1
"""zlib level of permessage-deflate (see :meth:`Hub.start`)."""
MAX_MESSAGE = 64 * 1024
"""Largest frame a watcher may send (acks and pings are a few hundred bytes)."""


class Publisher(Protocol):
    """What the hub serves: the Engine, or any other feed of snapshots."""

    config: Config

    @property
    def latest(self) -> Snapshot: ...

    def subscribe(self) -> AsyncIterable[Snapshot]: ...

    async def acknowledge(self, step: str, who: str, note: str, until: float | None = None) -> Ack: ...


@dataclass(slots=True)
class HubStats:
    """Running counts, for logs, tests and the benchmark."""

    connections_total: int = 0
    refused_total: int = 0
    bad_frames_total: int = 0
    resyncs_total: int = 0
    deltas_total: int = 0
    acks_total: int = 0
    acks_refused_total: int = 0
    replies_dropped_total: int = 0


class _Watcher:
    """One connected watcher: its role, what it has, and what is queued for it."""

    __slots__ = ("control", "limit", "queue", "resync", "role", "version", "wake", "ws")

    def __init__(self, ws: ServerConnection, role: str, limit: int) -> None:
        self.ws = ws
        self.role = role
        self.limit = limit
        self.version = -1
        """Version of the snapshot the watcher holds (after the frames already sent)."""
        self.queue: deque[tuple[int, int, bytes]] = deque()
        """(base version, version, delta frame)."""
        self.control: deque[bytes] = deque()
        self.resync = True
        self.wake = asyncio.Event()

    def offer(self, base: int, version: int, frame: bytes, stats: HubStats) -> None:
        if self.resync:
            return
        if len(self.queue) >= self.limit:
            self.queue.clear()
            self.resync = True
            stats.resyncs_total += 1
        else:
            self.queue.append((base, version, frame))
        self.wake.set()

    def reply(self, frame: bytes, stats: HubStats) -> None:
        if len(self.control) >= CONTROL_LIMIT:
            stats.replies_dropped_total += 1
            return
        self.control.append(frame)
        self.wake.set()


class Hub:
    """The websocket hub on ``[hub] listen``: hello, full snapshot on connect, then deltas; acks in."""

    def __init__(
        self,
        feed: Publisher,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        viewer_token: str | None = None,
        ack_token: str | None = None,
        queue_limit: int = QUEUE_LIMIT,
        ping_interval: float | None = 20.0,
    ) -> None:
        """Build the hub; nothing listens until :meth:`start`.

        Args:
            feed: where snapshots come from and acknowledgements go.
            host: address to bind (127.0.0.1 unless configured otherwise).
            port: port to bind (0: any free port, see :attr:`port`).
            viewer_token: bearer token that lets a watcher see.
            ack_token: bearer token that lets a watcher see and acknowledge.
            queue_limit: frames a watcher may fall behind before it is resynced.
            ping_interval: seconds between websocket keepalive pings (None: none).
        """
        self.feed = feed
        self.host = host
        self.port = port
        self.viewer_token = viewer_token
        self.ack_token = ack_token
        self.queue_limit = queue_limit
        self.ping_interval = ping_interval
        self.stats = HubStats()
        self.watchers: set[_Watcher] = set()
        self._latest: Snapshot = feed.latest
        self._full: tuple[int, bytes] | None = None
        self._hello: dict[str, bytes] = {}
        self._server: Server | None = None
        self._pump: asyncio.Task[None] | None = None

    @classmethod
    def from_config(cls, feed: Publisher, config: Config, **kwargs: Any) -> Hub:
        """A hub on ``config.hub``'s address with its tokens."""
        hub = config.hub
        return cls(
            feed,
            host=hub.host,
            port=hub.port,
            viewer_token=hub.viewer_token,
            ack_token=hub.ack_token,
            **kwargs,
        )

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Bind and start serving; :attr:`port` is the bound port afterwards."""
        self._latest = self.feed.latest
        self._server = await serve(
            self._serve,
            self.host,
            self.port,
            process_request=self._authorize,
            # permessage-deflate at zlib level 1: every watcher's copy of a delta is compressed on its
            # own connection, so the fan-out's cost is that compression times the watchers; level 1
            # does it in about half the time of the default level for a few per cent more bytes.
            compression=None,
            extensions=[
                ServerPerMessageDeflateFactory(
                    server_max_window_bits=12,
                    client_max_window_bits=12,
                    compress_settings={"memLevel": 5, "level": COMPRESSION_LEVEL},
                )
            ],
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            max_size=MAX_MESSAGE,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_interval,
            close_timeout=2.0,
        )
        sockets = list(self._server.sockets)
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._pump = asyncio.create_task(self._follow(), name="hub-pump")

    async def aclose(self) -> None:
        """Stop the pump, close every watcher (1001 going away) and the listening socket."""
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Hub:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ fan-out

    async def _follow(self) -> None:
        """Encode one delta per new snapshot and offer the same bytes to every watcher."""
        async for snap in self.feed.subscribe():
            self.publish(snap)

    def publish(self, snap: Snapshot) -> None:
        """Make ``snap`` the latest and queue its delta for every watcher (called by the pump)."""
        prev = self._latest
        if snap is prev or snap.version == prev.version:
            return
        self._latest = snap
        self._full = None
        if not self.watchers:
            return
        frame = delta_frame(prev, snap)
        self.stats.deltas_total += 1
        for watcher in self.watchers:
            watcher.offer(prev.version, snap.version, frame, self.stats)

    def full_frame(self) -> tuple[int, bytes]:
        """The latest snapshot as a full frame (encoded at most once per version)."""
        if self._full is None or self._full[0] != self._latest.version:
            self._full = (self._latest.version, snapshot_frame(self._latest))
        return self._full

    # ------------------------------------------------------------------ one watcher

    def _decide(self, connection: ServerConnection, request: Request) -> Decision:
        peer = connection.remote_address[0] if connection.remote_address else ""
        token = bearer(request.headers.get("Authorization"))
        return authorize(str(peer), token, self.viewer_token, self.ack_token)

    def _authorize(self, connection: ServerConnection, request: Request) -> Response | None:
        decision = self._decide(connection, request)
        if decision.role is None:
            peer = connection.remote_address[0] if connection.remote_address else ""
            self.stats.refused_total += 1
            log.warning("hub: refused %s: %s", peer, decision.reason)
            response = connection.respond(HTTPStatus(decision.status), decision.reason + "\n")
            if decision.status == 401:
                response.headers = Headers([*response.headers.raw_items(), ("WWW-Authenticate", "Bearer")])
            return response
        return None

    async def _serve(self, ws: ServerConnection) -> None:
        # The same decision process_request made (cheap, and nothing to keep between the two).
        role = self._decide(ws, ws.request).role if ws.request is not None else None
        if role is None:
            await ws.close(1008, "not authorized")
            return
        self.stats.connections_total += 1
        watcher = _Watcher(ws, role, self.queue_limit)
        hello = self._hello.get(role)
        if hello is None:
            hello = self._hello[role] = hello_frame(self.feed.config, role)
        try:
            await ws.send(hello, text=True)
        except ConnectionClosed:
            return
        self.watchers.add(watcher)
        watcher.wake.set()
        writer = asyncio.create_task(self._write(watcher), name="hub-writer")
        try:
            async for message in ws:
                await self._received(watcher, message)
        except ConnectionClosed:
            pass
        finally:
            self.watchers.discard(watcher)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await writer

    async def _write(self, watcher: _Watcher) -> None:
        """Send the watcher its replies, then a full snapshot when it needs one, else its deltas."""
        ws = watcher.ws
        try:
            while True:
                await watcher.wake.wait()
                watcher.wake.clear()
                while True:
                    if watcher.control:
                        await ws.send(watcher.control.popleft(), text=True)
                    elif watcher.resync:
                        watcher.resync = False
                        watcher.queue.clear()
                        version, frame = self.full_frame()
                        watcher.version = version
                        await ws.send(frame, text=True)
                    elif watcher.queue:
                        base, version, frame = watcher.queue.popleft()
                        if version <= watcher.version:
                            continue
                        if base != watcher.version:
                            watcher.resync = True
                            continue
                        watcher.version = version
                        await ws.send(frame, text=True)
                    else:
                        break
        except ConnectionClosed:
            pass

    async def _received(self, watcher: _Watcher, message: str | bytes) -> None:
        """Handle one frame from a watcher; a bad one gets an error frame and is counted."""
        try:
            frame = loads(message)
        except CodecError as exc:
            self._bad(watcher, "bad_frame", str(exc), None)
            return
        if not isinstance(frame, dict):
            self._bad(watcher, "bad_frame", "expected a JSON object", None)
            return
        kind, request_id = frame.get("type"), frame.get("id")
        if kind == "ping":
            watcher.reply(pong_frame(request_id), self.stats)
        elif kind == "resync":
            watcher.resync = True
            watcher.wake.set()
        elif kind == "ack":
            await self._acknowledge(watcher, frame, request_id)
        else:
            self._bad(watcher, "unknown_type", f"unknown frame type {kind!r}", request_id)

    async def _acknowledge(self, watcher: _Watcher, frame: dict[str, Any], request_id: Any) -> None:
        if watcher.role != ACK:
            self.stats.acks_refused_total += 1
            watcher.reply(
                error_frame("forbidden", "this watcher's token may view, not acknowledge", request_id),
                self.stats,
            )
            return
        try:
            request = parse_ack(frame)
        except CodecError as exc:
            self._bad(watcher, "bad_ack", str(exc), request_id)
            return
        try:
            ack = await self.feed.acknowledge(request.step, request.who, request.note, request.until)
        except KeyError:
            self._bad(watcher, "unknown_step", f"ack.step: no step {request.step!r}", request_id)
            return
        self.stats.acks_total += 1
        log.info("hub: %s acknowledged %s: %s", request.who, request.step, request.note)
        watcher.reply(ack_result_frame(ack, request_id), self.stats)

    def _bad(self, watcher: _Watcher, code: str, message: str, request_id: Any) -> None:
        self.stats.bad_frames_total += 1
        log.warning("hub: bad frame from %s: %s", watcher.ws.remote_address, message)
        watcher.reply(error_frame(code, message, request_id), self.stats)
