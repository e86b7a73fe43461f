"""WebsocketSource: a live feed over a websocket, reconnected with backoff, each event counted once.

While the connection is down the source says so (``set_up(False)``: its steps go STALE). It comes
back with exponential backoff and jitter (``min_backoff`` doubling up to ``max_backoff``, each
delay drawn between half and all of it), starting again at ``min_backoff`` once connected. Events
are counted once across reconnects: updates pass the same event-id memory and contact tracker as the
webhook source's, so a server that replays what it sent before a drop, or a vendor that repeats a
conversation's whole state, adds nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from collectors.base import checked_options
from collectors.webhook.memory import ExpiringSet
from collectors.webhook.source import EVENT_IDS_FOR, REMEMBERED_MAX
from collectors.webhook.tracker import ClockFor, ContactTracker, step_clocks
from collectors.websocket.genesys import GenesysCloudAdapter
from collectors.websocket.link import Handled, Link, LinkError
from collectors.websocket.native import NativeStreamAdapter
from collectors.websocket.options import WebsocketOptions, parse_options
from cxmon.customers import DIRECTORY, CustomerKeys, Directory
from cxmon.events import ContactEvent, EventKind

if TYPE_CHECKING:
    from collectors.base import Sink
    from cxmon.config import CollectorConfig, Config

log = logging.getLogger(__name__)


class StreamAdapter(Protocol):
    """What a websocket adapter does."""

    name: str

    async def open(self, http: aiohttp.ClientSession) -> Link:
        """Prepare a connection (tokens, channels) and say where to connect."""

    def handle(self, message: str | bytes) -> Handled:
        """Read one message."""


def backoff(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """The delay before reconnection attempt ``attempt`` (0-based): exponential, capped, jittered."""
    cap = min(high, low * (2.0 ** min(attempt, 30)))
    return cap / 2 + rng.random() * cap / 2


class WebsocketSource:
    """One websocket feed as a cxmon source."""

    type = "websocket"

    def __init__(
        self,
        name: str,
        options: WebsocketOptions,
        *,
        region: str | None = None,
        clock: Callable[[], float] = time.time,
        directory: Directory | None = None,
        rng: random.Random | None = None,
        clock_for: ClockFor | None = None,
    ) -> None:
        """Create the source.

        Args:
            name: collector name.
            options: validated options.
            region: default region of phone numbers when the options do not name one.
            clock: wall time (event ids' memory, channel renewal).
            directory: where customer aliases are learned (default: the process's).
            rng: the jitter's random numbers.
            clock_for: each contact's step calendar and next-reply target (business-time clocks).
        """
        self.name = name
        self.options = options
        keys = CustomerKeys(region=options.region or region, system=name, directory=directory or DIRECTORY)
        self.adapter: StreamAdapter = (
            GenesysCloudAdapter(name, options, keys, clock)
            if options.adapter == "genesys_cloud"
            else NativeStreamAdapter(name, options, keys)
        )
        self.clock = clock
        self.rng = rng or random.Random()
        self.tracker = ContactTracker(name, clock_for=clock_for)
        self._event_ids = ExpiringSet(REMEMBERED_MAX)
        self.counts: Counter[str] = Counter()
        """connects, disconnects, messages, events, duplicates, unknown, malformed, heartbeats."""
        self.delays: list[float] = []
        """The backoff delays waited so far (most recent last; the last 100)."""

    @classmethod
    def validate(cls, options: dict[str, Any], path: str) -> list[str]:
        """Return every problem with a websocket ``[[collectors]]`` table, each with its key path."""
        return parse_options(options, path)[1]

    @classmethod
    def from_config(cls, collector: CollectorConfig, config: Config) -> WebsocketSource:
        """Build the source a validated ``[[collectors]]`` table describes.

        Raises:
            ConfigError: the options are invalid.
        """
        options = checked_options(parse_options, collector, config)
        return cls(collector.name, options, region=config.customer_region, clock_for=step_clocks(config))

    async def run(self, sink: Sink) -> None:
        """Connect, read, and reconnect until cancelled."""
        attempt = 0
        sink.set_up(False)
        async with aiohttp.ClientSession(trust_env=self.options.proxy) as http:
            while True:
                where = self.options.url or self.adapter.name
                try:
                    link = await self.adapter.open(http)
                    where = link.url
                    async with connect(
                        link.url,
                        additional_headers=link.headers,
                        open_timeout=10,
                        ping_interval=20,
                        ping_timeout=20,
                        proxy=True if self.options.proxy else None,
                    ) as ws:
                        self.counts["connects"] += 1
                        attempt = 0
                        sink.set_up(True)
                        await self._read(ws, link, sink)
                        if (
                            ws.close_code is not None
                        ):  # the server closed (a clean close ends the loop quietly)
                            log.info(
                                "%s: %s closed the connection: code %s%s",
                                self.name,
                                link.url,
                                ws.close_code,
                                f" ({ws.close_reason})" if ws.close_reason else "",
                            )
                except asyncio.CancelledError:
                    sink.set_up(False)
                    raise
                except (OSError, TimeoutError, WebSocketException, LinkError) as exc:
                    sink.error(where, f"connection: {exc!r}"[:300])
                sink.set_up(False)
                self.counts["disconnects"] += 1
                delay = backoff(attempt, self.options.min_backoff, self.options.max_backoff, self.rng)
                self.delays = [*self.delays[-99:], delay]
                attempt += 1
                await asyncio.sleep(delay)

    async def _read(self, ws: ClientConnection, link: Link, sink: Sink) -> None:
        """Read until the server closes, asks for a reconnect, or the link is due for renewal."""
        timeout = None if link.renew_at is None else max(0.0, link.renew_at - self.clock())
        number = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                async for message in ws:
                    self.counts["messages"] += 1
                    number += 1
                    try:
                        handled = self.adapter.handle(message)
                    except (ValueError, TypeError) as exc:
                        self.counts["malformed"] += 1
                        # By its number since this connection opened: a feed's URL names no message.
                        where = f"{link.url} message {number} of connection {self.counts['connects']}"
                        sink.error(where, str(exc)[:300])
                        continue
                    self.counts["unknown"] += handled.unknown
                    if handled.reconnect:
                        return
                    events = self.take(handled)
                    if handled.heartbeat:
                        self.counts["heartbeats"] += 1
                        events.append(ContactEvent(self.clock(), EventKind.HEARTBEAT, "", "", "", self.name))
                    if events:
                        await sink.emit(events)
        self.counts["renewals"] += int(link.renew_at is not None and self.clock() >= link.renew_at)

    def take(self, handled: Handled) -> list[ContactEvent]:
        """The events one message makes: each event id once, each contact's story in order."""
        now = self.clock()
        out = list(handled.events)
        for u in handled.updates:
            if self._event_ids.seen(u.event_id, now):
                self.counts["duplicates"] += 1
                continue
            self._event_ids.add(u.event_id, now + EVENT_IDS_FOR, now)
            out.extend(self.tracker.apply(u))
        self.counts["events"] += len(out)
        return out
