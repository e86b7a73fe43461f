"""Zendesk event webhooks (``zen:event-type:ticket.*``) and satisfaction ratings as feedback.

Signed as Zendesk signs them: ``X-Zendesk-Webhook-Signature`` is base64(HMAC-SHA256(timestamp +
body)) with the webhook's signing secret, the timestamp being ``X-Zendesk-Webhook-Signature-Timestamp``.
The ticket's group is the queue and ``via.channel`` the channel. Satisfaction ratings come from a
trigger webhook whose JSON body holds a ``satisfaction_rating`` object shaped like the Support API's.
"""

from __future__ import annotations

import base64
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
    "email": "email",
    "mail": "email",
    "web": "web",
    "web_form": "web",
    "web_service": "web",
    "api": "web",
    "helpcenter": "web",
    "chat": "chat",
    "chat_transcript": "chat",
    "native_messaging": "chat",
    "web_widget": "chat",
    "mobile_sdk": "chat",
    "voice": "voice",
    "phone_call_inbound": "voice",
    "phone_call_outbound": "voice",
    "api_phone_call_inbound": "voice",
    "voicemail": "voice",
    "sms": "sms",
    "twilio_sms": "sms",
    "text_message": "sms",
    "whatsapp": "chat",
    "facebook_message": "social",
    "facebook_post": "social",
    "twitter": "social",
    "twitter_dm": "social",
    "instagram_dm": "social",
}
_STATUS = {
    "new": "open",
    "open": "open",
    "pending": "paused",
    "hold": "paused",
    "on-hold": "paused",
    "solved": "resolved",
    "closed": "resolved",
}
_SCORES = {"good": 5.0, "bad": 1.0}
"""Zendesk's two-point rating on cxmon's 1–5 scale."""
_PREFIX = "zen:event-type:"


