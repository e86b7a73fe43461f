"""Genesys Cloud notifications: OAuth client credentials, a channel, queue topics, heartbeats.

The flow the Notifications API documents: a token from ``POST {login}/oauth/token``
(client credentials), a channel from ``POST {api}/api/v2/notifications/channels`` (its
``connectUri`` and ``expires``), the topics ``v2.routing.queues.{id}.conversations`` and
``v2.analytics.queues.{id}.observations`` subscribed with ``PUT …/channels/{id}/subscriptions``,
then the websocket. ``channel.metadata`` messages are heartbeats; ``v2.system.socket_closing``
means reconnect; a channel lives 24 h, so a new one is made ``renew_before`` its expiry.

Conversation events carry the whole conversation each time, so every one is read into the same
updates (queued, answered, abandoned or ended) and the contact tracker keeps what is new: an event
missed while disconnected is made up by the next one, and nothing is counted twice. Observations
become staffing events: agents on queue (``oOnQueueUsers``, any routing status; else
``oMemberUsers``), available (``oOnQueueUsers`` IDLE; else staffed less ``oInteracting``), and the
contacts waiting (``oWaiting``), which stands for the queue's waiting-now figure.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from collectors.webhook.model import Update, optional_time
from collectors.websocket.link import Handled, Link, LinkError
from collectors.websocket.options import WebsocketOptions
from cxmon.customers import CustomerKeys
from cxmon.events import ContactEvent, EventKind

_MEDIA = (
    ("calls", "voice"),
    ("callbacks", "voice"),
    ("chats", "chat"),
    ("messages", "chat"),
    ("emails", "email"),
)
_CONVERSATIONS = ".conversations"
_OBSERVATIONS = ".observations"


class GenesysCloudAdapter:
    """Queue conversations and observations from Genesys Cloud's notification service."""

    name = "genesys_cloud"

    def __init__(
        self,
        source: str,
        options: WebsocketOptions,
        keys: CustomerKeys,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Create the adapter for one configured collector."""
        self.source = source
        self.o = options
        self.keys = keys
        self.clock = clock
        self._token = ""
        self._token_until = 0.0
        self._channel: tuple[str, str, float] | None = None
        """(channel id, connectUri, expiry) of the channel in use."""
        self.channels_made = 0
        self.observed_waiting: dict[str, int] = {}
        """Queue → oWaiting of the last observation (shown in the source's status)."""

    def topics(self) -> list[str]:
        """The topics subscribed to, two per configured queue."""
        out = []
        for qid in self.o.queues:
            out += [f"v2.routing.queues.{qid}.conversations", f"v2.analytics.queues.{qid}.observations"]
        return out

    async def open(self, http: aiohttp.ClientSession) -> Link:
        """Get a token and a channel (reusing what is still good) and say where to connect.

        Raises:
            LinkError: the API refused or could not be reached.
        """
        now = self.clock()
        if not self._token or now >= self._token_until - 60:
            data = await self._call(
                http,
                "POST",
                f"{self.o.login}/oauth/token",
                basic=(self.o.client_id, self.o.client_secret),
                data={"grant_type": "client_credentials"},
            )
            token = data.get("access_token")
            if not isinstance(token, str) or not token:
                raise LinkError("oauth/token: no access_token in the answer")
            self._token = token
            self._token_until = now + float(data.get("expires_in") or 3600)
        if self._channel is None or now >= self._channel[2] - self.o.renew_before:
            made = await self._call(http, "POST", f"{self.o.api}/api/v2/notifications/channels", json={})
            cid, uri = made.get("id"), made.get("connectUri")
            if not isinstance(cid, str) or not isinstance(uri, str):
                raise LinkError("notifications/channels: no id or connectUri in the answer")
            expires = optional_time(made.get("expires"), "expires") or now + 86400.0
            await self._call(
                http,
                "PUT",
                f"{self.o.api}/api/v2/notifications/channels/{cid}/subscriptions",
                json=[{"id": t} for t in self.topics()],
            )
            self._channel = (cid, uri, expires)
            self.channels_made += 1
        _, uri, expires = self._channel
        return Link(uri, {}, renew_at=expires - self.o.renew_before)

    async def _call(
        self,
        http: aiohttp.ClientSession,
        method: str,
        url: str,
        basic: tuple[str, str] | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        if basic is not None:
            pair = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
            headers = {"Authorization": f"Basic {pair}"}
        else:
            headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with http.request(
                method, url, headers=headers, timeout=aiohttp.ClientTimeout(total=30), **kw
            ) as r:
                body = await r.read()
                if r.status == 401 and basic is None:
                    self._token = ""  # expired or revoked: the next attempt gets a new one
                if r.status >= 400:
                    raise LinkError(f"{method} {url}: HTTP {r.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise LinkError(f"{method} {url}: {exc!r}") from None
        if not body:
            return {}
        try:
            loaded = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise LinkError(f"{method} {url}: the answer is not JSON") from None
        return loaded if isinstance(loaded, dict) else {"items": loaded}

    def handle(self, message: str | bytes) -> Handled:
        """Read one notification.

        Raises:
            ValueError: not a notification (the message says what is wrong).
        """
        try:
            data = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        topic = data.get("topicName")
        body = data.get("eventBody")
        if topic == "channel.metadata":
            return Handled(heartbeat=True)
        if topic == "v2.system.socket_closing":
            return Handled(reconnect=True)
        if not isinstance(topic, str) or not isinstance(body, dict):
            raise ValueError("topicName or eventBody missing")
        if topic.startswith("v2.routing.queues.") and topic.endswith(_CONVERSATIONS):
            qid = topic[len("v2.routing.queues.") : -len(_CONVERSATIONS)]
            return Handled(updates=self._conversation(qid, body))
        if topic.startswith("v2.analytics.queues.") and topic.endswith(_OBSERVATIONS):
            qid = topic[len("v2.analytics.queues.") : -len(_OBSERVATIONS)]
            return Handled(events=self._observation(qid, body))
        return Handled(unknown=1)

    def _conversation(self, qid: str, conv: dict[str, Any]) -> list[Update]:
        cid = conv.get("id")
        if not isinstance(cid, str) or not cid:
            raise ValueError("eventBody.id: missing")
        parts = [p for p in conv.get("participants") or [] if isinstance(p, dict)]
        acd = [p for p in parts if p.get("purpose") == "acd" and p.get("queueId", qid) == qid]
        if not acd:
            return []
        queue_part = acd[0]
        agents = [p for p in parts if p.get("purpose") == "agent" and p.get("connectedTime")]
        customer_part = next((p for p in parts if p.get("purpose") in ("customer", "external")), {})
        channel = self.o.channel or "voice"
        for key, name in _MEDIA:
            if any(isinstance(p.get(key), list) and p.get(key) for p in parts):
                channel = name
                break
        address = str(customer_part.get("address") or customer_part.get("ani") or "")
        for prefix in ("tel:", "sip:", "mailto:"):
            address = address.removeprefix(prefix)
        customer = self.keys.key(email=address) if "@" in address else self.keys.key(phone=address or None)
        contact = f"{self.source}:{cid}"
        base: dict[str, Any] = {
            "contact": contact,
            "channel": channel,
            "queue": self.o.queues.get(qid, qid),
            "customer": customer,
        }
        entered = optional_time(queue_part.get("connectedTime"), "acd.connectedTime")
        if entered is None:
            return []
        out = [Update(f"{contact}:queued", "open", entered, **base)]
        left = optional_time(queue_part.get("endTime"), "acd.endTime")
        if agents:
            agent = min(agents, key=lambda p: str(p.get("connectedTime")))
            took = optional_time(agent.get("connectedTime"), "agent.connectedTime")
            if took is not None:
                out.append(Update(f"{contact}:answered", "reply", took, opened_at=entered, **base))
                ended = optional_time(agent.get("endTime"), "agent.endTime")
                if ended is not None:
                    out.append(
                        Update(
                            f"{contact}:ended",
                            "status",
                            ended,
                            opened_at=entered,
                            answered_at=took,
                            status="resolved",
                            duration=max(0.0, ended - took),
                            **base,
                        )
                    )
        elif left is not None:
            out.append(
                Update(f"{contact}:abandoned", "abandon", left, opened_at=entered, reason="hangup", **base)
            )
        return out

    def _observation(self, qid: str, body: dict[str, Any]) -> list[ContactEvent]:
        items: list[dict[str, Any]] = []
        for d in body.get("data") or []:
            if isinstance(d, dict):
                items += [m for m in d.get("metrics", [d]) if isinstance(m, dict)]
        counts: dict[tuple[str, str], float] = {}
        for m in items:
            stats: dict[str, Any] = m["stats"] if isinstance(m.get("stats"), dict) else {}
            value = stats.get("count")
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                key = (str(m.get("metric")), str(m.get("qualifier") or ""))
                counts[key] = counts.get(key, 0.0) + float(value)

        def total(metric: str) -> float | None:
            values = [v for (name, _), v in counts.items() if name == metric]
            return sum(values) if values else None

        on_queue, members, interacting = total("oOnQueueUsers"), total("oMemberUsers"), total("oInteracting")
        waiting = total("oWaiting")
        staffed = on_queue if on_queue is not None else members
        available = counts.get(("oOnQueueUsers", "IDLE"))
        if available is None and staffed is not None and interacting is not None:
            # No routing-status breakdown: agents not busy with a conversation are free.
            available = max(0.0, staffed - interacting)
        if waiting is not None:
            self.observed_waiting[self.o.queues.get(qid, qid)] = int(waiting)
        if staffed is None and available is None and waiting is None:
            return []
        group: dict[str, Any] = body["group"] if isinstance(body.get("group"), dict) else {}
        media = str(group.get("mediaType") or "")
        channel = {
            "voice": "voice",
            "chat": "chat",
            "message": "chat",
            "email": "email",
            "callback": "voice",
        }.get(media, self.o.channel or "voice")
        return [
            ContactEvent(
                self.clock(),
                EventKind.STAFFING,
                "",
                channel,
                self.o.queues.get(qid, qid),
                self.source,
                agents_staffed=None if staffed is None else int(staffed),
                agents_available=None if available is None else int(available),
                contacts_waiting=None if waiting is None else max(0, int(waiting)),
            )
        ]
