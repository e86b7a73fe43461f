"""cxmon's own event JSON over a webhook: one event or a batch, versioned (schema in the README).

Signed like this: ``X-Cxmon-Signature: sha256=<hex>``, the HMAC-SHA256 of ``"{X-Cxmon-Timestamp}.{body}"``
with the shared secret, ``X-Cxmon-Timestamp`` in epoch seconds; ``X-Cxmon-Delivery`` optionally names
the delivery. Every event may carry an ``id``; without one, its content is its id.
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
    same,
    timestamp,
)
from cxmon.customers import normalize_phone
from cxmon.events import KINDS_BY_VALUE, ContactEvent
from cxmon.noise import SCORE_RANGE

VERSION = 1
SCORE_MIN, SCORE_MAX = SCORE_RANGE
_FIELDS = frozenset(
    {
        "id",
        "ts",
        "kind",
        "contact_id",
        "channel",
        "queue",
        "customer",
        "customer_id",
        "wait",
        "duration",
        "reason",
        "comment",
        "score",
        "target",
        "agents_staffed",
        "agents_available",
        "contacts_waiting",
    }
)

_CUSTOMER_FIELDS: dict[str, type | tuple[type, ...]] = {"phone": str, "email": str, "id": (str, int)}
"""The keys of a ``customer`` object (the schema's ``additionalProperties: false``) and their types."""
_CUSTOMER_TYPES = {"phone": "a string", "email": "a string", "id": "a string or an integer"}


def native_signature(secret: bytes, stamp: str, body: bytes) -> str:
    """Return the ``X-Cxmon-Signature`` value for ``body`` sent at ``stamp`` (epoch seconds as text)."""
    return "sha256=" + hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class NativeAdapter:
    """ContactEvents as JSON, from any system that can sign a request."""

    name = "native"
    content_types = frozenset({"application/json"})
    success_status = 200

    def __init__(self, options: AdapterOptions) -> None:
        """Create the adapter for one configured webhook."""
        self.o = options

    def verify(self, delivery: Delivery) -> Signed:
        """Check ``X-Cxmon-Signature`` over the timestamp and the body."""
        h = delivery.headers
        signature, stamp = h.get("X-Cxmon-Signature", ""), h.get("X-Cxmon-Timestamp", "")
        if not signature or not stamp:
            raise Rejected(401, "unsigned", "missing X-Cxmon-Signature or X-Cxmon-Timestamp")
        if not same(signature, native_signature(self.o.secret, stamp, delivery.body)):
            raise Rejected(401, "bad_signature", "signature does not match")
        try:
            ts = timestamp(stamp, "X-Cxmon-Timestamp")
        except ValueError as exc:
            raise Rejected(401, "bad_signature", str(exc)) from None
        return Signed(h.get("X-Cxmon-Delivery") or None, ts, signature)

    def parse(self, delivery: Delivery) -> Parsed:
        """Read ``{"version": 1, "events": [...]}`` or one event with ``"version": 1``."""
        try:
            data = obj(orjson.loads(delivery.body), "body")
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"body: not JSON ({exc})") from None
        if data.get("version") != VERSION:
            raise ValueError(f"version: expected {VERSION}, got {data.get('version')!r}")
        if "events" in data:
            raw = data["events"]
            if not isinstance(raw, list) or not raw:
                raise ValueError("events: expected a non-empty list")
            items = [(f"events[{i}]", obj(e, f"events[{i}]")) for i, e in enumerate(raw)]
        else:
            items = [("body", {k: v for k, v in data.items() if k != "version"})]
        out = Parsed()
        for where, item in items:
            out.updates.append(self._event(item, where))
        return out

    def _event(self, item: dict[str, Any], where: str) -> Update:
        extra = sorted(set(item) - _FIELDS)
        if extra:
            raise ValueError(f"{where}.{extra[0]}: unknown field")
        if item.get("kind") not in KINDS_BY_VALUE:
            raise ValueError(f"{where}.kind: unknown kind {item.get('kind')!r}")
        ts = timestamp(item.get("ts"), f"{where}.ts")
        key = self._customer(item, where)
        fields = {k: v for k, v in item.items() if k not in ("id", "customer", "comment", "ts")}
        fields["ts"] = ts
        fields["customer_id"] = key
        fields["source"] = self.o.source
        if item.get("comment") is not None:
            if not isinstance(item["comment"], str):
                raise ValueError(f"{where}.comment: expected a string")
            fields["reason"] = item["comment"]
        for name in ("contact_id", "channel", "queue"):
            if name in fields and not isinstance(fields[name], str):
                raise ValueError(f"{where}.{name}: expected a string")
        for name in ("wait", "duration", "score"):
            # The schema's numbers are JSON numbers (a body holding one past a float's range is
            # refused whole): "5" or "nan" as text is a sender's mistake to hear about, not a figure
            # to read (a "nan" wait used to be answered 200 and then dropped by the engine).
            value = item.get(name)
            if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
                raise ValueError(f"{where}.{name}: expected a number, got {value!r}"[:200])
        fields.setdefault("channel", self.o.channel)
        try:
            event = ContactEvent.from_dict(fields)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        if event.score is not None and not SCORE_MIN <= event.score <= SCORE_MAX:
            # CSAT is a mean on the 1–5 scale (the detector's noise bound assumes it): a 10 from an
            # NPS survey, or a 1e308, would make the step's CSAT a figure no survey gave.
            raise ValueError(f"{where}.score: expected 1 to 5, got {item.get('score')!r}"[:200])
        event_id = item.get("id")
        if event_id is None:
            event_id = hashlib.sha256(orjson.dumps(item, option=orjson.OPT_SORT_KEYS)).hexdigest()
        elif not isinstance(event_id, str | int) or isinstance(event_id, bool):
            raise ValueError(f"{where}.id: expected a string")
        return Update(str(event_id), "direct", ts, event.contact_id, event=event, where=f"{where}.ts")

    def _customer(self, item: dict[str, Any], where: str) -> str | None:
        """The customer key of an event's ``customer`` (a string or an object) or ``customer_id``.

        Raises:
            ValueError: either is not of the schema's shape (the message gives its key path).
        """
        if "customer" in item:
            customer, at = item["customer"], f"{where}.customer"
        else:
            customer, at = item.get("customer_id"), f"{where}.customer_id"
            if customer is not None and not isinstance(customer, str):
                raise ValueError(f"{at}: expected a string")
        if isinstance(customer, dict):
            for name, value in customer.items():
                if name not in _CUSTOMER_FIELDS:
                    raise ValueError(f"{at}.{name}: unknown key")
                if isinstance(value, bool) or not isinstance(value, _CUSTOMER_FIELDS[name]):
                    raise ValueError(f"{at}.{name}: expected {_CUSTOMER_TYPES[name]}")
            return self.o.keys.key(
                phone=customer.get("phone"), email=customer.get("email"), contact=customer.get("id")
            )
        if isinstance(customer, str):
            if "@" in customer:
                return self.o.keys.key(email=customer)
            if normalize_phone(customer, self.o.keys.region) is not None:
                return self.o.keys.key(phone=customer)
            return self.o.keys.key(contact=customer)
        if customer is None:
            return None
        raise ValueError(f"{at}: expected a string or an object")
