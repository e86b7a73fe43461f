"""What a webhook adapter works with: the delivery, its verdict, and the updates it reads from it."""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from cxmon.customers import CustomerKeys
from cxmon.events import ContactEvent


@dataclass(frozen=True, slots=True)
class Delivery:
    """One HTTP request as received: nothing in it is trusted until the adapter has verified it."""

    body: bytes
    headers: Mapping[str, str]
    """Case-insensitive (aiohttp's CIMultiDictProxy)."""
    url_of: Callable[[], str]
    """The URL the vendor called (what Twilio signs), worked out only when asked for."""
    content_type: str

    @property
    def url(self) -> str:
        """The URL the vendor called."""
        return self.url_of()


class Rejected(Exception):
    """A request that is not taken: answered with ``status`` and counted under ``reason``."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        """Describe the rejection (``reason`` is the metric's label, ``detail`` the short answer)."""
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Signed:
    """What the signature check established."""

    delivery_id: str | None = None
    """The vendor's id for this delivery (a retry of the same request repeats it)."""
    timestamp: float | None = None
    """When the vendor signed it (epoch seconds), when the signature covers a time."""
    signature: str = ""


@dataclass(slots=True)
class Update:
    """One thing a vendor event says about a contact, before it becomes ContactEvents.

    ``action`` is ``open`` (created or queued), ``reply`` (an agent answered in public),
    ``customer`` (the customer wrote again), ``status`` (``open``/``paused``/``resolved``),
    ``abandon``, ``feedback``, or ``direct`` (``event`` is already a ContactEvent).
    """

    event_id: str
    action: str
    ts: float
    contact: str = ""
    channel: str = ""
    queue: str = ""
    customer: str | None = None
    opened_at: float | None = None
    """When the contact was opened, if the payload says: an event that overtakes the contact's
    creation still counts the arrival at the right time."""
    answered_at: float | None = None
    """When an agent took it, if the payload says (a disconnect that overtakes the connect)."""
    status: str = ""
    score: float | None = None
    comment: str | None = None
    reason: str | None = None
    duration: float | None = None
    event: ContactEvent | None = None
    where: str = ""
    """The key path of ``ts`` in the body, when the adapter knows it (``events[1].ts``)."""


@dataclass(slots=True)
class Parsed:
    """An adapter's reading of a verified delivery."""

    updates: list[Update] = field(default_factory=list)
    delivery_id: str | None = None
    timestamp: float | None = None
    unknown: int = 0
    """Vendor events of types the adapter does not map (counted, ignored)."""


@dataclass(frozen=True, slots=True)
class AdapterOptions:
    """The options every adapter reads."""

    source: str
    secret: bytes
    keys: CustomerKeys
    queues: Mapping[str, str] = field(default_factory=dict)
    """Vendor queue/group/inbox id → cxmon queue name."""
    channels: Mapping[str, str] = field(default_factory=dict)
    """Vendor channel → cxmon channel (on top of the adapter's own table)."""
    channel: str = ""
    """Channel when the vendor does not say."""
    feedback_channel: str = "survey"
    """Channel of feedback events (surveys sent and answered): the Feedback step matches it."""
    header: str = "Authorization"
    """Amazon Connect: the header carrying the shared secret."""
    public_url: str | None = None
    """Twilio: the URL as Twilio calls it (behind a proxy it differs from what reaches cxmon)."""


class Adapter(Protocol):
    """One vendor's webhook: how it signs, and what its payloads mean."""

    name: str
    content_types: frozenset[str]
    success_status: int

    def verify(self, delivery: Delivery) -> Signed:
        """Check the delivery's signature.

        Raises:
            Rejected: unsigned (401) or badly signed (401).
        """

    def parse(self, delivery: Delivery) -> Parsed:
        """Read a verified delivery.

        Raises:
            ValueError: the body is malformed (the message says where).
        """


def same(a: str, b: str) -> bool:
    """Compare two secrets or signatures in constant time."""
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))


def timestamp(value: Any, where: str) -> float:
    """Read a vendor timestamp: epoch seconds (or milliseconds), or ISO 8601.

    Raises:
        ValueError: not a time, or not one a vendor can stamp: not finite (``"inf"``, ``"nan"``), or
            before 1970 (the message names ``where``).
    """
    if isinstance(value, bool):
        raise ValueError(f"{where}: not a time: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
        # An infinite or NaN time would pass any tolerance check (every comparison with NaN is
        # false) and order nothing; the engine would refuse the event only after it was answered 200.
        if not math.isfinite(seconds) or seconds < 0.0:
            raise ValueError(f"{where}: not a time: {value!r}")
        return seconds / 1000.0 if seconds > 1e11 else seconds
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if "-" not in text[1:]:  # a number, not an ISO 8601 date (which has its dashes after the year)
            try:
                seconds = float(text)
            except ValueError:
                pass
            else:
                return timestamp(seconds, where)
        if text.endswith(" UTC"):
            text = text[:-4].replace(" ", "T") + "+00:00"
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{where}: not a time: {value!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        seconds = parsed.timestamp()
        if seconds < 0.0:
            raise ValueError(f"{where}: not a time: {value!r}")
        return seconds
    raise ValueError(f"{where}: not a time: {value!r}")


def optional_time(value: Any, where: str) -> float | None:
    """Like :func:`timestamp`, but None (or empty) gives None."""
    if value is None or value == "":
        return None
    return timestamp(value, where)


def lower_keys(value: Any) -> Any:
    """Return ``value`` with every object key lower-cased (vendors mix ``AgentInfo`` and ``agentInfo``)."""
    if isinstance(value, dict):
        return {str(k).lower(): lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [lower_keys(v) for v in value]
    return value


def obj(value: Any, where: str) -> dict[str, Any]:
    """Return ``value`` if it is a JSON object.

    Raises:
        ValueError: it is not.
    """
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def text_id(value: Any, where: str) -> str:
    """Return an id (string or integer) as text.

    Raises:
        ValueError: missing or of another type.
    """
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise ValueError(f"{where}: expected an id, got {value!r}")
    return str(value)


def optional_id(value: Any, where: str) -> str:
    """Return an optional id (a group, an inbox: string or integer) as text; none (null, "", 0) is "".

    Raises:
        ValueError: of another type (an object, a list, a boolean would name a queue ``{'a': 1}``).
    """
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{where}: expected an id, got {value!r}"[:200])
    return "" if value in ("", 0, "0") else str(value)