class ZendeskAdapter:
    """Zendesk ticket events and satisfaction ratings."""

    name = "zendesk"
    content_types = frozenset({"application/json"})
    success_status = 200

    def __init__(self, options: AdapterOptions) -> None:
        """Create the adapter for one configured webhook."""
        self.o = options

    def verify(self, delivery: Delivery) -> Signed:
        """Check ``X-Zendesk-Webhook-Signature`` over the timestamp and the body."""
        h = delivery.headers
        signature = h.get("X-Zendesk-Webhook-Signature", "")
        stamp = h.get("X-Zendesk-Webhook-Signature-Timestamp", "")
        if not signature or not stamp:
            raise Rejected(401, "unsigned", "missing X-Zendesk-Webhook-Signature or its timestamp")
        digest = hmac.new(self.o.secret, stamp.encode() + delivery.body, hashlib.sha256).digest()
        if not same(signature, base64.b64encode(digest).decode()):
            raise Rejected(401, "bad_signature", "signature does not match")
        try:
            ts = timestamp(stamp, "X-Zendesk-Webhook-Signature-Timestamp")
        except ValueError as exc:
            raise Rejected(401, "bad_signature", str(exc)) from None
        return Signed(h.get("X-Zendesk-Webhook-Invocation-Id") or None, ts, signature)

    def parse(self, delivery: Delivery) -> Parsed:
        """Read one ticket event, or one satisfaction rating."""
        try:
            data = obj(orjson.loads(delivery.body), "body")
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"body: not JSON ({exc})") from None
        out = Parsed()
        if "satisfaction_rating" in data:
            update = self._rating(obj(data["satisfaction_rating"], "body.satisfaction_rating"))
            if update is not None:
                out.updates.append(update)
            return out
        kind = data.get("type")
        if not isinstance(kind, str):
            raise ValueError("type: missing")
        event_id = text_id(data.get("id"), "id")
        out.delivery_id = event_id
        if not kind.startswith(_PREFIX + "ticket."):
            out.unknown += 1
            return out
        name = kind[len(_PREFIX) + len("ticket.") :]
        detail = obj(data.get("detail"), "detail")
        event: dict[str, Any] = data["event"] if isinstance(data.get("event"), dict) else {}
        ts = timestamp(data.get("time"), "time")
        cid, channel, queue, customer = self._ticket(detail)
        opened = optional_time(detail.get("created_at"), "detail.created_at")
        base: dict[str, Any] = {
            "contact": cid,
            "channel": channel,
            "queue": queue,
            "customer": customer,
            "opened_at": opened,
        }
        if name == "created":
            out.updates.append(Update(event_id, "open", opened if opened is not None else ts, **base))
        elif name == "comment_added":
            comment = obj(event.get("comment"), "event.comment")
            author: dict[str, Any] = comment["author"] if isinstance(comment.get("author"), dict) else {}
            public = comment.get("is_public", True) is not False
            if author.get("is_staff") is True and public:
                out.updates.append(Update(event_id, "reply", ts, **base))
            elif author.get("is_staff") is False:
                out.updates.append(Update(event_id, "customer", ts, **base))
        elif name == "status_changed":
            current = event.get("current")
            status = _STATUS.get(current.lower()) if isinstance(current, str) else None
            if status is None:
                raise ValueError(f"event.current: unknown status {current!r}")
            out.updates.append(Update(event_id, "status", ts, status=status, **base))
        else:
            out.unknown += 1
        return out

    def _ticket(self, detail: dict[str, Any]) -> tuple[str, str, str, str | None]:
        ticket = text_id(detail.get("id"), "detail.id")
        queue = optional_id(detail.get("group_id"), "detail.group_id")
        queue = self.o.queues.get(queue, queue)
        via = detail.get("via")
        raw = via.get("channel") if isinstance(via, dict) else None
        channel = self.o.channel or "email"
        if isinstance(raw, str):
            channel = self.o.channels.get(raw) or CHANNELS.get(raw.lower()) or channel
        customer = self.o.keys.key(contact=detail.get("requester_id"))
        return f"{self.o.source}:{ticket}", channel, queue, customer

    def _rating(self, rating: dict[str, Any]) -> Update | None:
        """A satisfaction rating: "offered" is a survey sent, good/bad (or 1–5) an answer."""
        score_raw = rating.get("score")
        score: float | None
        if isinstance(score_raw, str):
            score = _SCORES.get(score_raw.lower())
            if score is None and score_raw.lower() == "unoffered":
                return None
            if score is None and score_raw.lower() != "offered":
                raise ValueError(f"satisfaction_rating.score: {score_raw!r}")
        elif isinstance(score_raw, int | float) and not isinstance(score_raw, bool) and 1 <= score_raw <= 5:
            score = float(score_raw)
        else:
            raise ValueError(f"satisfaction_rating.score: {score_raw!r}")
        ticket = text_id(rating.get("ticket_id"), "satisfaction_rating.ticket_id")
        rid = text_id(rating.get("id"), "satisfaction_rating.id")
        stamp = "updated_at" if rating.get("updated_at") else "created_at"
        ts = timestamp(rating.get(stamp), f"satisfaction_rating.{stamp}")
        queue = optional_id(rating.get("group_id"), "satisfaction_rating.group_id")
        customer = self.o.keys.key(email=rating.get("requester_email"), contact=rating.get("requester_id"))
        comment = rating.get("comment")
        comment = comment if isinstance(comment, str) and comment.strip() else None
        # A changed rating, or a comment added to it, is a new answer to the same survey (which
        # replaces the one counted): only a redelivery of the same answer is a duplicate.
        said = hashlib.sha256(comment.encode()).hexdigest()[:12] if comment else ""
        return Update(
            f"satisfaction:{rid}:{score_raw}:{rating.get(stamp)}:{said}",
            "feedback",
            ts,
            f"{self.o.source}:{ticket}",
            self.o.feedback_channel,
            self.o.queues.get(queue, queue),
            customer,
            score=score,
            comment=comment,
        )
