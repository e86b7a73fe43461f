"""WebhookSource: a vendor's signed HTTP callbacks, checked at the door and queued for the engine.

The HTTP server (aiohttp, ``[http] listen``) mounts :meth:`WebhookSource.http_routes`. A request is
taken only when it is a POST of the adapter's content type, no larger than ``max_body``, signed with
the configured secret, stamped within ``tolerance`` of the clock, not a replay of a delivery already
taken, and readable; anything else is answered with its 4xx and a short reason, counted (the
source's ``rejected`` counter and the engine's error count for the collector), and changes no
figure. A request that passes is put on a bounded queue and answered at once; the queue's consumer
(:meth:`run`) turns it into events. A full queue answers 503 with ``Retry-After`` instead of holding
the vendor up. Vendors retry: an event id already taken is taken once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from collectors.base import checked_options
from collectors.webhook.adapters import ADAPTERS
from collectors.webhook.memory import ExpiringSet
from collectors.webhook.model import AdapterOptions, Delivery, Parsed, Rejected, Update
from collectors.webhook.options import WebhookOptions, parse_options
from collectors.webhook.tracker import ClockFor, ContactTracker, step_clocks
from cxmon.customers import DIRECTORY, CustomerKeys, Directory, parse_mapping
from cxmon.events import ContactEvent, EventKind

if TYPE_CHECKING:
    from collectors.base import Sink
    from cxmon.config import CollectorConfig, Config

log = logging.getLogger(__name__)

BATCH = 500
"""Deliveries taken off the queue per emit when it has backed up."""
REMEMBERED_MAX = 500_000
"""Delivery and event ids remembered at most (each for its window)."""
EVENT_IDS_FOR = 86400.0
"""Seconds an event id is remembered for duplicate deliveries (vendors retry for hours)."""
RETRY_AFTER = "1"


class WebhookSource:
    """One vendor's webhook endpoint as a cxmon source."""

    type = "webhook"

    def __init__(
        self,
        name: str,
        options: WebhookOptions,
        *,
        region: str | None = None,
        clock: Callable[[], float] = time.time,
        directory: Directory | None = None,
        clock_for: ClockFor | None = None,
        max_skew: float = 300.0,
    ) -> None:
        """Create the source.

        Args:
            name: collector name (events' ``source``, contact id prefix, default path).
            options: validated options.
            region: default region for phone numbers when the options do not name one.
            clock: the time signed timestamps are checked against.
            directory: where customer aliases are learned (default: the process's).
            clock_for: each contact's step calendar and next-reply target (business-time clocks).
            max_skew: how far ahead of ``clock`` an event may be stamped (``monitor.max_clock_skew``:
                the engine drops one stamped further, so the door refuses it rather than answer 200).
        """
        self.name = name
        self.max_skew = max_skew
        self.options = options
        self.path = options.path or f"/webhooks/{name}"
        region = options.region or region
        mapping = dict(options.customers)
        if region and region != options.region and mapping:
            problems: list[str] = []
            mapping = parse_mapping(dict(options.customers), region, "customers", problems)
        keys = CustomerKeys(
            region=region,
            system="" if options.adapter == "native" else name,
            mapping=mapping,
            directory=directory or DIRECTORY,
        )
        self.adapter = ADAPTERS[options.adapter](
            AdapterOptions(
                source=name,
                secret=options.secret.encode(),
                keys=keys,
                queues=options.queues,
                channels=options.channels,
                channel=options.channel,
                feedback_channel=options.feedback_channel,
                header=options.header,
                public_url=options.public_url,
            )
        )
        self.clock = clock
        self.tracker = ContactTracker(name, options.contacts, clock_for)
        self.rejected: Counter[str] = Counter()
        """Requests refused, by reason (unsigned, bad_signature, stale_timestamp, replayed,
        too_large, wrong_method, wrong_content_type, malformed, queue_full, not_running)."""
        self.counts: Counter[str] = Counter()
        """accepted (requests), events (made), duplicates (event ids seen before), unknown (vendor
        event types not mapped), stale (status changes older than one applied)."""
        self._queue: asyncio.Queue[list[Update]] = asyncio.Queue(maxsize=options.queue_size)
        self._deliveries = ExpiringSet(REMEMBERED_MAX)
        self._event_ids = ExpiringSet(REMEMBERED_MAX)
        self._sink: Sink | None = None

    @classmethod
    def validate(cls, options: dict[str, Any], path: str) -> list[str]:
        """Return every problem with a webhook ``[[collectors]]`` table, each with its key path."""
        return parse_options(options, path)[1]

    @classmethod
    def from_config(cls, collector: CollectorConfig, config: Config) -> WebhookSource:
        """Build the source a validated ``[[collectors]]`` table describes.

        Raises:
            ConfigError: the options are invalid.
        """
        options = checked_options(parse_options, collector, config)
        return cls(
            collector.name,
            options,
            region=config.customer_region,
            clock_for=step_clocks(config),
            max_skew=config.monitor.max_clock_skew,
        )

    # ------------------------------------------------------------------ HTTP

    def http_routes(self) -> list[web.RouteDef]:
        """The routes the daemon's HTTP server mounts: every method on :attr:`path` (others get 405)."""
        return [web.route("*", self.path, self._handle)]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._take(request)
        except Rejected as rej:
            return self._refuse(request, rej)

    async def _take(self, request: web.Request) -> web.StreamResponse:
        opts = self.options
        if request.method != "POST":
            raise Rejected(405, "wrong_method", "use POST")
        if request.content_type not in self.adapter.content_types:
            raise Rejected(
                415, "wrong_content_type", f"expected {', '.join(sorted(self.adapter.content_types))}"
            )
        if request.content_length is not None and request.content_length > opts.max_body:
            raise Rejected(413, "too_large", f"body over {opts.max_body} bytes")
        if request.content_length is not None:
            try:
                body = await request.content.readexactly(request.content_length)
            except (asyncio.IncompleteReadError, ConnectionError):
                raise Rejected(400, "malformed", "body shorter than its Content-Length") from None
        else:  # chunked: read no more than the limit
            buf = bytearray()
            async for chunk in request.content.iter_chunked(64 * 1024):
                buf += chunk
                if len(buf) > opts.max_body:
                    raise Rejected(413, "too_large", f"body over {opts.max_body} bytes")
            body = bytes(buf)
        if self._sink is None:
            raise Rejected(503, "not_running", "not ready")
        delivery = Delivery(body, request.headers, lambda: str(request.url), request.content_type)
        signed = self.adapter.verify(delivery)
        try:
            parsed = self.adapter.parse(delivery)
        except (ValueError, TypeError) as exc:
            raise Rejected(400, "malformed", str(exc)[:200]) from None
        stamp = signed.timestamp if signed.timestamp is not None else parsed.timestamp
        if stamp is None:
            raise Rejected(400, "malformed", "no timestamp")
        now = self.clock()
        if abs(now - stamp) > opts.tolerance:
            raise Rejected(401, "stale_timestamp", f"timestamp outside {opts.tolerance:g} s of now")
        for i, u in enumerate(parsed.updates):
            if u.ts - now > self.max_skew:
                where = u.where or f"event {i + 1} of the delivery"
                raise Rejected(
                    400,
                    "malformed",
                    f"{where}: stamped {u.ts - now:.0f} s ahead of the clock "
                    f"(max_clock_skew {self.max_skew:g} s)",
                )
        # A vendor that signs anew for a retry makes a new delivery (its event ids keep it idempotent);
        # a request sent again as it was is a replay.
        delivery_id = signed.delivery_id or signed.signature or parsed.delivery_id
        if delivery_id and self._deliveries.seen(delivery_id, now):
            raise Rejected(409, "replayed", "delivery already taken")
        if parsed.updates:
            try:
                self._queue.put_nowait(parsed.updates)
            except asyncio.QueueFull:
                raise Rejected(503, "queue_full", "busy, retry later") from None
        if delivery_id:
            # A replay is refused as long as its signed timestamp would still pass.
            self._deliveries.add(delivery_id, max(now, stamp) + opts.tolerance, now)
        self.counts["accepted"] += 1
        self.counts["unknown"] += parsed.unknown
        return self._ok(parsed)

    def _ok(self, parsed: Parsed) -> web.StreamResponse:
        status = self.adapter.success_status
        if status == 204:
            return web.Response(status=204, headers={"Content-Type": "application/json"})
        answer = orjson.dumps({"accepted": len(parsed.updates), "ignored": parsed.unknown})
        return web.Response(body=answer, status=status, content_type="application/json")

    def _refuse(self, request: web.Request, rej: Rejected) -> web.StreamResponse:
        self.rejected[rej.reason] += 1
        if self._sink is not None:
            self._sink.error(f"{self.path} from {request.remote}", f"{rej.status} {rej.reason}: {rej.detail}")
        headers = {}
        if rej.status == 405:
            headers["Allow"] = "POST"
        if rej.status == 503:
            headers["Retry-After"] = RETRY_AFTER
        return web.json_response(
            {"error": rej.reason, "detail": rej.detail}, status=rej.status, headers=headers
        )

    # ------------------------------------------------------------------ the engine side

    async def run(self, sink: Sink) -> None:
        """Take the queued deliveries and emit their events until cancelled.

        Cancelled (the daemon stopping), it refuses new requests (503) and still hands over the
        events of every delivery it has answered 200, before it returns: the vendor will not send
        them again.
        """
        self._sink = sink
        sink.set_up(True)
        beat = asyncio.create_task(self._heartbeat(sink), name=f"{self.name}-heartbeat")
        unsent: list[ContactEvent] = []
        try:
            while True:
                batch = [await self._queue.get()]
                while len(batch) < BATCH:
                    try:
                        batch.append(self._queue.get_nowait())
                    except asyncio.QueueEmpty:
                        break
                unsent = self.take(batch)
                if unsent:
                    await sink.emit(unsent)  # cancelled while it waits for room: not handed over
                unsent = []
        finally:
            self._sink = None
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            left: list[list[Update]] = []
            while not self._queue.empty():
                left.append(self._queue.get_nowait())
            unsent += self.take(left)
            if unsent:
                await sink.emit(unsent)
            sink.set_up(False)

    def take(self, deliveries: list[list[Update]]) -> list[ContactEvent]:
        """Turn queued deliveries into events: each event id once, each contact's story in order."""
        now = self.clock()
        out: list[ContactEvent] = []
        seen, tracker = self._event_ids, self.tracker
        stale_before = tracker.stale
        for updates in deliveries:
            for u in updates:
                if seen.seen(u.event_id, now):
                    self.counts["duplicates"] += 1
                    continue
                seen.add(u.event_id, now + EVENT_IDS_FOR, now)
                out.extend(tracker.apply(u))
        self.counts["stale"] += tracker.stale - stale_before
        self.counts["events"] += len(out)
        self.counts["next_replies"] = tracker.next_replies
        self.counts["next_reply_breaches"] = tracker.next_reply_breaches
        return out

    async def _heartbeat(self, sink: Sink) -> None:
        """A listening endpoint is alive even when the vendor has nothing to say."""
        while True:
            await asyncio.sleep(self.options.heartbeat)
            await sink.emit([ContactEvent(self.clock(), EventKind.HEARTBEAT, "", "", "", self.name)])
