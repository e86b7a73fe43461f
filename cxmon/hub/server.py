"""Hub server: one websocket endpoint fanning the engine's snapshots out to every watcher.

Each tick's delta is encoded and deflated once; the same bytes go to every watcher (see
:mod:`cxmon.hub.deflate`). The hub keeps the last ``queue_limit`` deltas in one shared log, and each
watcher's writer task walks that log from the version the watcher holds: a watcher costs the hub a
version number and a socket, whatever it does. One that falls further behind than the log reaches
is resynced from the latest full snapshot (websockets ``docs/topics/broadcast.rst``), built at most
once per version and without holding up the loop (:mod:`cxmon.hub.full_frame`), so a stalled
watcher costs at most one socket's write buffer and holds no one up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.http11 import Request, Response

from cxmon.config import Config
from cxmon.events import ContactEvent
from cxmon.hub.auth import Decision, authorize, bearer
from cxmon.hub.codec import CodecError, loads
from cxmon.hub.deflate import WINDOW_BITS, Deflated, SharedDeflate, SharedDeflateFactory
from cxmon.hub.full_frame import FullFrames
from cxmon.hub.protocol import (
    ACK,
    SUBPROTOCOL,
    ack_result_frame,
    customers_result_frame,
    delta_frame,
    error_frame,
    hello_frame,
    parse_ack,
    parse_customers,
    parse_path,
    path_result_frame,
    pong_frame,
)
from cxmon.snapshot import Ack, Snapshot

log = logging.getLogger(__name__)

QUEUE_LIMIT = 32
"""Deltas the hub keeps: how far a watcher may fall behind before it is resynced from a full snapshot."""
CONTROL_LIMIT = 64
"""Replies (pong, error, ack_result, customer answers) waiting for one watcher; more are dropped."""
DELTA_LEVEL = 6
"""zlib level of a delta's shared deflated copy (made once per tick, whatever the watchers)."""
REPLY_LEVEL = 6
"""zlib level of replies and the hello (one watcher's, or one role's, each)."""
COMPRESSION_LEVEL = 1
"""zlib level a connection uses for a frame without a shared copy (see :mod:`cxmon.hub.deflate`)."""
MAX_MESSAGE = 64 * 1024
"""Largest frame a watcher may send (acks and pings are a few hundred bytes)."""
FRAME_KINDS = ("hello", "snapshot", "delta", "reply")
"""What the hub sends, as counted in :class:`HubStats`."""


class Publisher(Protocol):
    """What the hub serves: the Engine, or any other feed of snapshots."""

    config: Config

    @property
    def latest(self) -> Snapshot: ...

    def subscribe(self) -> AsyncIterable[Snapshot]: ...

    async def acknowledge(self, step: str, who: str, note: str, until: float | None = None) -> Ack: ...

    async def customer_leaders(self, limit: int = 20) -> list[tuple[str, int]]: ...

    async def customer_path(self, customer_id: str) -> list[ContactEvent]: ...


@dataclass(slots=True)
class HubStats:
    """Running counts, for ``/metrics`` (:mod:`cxmon.hub.metrics`), logs, tests and the benchmark."""

    connections_total: int = 0
    refused_total: int = 0
    """Handshakes refused: no or an unknown token, or not loopback without tokens configured."""
    bad_frames_total: int = 0
    resyncs_total: int = 0
    """Full snapshots sent after the first: asked for, or after falling behind."""
    lagging_total: int = 0
    """Resyncs because the watcher fell further behind than the hub keeps deltas."""
    requested_total: int = 0
    """Resyncs a watcher asked for (a delta did not fit what it held)."""
    deltas_total: int = 0
    """Deltas encoded (once per tick, for every watcher)."""
    acks_total: int = 0
    acks_refused_total: int = 0
    """Acknowledgements refused to a watcher holding the viewer token."""
    queries_total: int = 0
    """Customer questions answered (strikes list, one customer's path)."""
    replies_dropped_total: int = 0
    frames_sent: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FRAME_KINDS, 0))
    """Frames sent, by kind."""
    bytes_sent: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FRAME_KINDS, 0))
    """Payload bytes sent, by kind, after compression where the frame went compressed."""


