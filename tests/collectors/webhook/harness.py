"""A loopback HTTP server for webhook sources, a sink that records, and the vendors' signatures.

The signatures are computed here from each vendor's published recipe, independently of the
adapters' own code, so a test holds the adapter to the recipe rather than to itself.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from collectors.base import Offset
from collectors.webhook import WebhookSource
from collectors.webhook.options import parse_options
from cxmon.customers import Directory
from cxmon.events import ContactEvent, EventKind
from cxmon.rows import Row, decode_rows

SECRET = "s3cret-for-tests"


class RecordingSink:
    """A Sink that keeps what it is given (the engine's side, for tests of one source)."""

    def __init__(self) -> None:
        self.events: list[ContactEvent] = []
        self.errors: list[tuple[str, str]] = []
        self.up = False
        self.gate: asyncio.Event | None = None
        """When set to an unset Event, emit waits on it (an engine that is busy)."""

    async def emit(self, events: Sequence[ContactEvent], offset: Offset | None = None) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.events.extend(e for e in events if e.kind is not EventKind.HEARTBEAT)

    async def emit_rows(self, rows: Sequence[Row], offset: Offset | None, encoded: bytes) -> None:
        await self.emit(decode_rows(rows), offset)

    def error(self, where: str, msg: str) -> None:
        self.errors.append((where, msg))

    def set_up(self, up: bool) -> None:
        self.up = up

    async def load_offset(self) -> Offset | None:
        return None

    def kinds(self) -> list[str]:
        return [e.kind.value for e in self.events]


def make_source(adapter: str, name: str | None = None, **options: Any) -> WebhookSource:
    """A webhook source with ``options`` validated as a config table would be."""
    table = {"adapter": adapter, "secret": SECRET, **options}
    parsed, problems = parse_options(table, "collectors[0]")
    assert parsed is not None, problems
    # Each test stitches customers in a directory of its own.
    return WebhookSource(name or adapter, parsed, directory=Directory())


@asynccontextmanager
async def serving(
    *sources: WebhookSource, run: bool = True
) -> AsyncIterator[tuple[str, list[RecordingSink]]]:
    """Mount the sources' routes on an aiohttp app on 127.0.0.1 (port 0); run them with recording sinks."""
    app = web.Application()
    for s in sources:
        app.add_routes(s.http_routes())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    sinks = [RecordingSink() for _ in sources]
    tasks = [asyncio.create_task(s.run(k)) for s, k in zip(sources, sinks, strict=True)] if run else []
    for k in sinks if run else []:

        def is_up(k: RecordingSink = k) -> bool:
            return k.up

        await until(is_up)
    try:
        yield f"http://127.0.0.1:{port}", sinks
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (bounded) until ``cond()`` holds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------------- signing, per vendor recipe


def body_of(payload: Any) -> bytes:
    return orjson.dumps(payload)


def chatwoot_headers(body: bytes, ts: float | None = None, delivery: str | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if ts is None else ts))
    mac = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    h = {
        "Content-Type": "application/json",
        "X-Chatwoot-Signature": f"sha256={mac}",
        "X-Chatwoot-Timestamp": stamp,
    }
    if delivery:
        h["X-Chatwoot-Delivery"] = delivery
    return h


def zendesk_headers(body: bytes, ts: float | None = None) -> dict[str, str]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if ts is None else ts))
    mac = base64.b64encode(hmac.new(SECRET.encode(), stamp.encode() + body, hashlib.sha256).digest()).decode()
    return {
        "Content-Type": "application/json",
        "X-Zendesk-Webhook-Id": "01GK8E6BKWMJZD2T8Y5AXJQMG5",
        "X-Zendesk-Webhook-Signature": mac,
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }


def twilio_request(url: str, params: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    text = url + "".join(k + params[k] for k in sorted(params))
    mac = base64.b64encode(hmac.new(SECRET.encode(), text.encode(), hashlib.sha1).digest()).decode()
    return urlencode(params).encode(), {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": mac,
    }


def connect_headers(header: str = "Authorization") -> dict[str, str]:
    value = f"Bearer {SECRET}" if header == "Authorization" else SECRET
    return {"Content-Type": "application/json", header: value}


def native_headers(body: bytes, ts: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if ts is None else ts))
    mac = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Cxmon-Signature": f"sha256={mac}",
        "X-Cxmon-Timestamp": stamp,
    }
