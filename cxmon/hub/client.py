"""Hub client: a watcher of one daemon's hub that implements the dashboard's Feed.

It keeps the daemon's latest snapshot (full snapshot, then deltas), reconnects with exponential
backoff and jitter, and resyncs on reconnect. While it is not connected it publishes the last
snapshot marked stale, every step and series STALE with the reason: nothing on screen passes for
live. The connection's state travels in ``Snapshot.hub`` for the status bar.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from cxmon.config import Config
from cxmon.errors import CxmonError
from cxmon.events import ContactEvent
from cxmon.hub.codec import CodecError, decode, dumps, loads
from cxmon.hub.protocol import (
    PROTOCOL,
    SUBPROTOCOL,
    VIEW,
    apply_delta_frame,
    bare_config,
    config_of,
    decode_leaders,
    decode_path,
    decode_snapshot,
)
from cxmon.snapshot import EMPTY_SNAPSHOT, Ack, HubLink, HubStatus, Snapshot, State

log = logging.getLogger(__name__)

CONNECTING = "connecting"
LIVE = "live"
DISCONNECTED = "disconnected"
MAX_FRAME = 2**28
"""Largest frame accepted from a hub (a full snapshot of thousands of series is a few MB)."""


class HubError(CxmonError):
    """The hub refused a request, or could not be reached."""


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Seconds to wait before reconnect ``attempt`` (0-based): doubling, capped, with jitter.

    The delay is drawn uniformly from the upper half of ``min(maximum, initial * 2**attempt)``, so
    watchers cut off together by a restart do not all come back in the same instant.
    """
    cap = min(maximum, initial * 2 ** min(attempt, 30))
    return rng.uniform(cap / 2, cap)


def stale_view(snap: Snapshot, reason: str, hub: HubStatus) -> Snapshot:
    """``snap`` as it must be shown when it is no longer current: stale, every state and source STALE.

    The sources too: what the daemon last said of them ("up") is not known to hold any more.
    """
    return replace(
        snap,
        stale=True,
        steps=tuple(replace(s, state=State.STALE, reason=reason) for s in snap.steps),
        series=tuple(replace(s, state=State.STALE, reason=reason) for s in snap.series),
        sources=tuple(replace(s, stale=True) for s in snap.sources),
        hub=hub,
    )


