"""Twilio TaskRouter event callbacks: tasks entering queues, reservations accepted, tasks ended.

Form-encoded, signed as Twilio signs every webhook: ``X-Twilio-Signature`` is base64(HMAC-SHA1(auth
token, URL + each POST parameter's name and value, sorted by name)). The URL is the one Twilio
called (``public_url`` when a proxy sits in front). The task channel is the channel and the task
queue the queue.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from typing import Any
from urllib.parse import parse_qsl

import orjson

from collectors.webhook.model import (
    AdapterOptions,
    Delivery,
    Parsed,
    Rejected,
    Signed,
    Update,
    optional_time,
    same,
    text_id,
)

CHANNELS: dict[str, str] = {
    "voice": "voice",
    "chat": "chat",
    "sms": "sms",
    "email": "email",
    "video": "video",
}


def twilio_signature(secret: bytes, url: str, params: list[tuple[str, str]]) -> str:
    """Return Twilio's signature of a form POST to ``url`` (also what a test signs with)."""
    message = url + "".join(k + v for k, v in sorted(params, key=lambda kv: kv[0]))
    return base64.b64encode(hmac.new(secret, message.encode(), hashlib.sha1).digest()).decode()


class TwilioTaskRouterAdapter:
    """TaskRouter workspace event callbacks."""

    name = "twilio_taskrouter"
    content_types = frozenset({"application/x-www-form-urlencoded"})
    success_status = 204
    """TaskRouter asks for 204 No Content within 15 s."""

    def __init__(self, options: AdapterOptions) -> None:
        """Create the adapter for one configured webhook."""
        self.o = options

    def _params(self, delivery: Delivery) -> list[tuple[str, str]]:
        try:
            text = delivery.body.decode("utf-8")
            return parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"body: not a form ({exc})") from None

    def verify(self, delivery: Delivery) -> Signed:
        """Check ``X-Twilio-Signature`` over the URL and the sorted parameters."""
        signature = delivery.headers.get("X-Twilio-Signature", "")
        if not signature:
            raise Rejected(401, "unsigned", "missing X-Twilio-Signature")
        try:
            params = self._params(delivery)
        except ValueError:
            raise Rejected(401, "bad_signature", "body cannot be signed: not a form") from None
        if not same(signature, twilio_signature(self.o.secret, self.o.public_url or delivery.url, params)):
            raise Rejected(401, "bad_signature", "signature does not match")
        return Signed(delivery.headers.get("I-Twilio-Idempotency-Token") or None, None, signature)

    def parse(self, delivery: Delivery) -> Parsed:
        """Read one TaskRouter event."""
        p: dict[str, Any] = dict(self._params(delivery))
        kind = p.get("EventType")
        if not kind:
            raise ValueError("EventType: missing")
        out = Parsed()
        out.delivery_id = p.get("Sid") or None
        ts = optional_time(p.get("TimestampMs"), "TimestampMs") or optional_time(
            p.get("Timestamp"), "Timestamp"
        )
        if ts is None:
            raise ValueError("Timestamp: missing")
        out.timestamp = ts
        event_id = text_id(p.get("Sid") or f"{kind}:{p.get('TaskSid')}:{ts}", "Sid")
        if kind not in (
            "task-queue.entered",
            "reservation.accepted",
            "task.canceled",
            "task-queue.timeout",
            "task.completed",
        ):
            out.unknown += 1
            return out
        task = text_id(p.get("TaskSid"), "TaskSid")
        attrs: dict[str, Any] = {}
        if p.get("TaskAttributes"):
            try:
                loaded = orjson.loads(p["TaskAttributes"])
            except orjson.JSONDecodeError:
                raise ValueError("TaskAttributes: not JSON") from None
            if not isinstance(loaded, dict):
                raise ValueError(f"TaskAttributes: expected a JSON object, got {type(loaded).__name__}")
            attrs = loaded
        queue = p.get("TaskQueueName") or p.get("TaskQueueSid") or ""
        queue = self.o.queues.get(p.get("TaskQueueSid", ""), self.o.queues.get(queue, queue))
        raw_channel = p.get("TaskChannelUniqueName") or ""
        channel = self.o.channels.get(raw_channel) or CHANNELS.get(raw_channel) or self.o.channel or "voice"
        customers: dict[str, Any] = attrs["customers"] if isinstance(attrs.get("customers"), dict) else {}
        customer = self.o.keys.key(
            phone=customers.get("phone") or (attrs.get("from") if channel in ("voice", "sms") else None),
            email=customers.get("email") or attrs.get("email"),
            contact=customers.get("customer_link") or None,
        )
        age = p.get("TaskAge")
        opened = ts - float(age) if age not in (None, "") and str(age).replace(".", "", 1).isdigit() else None
        if opened is not None and (not math.isfinite(opened) or opened < 0.0):
            # The task would have been created before 1970: its wait would be centuries long.
            raise ValueError(f"TaskAge: {str(age)[:40]!r} s is older than the task can be")
        base: dict[str, Any] = {
            "contact": f"{self.o.source}:{task}",
            "channel": channel,
            "queue": queue,
            "customer": customer,
        }
        if kind == "task-queue.entered":
            out.updates.append(Update(event_id, "open", ts, **base))
        elif kind == "reservation.accepted":
            out.updates.append(Update(event_id, "reply", ts, opened_at=opened, **base))
        elif kind == "task.canceled":
            reason = _canceled_reason(str(p.get("TaskCanceledReason", "")))
            out.updates.append(Update(event_id, "abandon", ts, opened_at=opened, reason=reason, **base))
        elif kind == "task-queue.timeout":
            out.updates.append(Update(event_id, "abandon", ts, opened_at=opened, reason="timeout", **base))
        else:
            out.updates.append(Update(event_id, "status", ts, opened_at=opened, status="resolved", **base))
        return out


def _canceled_reason(text: str) -> str:
    """An abandon's reason from Twilio's ``TaskCanceledReason``: TaskRouter's own on a task whose
    TTL ran out ("Task TTL Exceeded") is a timeout; any other (the application canceling the task
    of a caller who left, "hangup" or words of its own) is the caller hanging up."""
    said = text.lower()
    return "timeout" if "ttl" in said or "timeout" in said or "timed out" in said else "hangup"
