"""Amazon Connect contact events, as an EventBridge API destination delivers them.

The API destination's connection sends a shared secret in a header: ``Authorization: Bearer
<secret>`` by default (for another header name, its value is the secret itself). Keys are read
without regard to case: Amazon's own samples mix ``AgentInfo`` and ``agentInfo``. QUEUED is the
arrival (at the enqueue time), CONNECTED_TO_AGENT the answer, DISCONNECTED after an agent the end of
the call (handle time from the connection), DISCONNECTED without one an abandon.
"""

from __future__ import annotations

from typing import Any

import orjson

from collectors.webhook.model import (
    AdapterOptions,
    Delivery,
    Parsed,
    Rejected,
    Signed,
    Update,
    lower_keys,
    obj,
    optional_time,
    same,
    text_id,
    timestamp,
)

CHANNELS: dict[str, str] = {"voice": "voice", "chat": "chat", "task": "task", "email": "email"}
_DETAIL_TYPE = "amazon connect contact event"


class AmazonConnectAdapter:
    """Contact events (``detail-type: Amazon Connect Contact Event``)."""

    name = "amazon_connect"
    content_types = frozenset({"application/json"})
    success_status = 200

    def __init__(self, options: AdapterOptions) -> None:
        """Create the adapter for one configured webhook."""
        self.o = options
        secret = options.secret.decode()
        self._expected = f"Bearer {secret}" if options.header.lower() == "authorization" else secret

    def verify(self, delivery: Delivery) -> Signed:
        """Check the shared secret in the configured header."""
        value = delivery.headers.get(self.o.header, "")
        if not value:
            raise Rejected(401, "unsigned", f"missing {self.o.header}")
        if not same(value, self._expected):
            raise Rejected(401, "bad_signature", f"{self.o.header} does not match")
        return Signed(None, None, "")

    def parse(self, delivery: Delivery) -> Parsed:
        """Read one EventBridge event (or a list of them)."""
        try:
            loaded = lower_keys(orjson.loads(delivery.body))
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"body: not JSON ({exc})") from None
        items = loaded if isinstance(loaded, list) else [loaded]
        out = Parsed()
        for i, item in enumerate(items):
            where = f"[{i}]" if isinstance(loaded, list) else "body"
            event = obj(item, where)
            event_id = text_id(event.get("id"), f"{where}.id")
            sent = timestamp(event.get("time"), f"{where}.time")
            if out.delivery_id is None:
                out.delivery_id, out.timestamp = event_id, sent
            if str(event.get("detail-type", "")).lower() != _DETAIL_TYPE:
                out.unknown += 1
                continue
            update = self._contact(event_id, sent, obj(event.get("detail"), f"{where}.detail"), where)
            if update is None:
                out.unknown += 1
            else:
                out.updates.append(update)
        return out

    def _contact(self, event_id: str, sent: float, d: dict[str, Any], where: str) -> Update | None:
        kind = str(d.get("eventtype", "")).upper()
        if kind not in ("QUEUED", "CONNECTED_TO_AGENT", "DISCONNECTED"):
            return None
        cid = text_id(d.get("contactid"), f"{where}.detail.contactId")
        q: dict[str, Any] = d["queueinfo"] if isinstance(d.get("queueinfo"), dict) else {}
        agent: dict[str, Any] = d["agentinfo"] if isinstance(d.get("agentinfo"), dict) else {}
        enqueued = optional_time(q.get("enqueuetimestamp"), f"{where}.detail.queueInfo.enqueueTimestamp")
        connected = optional_time(
            agent.get("connectedtoagenttimestamp"), f"{where}.detail.agentInfo.connectedToAgentTimestamp"
        )
        arn = q.get("queuearn")
        if arn is not None and not isinstance(arn, str):
            raise ValueError(f"{where}.detail.queueInfo.queueArn: expected a string, got {arn!r}"[:200])
        queue = ""
        if isinstance(arn, str) and arn:
            queue = (
                self.o.queues.get(arn) or self.o.queues.get(arn.rsplit("/", 1)[-1]) or arn.rsplit("/", 1)[-1]
            )
        raw_channel = str(d.get("channel", "")).lower()
        channel = self.o.channels.get(raw_channel) or CHANNELS.get(raw_channel) or self.o.channel or "voice"
        endpoint: dict[str, Any] = (
            d["customerendpoint"] if isinstance(d.get("customerendpoint"), dict) else {}
        )
        address = endpoint.get("address")
        customer = self.o.keys.key(
            phone=address if endpoint.get("type", "TELEPHONE_NUMBER") == "TELEPHONE_NUMBER" else None,
            email=address if endpoint.get("type") == "EMAIL_ADDRESS" else None,
        )
        base: dict[str, Any] = {
            "contact": f"{self.o.source}:{cid}",
            "channel": channel,
            "queue": queue,
            "customer": customer,
        }
        if kind == "QUEUED":
            if enqueued is None and not q:
                return None
            return Update(event_id, "open", enqueued if enqueued is not None else sent, **base)
        if kind == "CONNECTED_TO_AGENT":
            if not q:
                return None  # connected without a queue: an outbound or direct call, not a queue's contact
            return Update(
                event_id, "reply", connected if connected is not None else sent, opened_at=enqueued, **base
            )
        if not q:
            return None
        ended = optional_time(d.get("disconnecttimestamp"), f"{where}.detail.disconnectTimestamp") or sent
        if connected is not None:
            return Update(
                event_id,
                "status",
                ended,
                opened_at=enqueued,
                answered_at=connected,
                status="resolved",
                duration=max(0.0, ended - connected),
                **base,
            )
        return Update(event_id, "abandon", ended, opened_at=enqueued, reason="hangup", **base)