class HubClient:
    """A Feed over one hub: ``latest``, ``subscribe()``, ``acknowledge()``."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        initial_delay: float = 0.5,
        max_delay: float = 30.0,
        ping_interval: float | None = 20.0,
        request_timeout: float = 10.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Build a client; nothing connects until :meth:`start`.

        Args:
            url: the hub, ``ws://HOST:PORT``.
            token: bearer token (viewer or ack), when the hub wants one.
            initial_delay: first reconnect delay, seconds (doubling up to ``max_delay``, jittered).
            max_delay: longest reconnect delay, seconds.
            ping_interval: seconds between websocket keepalive pings (None: none).
            request_timeout: how long an acknowledgement may take.
            rng: jitter source (seeded in tests).
            clock: wall clock, for "disconnected since" and when the hub was last heard from.
        """
        self.url = url
        self.token = token
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.ping_interval = ping_interval
        self.request_timeout = request_timeout
        self.rng = rng or random.Random()
        self.clock = clock
        self.config: Config = bare_config(url)
        """The daemon's journey, from its hello (empty until then)."""
        self.role: str | None = None
        self.software: str | None = None
        self.state = CONNECTING
        self.last_error: str | None = None
        self.connects = 0
        """Successful connections (hello received) so far."""
        self.refused: int | None = None
        """HTTP status of the last refused handshake (401, 403), None once connected."""
        self._live: Snapshot = EMPTY_SNAPSHOT
        self._shown: Snapshot = EMPTY_SNAPSHOT
        self._seq = 0
        self._changed = asyncio.Event()
        self._ready = asyncio.Event()
        self._closed = False
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._since = clock()
        self._heard: float | None = None

    # ------------------------------------------------------------------ Feed

    @property
    def latest(self) -> Snapshot:
        """The newest snapshot, marked stale while the hub is out of reach."""
        return self._shown

    async def subscribe(self) -> AsyncIterator[Snapshot]:
        """Yield the latest snapshot, then each newer one (a slow reader skips, never blocks)."""
        seen = -1
        while True:
            if self._seq != seen:
                seen = self._seq
                yield self._shown
                continue
            if self._closed:
                return
            self._changed.clear()
            await self._changed.wait()

    async def acknowledge(self, step: str, who: str, note: str, until: float | None = None) -> Ack:
        """Ask the daemon to store an acknowledgement; every watcher sees it in the next snapshot.

        Raises:
            HubError: not connected, the token may not acknowledge, or the step is unknown.
        """
        reply = await self._request({"type": "ack", "step": step, "who": who, "note": note, "until": until})
        ack: Ack = decode(reply.get("ack"), Ack)
        return ack

    def may_acknowledge(self, step: str) -> bool:
        """Whether this watcher's token may acknowledge (the role the hub's hello gave; True until
        the hello has come: the hub then decides)."""
        return self.role != VIEW

    async def ping(self) -> None:
        """Round-trip a ``ping`` frame to the hub.

        Raises:
            HubError: not connected, or no ``pong`` in time.
        """
        await self._request({"type": "ping"})

    async def customer_leaders(self, limit: int = 20) -> list[tuple[str, int]]:
        """Return the daemon's strikes list: (customer_id, strikes in 24 h), most strikes first.

        Raises:
            HubError: not connected, or the hub did not answer (or not in protocol).
        """
        reply = await self._request({"type": "customers", "limit": limit})
        try:
            return decode_leaders(reply)
        except CodecError as exc:
            raise HubError(f"{self.url}: customers_result: {exc}") from None

    async def customer_path(self, customer_id: str) -> list[ContactEvent]:
        """Return one customer's events over the last 24 h as the daemon stored them, oldest first.

        Raises:
            HubError: not connected, or the hub did not answer (or not in protocol).
        """
        reply = await self._request({"type": "path", "customer": customer_id})
        try:
            return decode_path(reply)
        except CodecError as exc:
            raise HubError(f"{self.url}: path_result: {exc}") from None

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Start connecting (and reconnecting) in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"hub-client {self.url}")

    async def wait_ready(
        self, timeout: float, slow: Callable[[str], None] | None = None, slow_after: float = 1.0
    ) -> None:
        """Wait for the first hello and snapshot.

        Args:
            timeout: seconds to wait in all.
            slow: told once, with why (the last attempt's error), when nothing has arrived after
                ``slow_after`` seconds: a person waiting is told what is going on.
            slow_after: seconds before ``slow`` is told.

        Raises:
            HubError: the hub refused the connection, or nothing arrived within ``timeout``.
        """
        waiter = asyncio.create_task(self._ready.wait())
        try:
            start = time.monotonic()
            deadline = start + timeout
            while not self._ready.is_set():
                if self.refused is not None:
                    raise HubError(f"{self.url}: refused ({self.refused}): {self.last_error}")
                now = time.monotonic()
                left = deadline - now
                if left <= 0:
                    raise HubError(f"{self.url}: no answer within {timeout:g} s ({self.last_error})")
                if slow is not None and now - start >= slow_after:
                    why = self.last_error or "no answer yet"
                    slow(f"{self.url}: {why}; trying again for up to {timeout:g} s in all")
                    slow = None
                await asyncio.wait({waiter}, timeout=min(left, 0.1))
        finally:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter

    async def aclose(self) -> None:
        """Disconnect for good and end every subscription."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._fail_pending("the watcher closed")
        self._changed.set()

    async def __aenter__(self) -> HubClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ connection

    async def _run(self) -> None:
        attempt = 0
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        while not self._closed:
            try:
                async with connect(
                    self.url,
                    additional_headers=headers,
                    subprotocols=[SUBPROTOCOL],
                    compression="deflate",
                    max_size=MAX_FRAME,
                    ping_interval=self.ping_interval,
                    ping_timeout=self.ping_interval,
                    open_timeout=10.0,
                    close_timeout=2.0,
                ) as ws:
                    self._ws = ws
                    await self._session(ws)
                    attempt = 0
                    self.last_error = "the hub closed the connection"
            except InvalidStatus as exc:
                self.refused = exc.response.status_code
                self.last_error = (
                    f"HTTP {exc.response.status_code}: {exc.response.body.decode(errors='replace').strip()}"
                )
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                self.last_error = str(exc) or type(exc).__name__
            except ConnectionClosed as exc:
                attempt = 0
                self.last_error = f"connection lost ({exc})"
            except CodecError as exc:
                self.last_error = f"bad frame from the hub: {exc}"
            finally:
                self._ws = None
            if self._closed:
                break
            self._fail_pending(self.last_error or "disconnected")
            delay = backoff_delay(attempt, self.initial_delay, self.max_delay, self.rng)
            attempt += 1
            self._mark_down(delay)
            log.info("hub %s: %s; retrying in %.1f s", self.url, self.last_error, delay)
            await asyncio.sleep(delay)

    async def _session(self, ws: ClientConnection) -> None:
        hello = loads(await ws.recv())
        if not isinstance(hello, dict) or hello.get("type") != "hello":
            raise CodecError("the first frame is not a hello")
        if hello.get("protocol") != PROTOCOL:
            raise CodecError(f"protocol {hello.get('protocol')!r}; this watcher speaks {PROTOCOL}")
        self.config = config_of(hello.get("journey"), self.url)
        self.role = hello.get("role") if isinstance(hello.get("role"), str) else None
        self.software = str(hello.get("software"))
        self.refused = None
        self.connects += 1
        have_full = False
        async for message in ws:
            frame = loads(message)
            if not isinstance(frame, dict):
                raise CodecError("a frame is not a JSON object")
            kind = frame.get("type")
            if kind == "snapshot":
                have_full = True
                self._went_live(decode_snapshot(frame))
            elif kind == "delta":
                if not have_full:
                    continue
                try:
                    snap = apply_delta_frame(self._live, frame)
                except CodecError as exc:
                    log.warning("hub %s: %s; asking for a full snapshot", self.url, exc)
                    have_full = False
                    await ws.send(dumps({"type": "resync"}), text=True)
                    continue
                self._went_live(snap)
            elif kind in ("ack_result", "customers_result", "path_result", "pong", "error"):
                future = self._pending.pop(frame.get("id"), None)  # type: ignore[arg-type]
                if future is not None and not future.done():
                    future.set_result(frame)
                elif kind == "error":
                    log.warning("hub %s: %s", self.url, frame.get("message"))

    def _went_live(self, snap: Snapshot) -> None:
        self._live = snap
        self._heard = self.clock()
        if self.state != LIVE:
            self.state = LIVE
            self._since = self.clock()
            self.last_error = None
        self._show(replace(snap, hub=HubStatus((HubLink(self.url, LIVE, self._since, heard=self._heard),))))
        self._ready.set()

    def _mark_down(self, retry_in: float) -> None:
        if self.state == LIVE:
            self._since = self.clock()
        self.state = DISCONNECTED
        retry_at = self.clock() + retry_in
        link = HubLink(self.url, DISCONNECTED, self._since, retry_at, self.last_error, heard=self._heard)
        hub = HubStatus((link,))
        reason = f"no contact with the hub at {self.url}: {self.last_error}"
        self._show(stale_view(self._live, reason, hub))

    def _show(self, snap: Snapshot) -> None:
        self._shown = snap
        self._seq += 1
        self._changed.set()

    async def _request(self, frame: dict[str, Any]) -> dict[str, Any]:
        ws = self._ws
        if ws is None or self.state != LIVE:
            raise HubError(f"not connected to {self.url}")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await ws.send(dumps({**frame, "id": request_id}), text=True)
            async with asyncio.timeout(self.request_timeout):
                reply = await future
        except (ConnectionClosed, TimeoutError) as exc:
            raise HubError(f"{self.url}: no answer ({exc or type(exc).__name__})") from None
        finally:
            self._pending.pop(request_id, None)
        if reply.get("type") == "error":
            raise HubError(f"{self.url}: {reply.get('code')}: {reply.get('message')}")
        return reply

    def _fail_pending(self, why: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_result({"type": "error", "code": "disconnected", "message": why})
        self._pending.clear()
