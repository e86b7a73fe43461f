"""cxmon's own events over a websocket: the native webhook's JSON (version 1), one message each."""

from __future__ import annotations

import aiohttp

from collectors.webhook.adapters.native import NativeAdapter
from collectors.webhook.model import AdapterOptions, Delivery
from collectors.websocket.link import Handled, Link
from collectors.websocket.options import WebsocketOptions
from cxmon.customers import CustomerKeys


class NativeStreamAdapter:
    """A server that streams native events; the connection itself is authenticated (headers, bearer)."""

    name = "native"

    def __init__(self, source: str, options: WebsocketOptions, keys: CustomerKeys) -> None:
        """Create the adapter for one configured collector."""
        self.o = options
        self._reader = NativeAdapter(
            AdapterOptions(source=source, secret=b"", keys=keys, channel=options.channel)
        )

    async def open(self, http: aiohttp.ClientSession) -> Link:
        """The configured URL, with the configured headers and bearer token."""
        headers = dict(self.o.headers)
        if self.o.bearer:
            headers["Authorization"] = f"Bearer {self.o.bearer}"
        return Link(self.o.url, headers)

    def handle(self, message: str | bytes) -> Handled:
        """Read one message: a native body (one event or a batch).

        Raises:
            ValueError: malformed (the message says where).
        """
        body = message.encode() if isinstance(message, str) else message
        parsed = self._reader.parse(Delivery(body, {}, lambda: self.o.url, "application/json"))
        return Handled(updates=parsed.updates)
