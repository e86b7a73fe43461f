"""A loopback Genesys Cloud that speaks the documented Notifications API (the real one cannot be
reached from here): aiohttp for the REST part, websockets for the channel's socket.

Written from Genesys Cloud's documentation: ``POST /oauth/token`` (client credentials, HTTP Basic),
``POST /api/v2/notifications/channels`` → ``{"connectUri", "id", "expires"}``, ``PUT
/api/v2/notifications/channels/{id}/subscriptions`` with ``[{"id": topic}]``; on the socket,
``{"topicName", "version", "eventBody", "metadata"}`` messages, ``channel.metadata`` heartbeats and
``v2.system.socket_closing``. Conversation bodies follow the queue conversation topic's shape
(participants with ``purpose``, ``queueId``, ``connectedTime``, ``endTime``, ``address`` and their
media lists); observation bodies ``{"group": {"queueId", "mediaType"}, "data": [{"metric",
"qualifier", "stats": {"count"}}]}``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from typing import Any

import orjson
from aiohttp import web
from websockets.asyncio.server import Server, ServerConnection, serve

from tests.collectors.webhook.payloads import iso

CLIENT_ID, CLIENT_SECRET = "cxmon-client", "cxmon-client-secret"


class FakeGenesys:
    """The REST API and the notification socket, on 127.0.0.1."""

    def __init__(self, channel_lifetime: float = 86400.0) -> None:
        self.channel_lifetime = channel_lifetime
        self.tokens: list[str] = []
        self.channels: dict[str, list[str]] = {}
        """channel id → subscribed topics."""
        self.sockets: set[ServerConnection] = set()
        self.connections = 0
        self.ws_port = 0
        self.api = ""
        self._runner: web.AppRunner | None = None
        self._ws: Server | None = None
        self.refuse_tokens = False

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/oauth/token", self._token)
        app.router.add_post("/api/v2/notifications/channels", self._channel)
        app.router.add_put("/api/v2/notifications/channels/{cid}/subscriptions", self._subscribe)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.api = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        await self.start_socket()

    async def start_socket(self) -> None:
        """(Re)start the notification socket on its port (the same one after a kill)."""
        self._ws = await serve(self._socket, "127.0.0.1", self.ws_port)
        self.ws_port = next(iter(self._ws.sockets)).getsockname()[1]

    async def kill_socket(self) -> None:
        """Stop the socket server and drop every connection."""
        assert self._ws is not None
        self._ws.close()
        await self._ws.wait_closed()
        self.sockets.clear()

    async def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
            with contextlib.suppress(Exception):
                await self._ws.wait_closed()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ REST

    async def _token(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        form = await request.post()
        if self.refuse_tokens or request.headers.get("Authorization") != expected:
            return web.json_response({"error": "invalid_client"}, status=401)
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        token = f"token-{len(self.tokens) + 1}"
        self.tokens.append(token)
        return web.json_response({"access_token": token, "token_type": "bearer", "expires_in": 86399})

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "").removeprefix("Bearer ") in self.tokens

    async def _channel(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"message": "unauthorized"}, status=401)
        cid = f"streaming-0-{len(self.channels) + 1}"
        self.channels[cid] = []
        return web.json_response(
            {
                "connectUri": f"ws://127.0.0.1:{self.ws_port}/channels/{cid}",
                "id": cid,
                "expires": iso(time.time() + self.channel_lifetime, millis=True),
            }
        )

    async def _subscribe(self, request: web.Request) -> web.Response:
        cid = request.match_info["cid"]
        if not self._authorized(request) or cid not in self.channels:
            return web.json_response({"message": "no such channel"}, status=404)
        topics = [t["id"] for t in await request.json()]
        self.channels[cid] = topics
        return web.json_response({"entities": [{"id": t} for t in topics]})

    # ------------------------------------------------------------------ the socket

    async def _socket(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else ""
        cid = path.rsplit("/", 1)[-1]
        if cid not in self.channels:
            await ws.close(4004, "no such channel")
            return
        self.connections += 1
        self.sockets.add(ws)
        try:
            await ws.wait_closed()
        finally:
            self.sockets.discard(ws)

    async def send(self, topic: str, body: dict[str, Any]) -> None:
        """Send a notification to every connected socket."""
        message = orjson.dumps(
            {"topicName": topic, "version": "2", "eventBody": body, "metadata": {}}
        ).decode()
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.send(message)

    async def heartbeat(self) -> None:
        await self.send("channel.metadata", {"message": "WebSocket Heartbeat"})

    async def socket_closing(self) -> None:
        await self.send("v2.system.socket_closing", {"message": "the socket is closing soon"})


def conversation(
    cid: str,
    qid: str,
    entered: float,
    *,
    agent_at: float | None = None,
    agent_end: float | None = None,
    left: float | None = None,
) -> dict[str, Any]:
    """A queue conversation event body: a voice call that entered ``qid`` at ``entered``."""
    calls = [{"state": "connected", "direction": "inbound", "held": False}]
    parts: list[dict[str, Any]] = [
        {
            "id": "p-cust",
            "purpose": "customer",
            "address": "tel:+14158675310",
            "ani": "tel:+14158675310",
            "connectedTime": iso(entered - 5, millis=True),
            "calls": calls,
        },
        {
            "id": "p-acd",
            "purpose": "acd",
            "queueId": qid,
            "connectedTime": iso(entered, millis=True),
            "calls": calls,
            **({"endTime": iso(left, millis=True)} if left is not None else {}),
        },
    ]
    if agent_at is not None:
        agent: dict[str, Any] = {
            "id": "p-agent",
            "purpose": "agent",
            "userId": "u-1",
            "queueId": qid,
            "connectedTime": iso(agent_at, millis=True),
            "calls": calls,
        }
        if agent_end is not None:
            agent["endTime"] = iso(agent_end, millis=True)
        parts.append(agent)
    return {"id": cid, "participants": parts}


def observation(qid: str, waiting: int, on_queue_idle: int, on_queue_busy: int) -> dict[str, Any]:
    """A queue observation event body."""
    return {
        "group": {"queueId": qid, "mediaType": "voice"},
        "data": [
            {"metric": "oWaiting", "stats": {"count": waiting}},
            {"metric": "oInteracting", "stats": {"count": on_queue_busy}},
            {"metric": "oOnQueueUsers", "qualifier": "IDLE", "stats": {"count": on_queue_idle}},
            {"metric": "oOnQueueUsers", "qualifier": "INTERACTING", "stats": {"count": on_queue_busy}},
        ],
    }


async def wait_for(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
