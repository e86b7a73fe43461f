"""Chatwoot webhooks: conversations and messages as contacts, CSAT survey responses as feedback.

Signed as Chatwoot signs them: ``X-Chatwoot-Signature: sha256=<hex>``, the HMAC-SHA256 of
``"{X-Chatwoot-Timestamp}.{body}"`` with the webhook's secret; ``X-Chatwoot-Delivery`` names the
delivery. The inbox is the queue and the inbox's channel type the channel.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson

from collectors.webhook.model import (
    AdapterOptions,
    Delivery,
    Parsed,
    Rejected,
    Signed,
    Update,
    obj,
    optional_id,
    optional_time,
    same,
    text_id,
    timestamp,
)

CHANNELS: dict[str, str] = {
    "Channel::WebWidget": "chat",
    "Channel::Api": "chat",
    "Channel::Email": "email",
    "Channel::Sms": "sms",
    "Channel::TwilioSms": "sms",
    "Channel::Whatsapp": "chat",
    "Channel::Telegram": "social",
    "Channel::Line": "social",
    "Channel::FacebookPage": "social",
    "Channel::Instagram": "social",
    "Channel::TwitterProfile": "social",
}
_STATUS = {"open": "open", "pending": "paused", "snoozed": "paused", "resolved": "resolved"}
_OUTGOING = ("outgoing", 1)


class ChatwootAdapter:
    """Chatwoot's webhook events (``conversation_*``, ``message_*``)."""

    name = "chatwoot"
    content_types = frozenset({"application/json"})
    success_status = 200

    def __init__(self, options: AdapterOptions) -> None:
        """Create the adapter for one configured webhook."""
        self.o = options

    def verify(self, delivery: Delivery) -> Signed:
        """Check ``X-Chatwoot-Signature`` over the timestamp and the body."""
        h = delivery.headers
        signature, stamp = h.get("X-Chatwoot-Signature", ""), h.get("X-Chatwoot-Timestamp", "")
        if not signature or not stamp:
            raise Rejected(401, "unsigned", "missing X-Chatwoot-Signature or X-Chatwoot-Timestamp")
        digest = hmac.new(self.o.secret, stamp.encode() + b"." + delivery.body, hashlib.sha256).hexdigest()
        if not same(signature, "sha256=" + digest):
            raise Rejected(401, "bad_signature", "signature does not match")
        try:
            ts = timestamp(stamp, "X-Chatwoot-Timestamp")
        except ValueError as exc:
            raise Rejected(401, "bad_signature", str(exc)) from None
        return Signed(h.get("X-Chatwoot-Delivery") or None, ts, signature)

    def parse(self, delivery: Delivery) -> Parsed:
        """Read one Chatwoot event."""
        try:
            data = obj(orjson.loads(delivery.body), "body")
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"body: not JSON ({exc})") from None
        event = data.get("event")
        if not isinstance(event, str):
            raise ValueError("event: missing")
        out = Parsed()
        if event in ("conversation_created", "conversation_status_changed", "conversation_updated"):
            out.updates.append(self._conversation(event, data))
        elif event == "message_created" and data.get("content_type") == "input_csat":
            out.updates.append(self._survey(data, None))
        elif event == "message_created":
            update = self._message(data)
            if update is not None:
                out.updates.append(update)
        elif event == "message_updated":
            update = self._csat(data)
            if update is not None:
                out.updates.append(update)
        else:
            out.unknown += 1
        return out

    # ------------------------------------------------------------------ events

    def _where(self, conv: dict[str, Any], where: str) -> tuple[str, str, str, str | None]:
        """(contact id, channel, queue, customer) of a conversation object."""
        cid = text_id(conv.get("id"), f"{where}.id")
        queue = optional_id(conv.get("inbox_id"), f"{where}.inbox_id")
        queue = self.o.queues.get(queue, queue)
        kind = conv.get("channel")
        channel = self.o.channel or "chat"
        if isinstance(kind, str):
            channel = self.o.channels.get(kind) or CHANNELS.get(kind) or channel
        meta = conv.get("meta")
        sender = meta.get("sender") if isinstance(meta, dict) else None
        customer = None
        if isinstance(sender, dict):
            customer = self.o.keys.key(
                phone=sender.get("phone_number"), email=sender.get("email"), contact=sender.get("id")
            )
        return f"{self.o.source}:{cid}", channel, queue, customer

    def _opened(self, conv: dict[str, Any], where: str) -> float | None:
        for name in ("created_at", "timestamp"):
            value = optional_time(conv.get(name), f"{where}.{name}")
            if value is not None:
                return value
        return None

    def _conversation(self, event: str, conv: dict[str, Any]) -> Update:
        cid, channel, queue, customer = self._where(conv, "body")
        opened = self._opened(conv, "body")
        if event == "conversation_created":
            ts = opened
            if ts is None:
                raise ValueError("body.created_at: missing")
            return Update(f"{event}:{cid}", "open", ts, cid, channel, queue, customer, opened_at=ts)
        status = conv.get("status")
        if status not in _STATUS:
            raise ValueError(f"body.status: unknown status {status!r}")
        ts = optional_time(conv.get("updated_at"), "body.updated_at") or opened
        if ts is None:
            raise ValueError("body.updated_at: missing")
        return Update(
            f"{event}:{cid}:{status}:{ts}",
            "status",
            ts,
            cid,
            channel,
            queue,
            customer,
            opened_at=opened,
            status=_STATUS[status],
        )

    def _message(self, msg: dict[str, Any]) -> Update | None:
        conv = obj(msg.get("conversation"), "body.conversation")
        cid, channel, queue, customer = self._where(conv, "body.conversation")
        mid = text_id(msg.get("id"), "body.id")
        ts = timestamp(msg.get("created_at"), "body.created_at")
        sender = msg.get("sender")
        sender_type = sender.get("type") if isinstance(sender, dict) else None
        if msg.get("private") is True:
            return None
        opened = self._opened(conv, "body.conversation")
        if msg.get("message_type") in _OUTGOING and sender_type == "user":
            return Update(f"message:{mid}", "reply", ts, cid, channel, queue, customer, opened_at=opened)
        if msg.get("message_type") in ("incoming", 0):
            return Update(f"message:{mid}", "customer", ts, cid, channel, queue, customer, opened_at=opened)
        return None

    def _csat(self, msg: dict[str, Any]) -> Update | None:
        if msg.get("content_type") != "input_csat":
            return None
        attrs = msg.get("content_attributes")
        submitted = attrs.get("submitted_values") if isinstance(attrs, dict) else None
        response = submitted.get("csat_survey_response") if isinstance(submitted, dict) else None
        if not isinstance(response, dict) or response.get("rating") is None:
            return None
        return self._survey(msg, response)

    def _survey(self, msg: dict[str, Any], response: dict[str, Any] | None) -> Update:
        """The CSAT survey message: sent (``response`` None) or answered."""
        conv = obj(msg.get("conversation"), "body.conversation")
        cid, _, queue, customer = self._where(conv, "body.conversation")
        mid = text_id(msg.get("id"), "body.id")
        ts = optional_time(msg.get("updated_at"), "body.updated_at") or timestamp(
            msg.get("created_at"), "body.created_at"
        )
        channel = self.o.feedback_channel
        if response is None:
            return Update(f"csat-sent:{mid}", "feedback", ts, cid, channel, queue, customer)
        rating = response["rating"]
        if isinstance(rating, bool) or not isinstance(rating, int | float) or not 1 <= rating <= 5:
            raise ValueError(f"csat_survey_response.rating: expected 1 to 5, got {rating!r}")
        comment = response.get("feedback_message")
        return Update(
            f"csat:{mid}",
            "feedback",
            ts,
            cid,
            channel,
            queue,
            customer,
            score=float(rating),
            comment=comment if isinstance(comment, str) and comment.strip() else None,
        )