class _Watcher:
    """One connected watcher: its role, the version it holds, and the replies queued for it."""

    __slots__ = ("control", "idle", "resync", "role", "shared", "version", "wake", "ws")

    def __init__(self, ws: ServerConnection, role: str) -> None:
        self.ws = ws
        self.role = role
        self.version = -1
        """Version of the snapshot the watcher holds (after the frames already sent)."""
        self.control: deque[bytes] = deque()
        self.resync = True
        self.wake = asyncio.Event()
        self.idle = False
        """Its writer waits for work (no send of its own in progress)."""
        self.shared = any(
            isinstance(ext, SharedDeflate) and ext.local_max_window_bits >= WINDOW_BITS
            for ext in ws.protocol.extensions
        )
        """The connection takes shared deflated copies as they are."""

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
        shared_deflate: bool = True,
    ) -> None:
        """Build the hub; nothing listens until :meth:`start`.

        Args:
            feed: where snapshots come from and acknowledgements go.
            host: address to bind (127.0.0.1 unless configured otherwise).
            port: port to bind (0: any free port, see :attr:`port`).
            viewer_token: bearer token that lets a watcher see.
            ack_token: bearer token that lets a watcher see and acknowledge.
            queue_limit: deltas kept; a watcher further behind is resynced.
            ping_interval: seconds between websocket keepalive pings (None: none).
            shared_deflate: deflate each frame once for every watcher (see :mod:`cxmon.hub.deflate`);
                False compresses on each connection, with context takeover (the benchmark's peer).
        """
        self.feed = feed
        self.shared_deflate = shared_deflate
        self.host = host
        self.port = port
        self.viewer_token = viewer_token
        self.ack_token = ack_token
        self.queue_limit = queue_limit
        self.ping_interval = ping_interval
        self.stats = HubStats()
        self.watchers: set[_Watcher] = set()
        self.full = FullFrames()
        """The latest snapshot as a full frame, built once per version for whoever needs it."""
        self._latest: Snapshot = feed.latest
        self._log: dict[int, tuple[int, Deflated]] = {}
        """Base version → (version, delta frame): the last ``queue_limit`` deltas."""
        self._bases: deque[int] = deque()
        self._hello: dict[str, Deflated] = {}
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
            compression=None,
            extensions=[self._deflate_factory()],
            subprotocols=[SUBPROTOCOL],
            max_size=MAX_MESSAGE,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_interval,
            close_timeout=2.0,
        )
        sockets = list(self._server.sockets)
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._pump = asyncio.create_task(self._follow(), name="hub-pump")

    def _deflate_factory(self) -> ServerPerMessageDeflateFactory:
        settings = {"memLevel": 5, "level": COMPRESSION_LEVEL}
        if self.shared_deflate:
            return SharedDeflateFactory(compress_settings=settings)
        return ServerPerMessageDeflateFactory(
            server_max_window_bits=12, client_max_window_bits=12, compress_settings=settings
        )

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
        await self.full.aclose()

    async def __aenter__(self) -> Hub:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ fan-out

    async def _follow(self) -> None:
        """Encode one delta per new snapshot; every watcher's writer takes the same bytes."""
        async for snap in self.feed.subscribe():
            self.publish(snap)

    @property
    def version(self) -> int:
        """Version of the latest snapshot."""
        return self._latest.version

    @property
    def backlog(self) -> int:
        """Deltas kept for watchers that are behind (at most ``queue_limit``)."""
        return len(self._log)

    def lagging(self) -> int:
        """Watchers further behind than the kept deltas reach (each gets a full snapshot when it can)."""
        latest = self._latest.version
        return sum(
            1 for w in self.watchers if w.version >= 0 and w.version != latest and w.version not in self._log
        )

    def publish(self, snap: Snapshot) -> None:
        """Make ``snap`` the latest, keep its delta in the shared log and wake every watcher."""
        prev = self._latest
        if snap is prev or snap.version == prev.version:
            return
        self._latest = snap
        if not self.watchers:
            # Nobody to send it to; a watcher that connects starts from a full snapshot.
            self._log.clear()
            self._bases.clear()
            return
        frame = Deflated.of(delta_frame(prev, snap), DELTA_LEVEL)
        self.stats.deltas_total += 1
        self._log[prev.version] = (snap.version, frame)
        self._bases.append(prev.version)
        while len(self._bases) > self.queue_limit:
            self._log.pop(self._bases.popleft(), None)
        # Watchers that are up to date, with nothing else to send and room in their socket's buffer,
        # are written to here and now, as websockets' broadcast() does; the others' writers take the
        # delta from the log when they get to it.
        ready: list[_Watcher] = []
        for watcher in self.watchers:
            transport = watcher.ws.transport
            if (
                watcher.idle
                and watcher.version == prev.version
                and not watcher.wake.is_set()
                and transport is not None
                and transport.get_write_buffer_size() <= watcher.ws.write_limit_high
            ):
                ready.append(watcher)
            else:
                watcher.wake.set()
        if ready:
            broadcast([w.ws for w in ready], frame, text=True)
            sent = self.stats.frames_sent
            for watcher in ready:
                watcher.version = snap.version
                sent["delta"] += 1
                self.stats.bytes_sent["delta"] += (
                    len(frame.deflated or frame) if watcher.shared else len(frame)
                )

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
        watcher = _Watcher(ws, role)
        hello = self._hello.get(role)
        if hello is None:
            hello = self._hello[role] = Deflated.of(hello_frame(self.feed.config, role), REPLY_LEVEL)
        try:
            await self._send(watcher, hello, "hello")
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

    async def _send(self, watcher: _Watcher, frame: bytes, kind: str) -> None:
        await watcher.ws.send(frame, text=True)
        copy = frame.deflated if isinstance(frame, Deflated) and watcher.shared else None
        self.stats.frames_sent[kind] += 1
        self.stats.bytes_sent[kind] += len(frame) if copy is None else len(copy)

    async def _write(self, watcher: _Watcher) -> None:
        """Send the watcher its replies, then a full snapshot when it needs one, else the deltas it lacks."""
        first = True
        try:
            while True:
                watcher.idle = True
                try:
                    await watcher.wake.wait()
                finally:
                    watcher.idle = False
                watcher.wake.clear()
                while True:
                    if watcher.control:
                        await self._send(watcher, watcher.control.popleft(), "reply")
                    elif watcher.resync:
                        watcher.resync = False
                        if not first:
                            self.stats.resyncs_total += 1
                        first = False
                        # Deltas published while it is built wait in the log for this watcher.
                        version, full = await self.full.frame(lambda: self._latest)
                        watcher.version = version
                        await self._send(watcher, full, "snapshot")
                    elif watcher.version != self._latest.version:
                        entry = self._log.get(watcher.version)
                        if entry is None:
                            self.stats.lagging_total += 1
                            watcher.resync = True
                            continue
                        watcher.version, delta = entry
                        await self._send(watcher, delta, "delta")
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
            self.stats.requested_total += 1
            watcher.resync = True
            watcher.wake.set()
        elif kind == "ack":
            await self._acknowledge(watcher, frame, request_id)
        elif kind in ("customers", "path"):
            await self._answer(watcher, kind, frame, request_id)
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
        except ValueError as exc:
            self._bad(watcher, "bad_ack", f"ack.until: {exc}", request_id)
            return
        self.stats.acks_total += 1
        log.info("hub: %s acknowledged %s: %s", request.who, request.step, request.note)
        watcher.reply(ack_result_frame(ack, request_id), self.stats)

    async def _answer(self, watcher: _Watcher, kind: str, frame: dict[str, Any], request_id: Any) -> None:
        """The read-only questions any watcher may ask: the strikes list, one customer's path."""
        try:
            if kind == "customers":
                limit = parse_customers(frame)
                leaders = await self.feed.customer_leaders(limit)
                reply = customers_result_frame(leaders, request_id)
            else:
                customer = parse_path(frame)
                events = await self.feed.customer_path(customer)
                reply = path_result_frame(customer, events, request_id)
        except CodecError as exc:
            self._bad(watcher, "bad_request", str(exc), request_id)
            return
        self.stats.queries_total += 1
        watcher.reply(Deflated.of(reply, REPLY_LEVEL), self.stats)

    def _bad(self, watcher: _Watcher, code: str, message: str, request_id: Any) -> None:
        self.stats.bad_frames_total += 1
        log.warning("hub: bad frame from %s: %s", watcher.ws.remote_address, message)
        watcher.reply(error_frame(code, message, request_id), self.stats)
