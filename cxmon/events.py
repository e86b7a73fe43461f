"""ContactEvent and EventKind: the normalized events every source produces."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    """What happened to a contact (DESIGN.md, "event kinds")."""

    ARRIVED = "arrived"
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    TRANSFERRED = "transferred"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    FEEDBACK = "feedback"
    STAFFING = "staffing"
    HEARTBEAT = "heartbeat"
    LOST = "lost"
    REPLIED = "replied"
    """An agent answered the customer's later message (after the first reply); carries the wait."""
    PAUSED = "paused"
    """The contact waits on the customer or a third party (pending, on hold): its clocks stop."""
    RESUMED = "resumed"
    """Back from a pause: its clocks run again."""


KINDS_BY_VALUE: dict[str, EventKind] = {k.value: k for k in EventKind}


@dataclass(frozen=True, slots=True, init=False)
class ContactEvent:
    """One normalized event, timestamped by the source's clock (epoch seconds, UTC).

    Frozen: nothing changes an event once made. Every source makes one per line or message, so
    ``__init__`` fills the slots through their descriptors rather than the frozen ``__setattr__``
    a generated one goes through (about half the cost).
    """

    ts: float
    """When it happened, by the source's clock."""
    kind: EventKind
    """What happened."""
    contact_id: str
    """The contact (call, chat, ticket) it belongs to; empty for staffing and heartbeat."""
    channel: str
    """voice, chat, email, …"""
    queue: str
    """The routing queue."""
    source: str = ""
    """Name of the collector that produced it."""
    customer_id: str | None = None
    """Who the contact belongs to, when the source knows."""
    wait: float | None = None
    """Seconds in queue, for answered and abandoned."""
    duration: float | None = None
    """Handle or resolution time in seconds, for resolved."""
    reason: str | None = None
    """Abandon reason (hangup, timeout, key, empty), or the escalation/transfer tier."""
    score: float | None = None
    """Feedback score (CSAT, 1–5)."""
    target: str | None = None
    """Destination queue of a transfer or escalation."""
    agents_staffed: int | None = None
    """Agents logged in, for staffing events."""
    agents_available: int | None = None
    """Agents ready to take a contact, for staffing events."""
    contacts_waiting: int | None = None
    """Contacts waiting in the queue as the source counts them, for staffing events (a source that
    sees only counts, not the contacts themselves); it stands for the queue's waiting-now figure."""

    def __init__(
        self,
        ts: float,
        kind: EventKind,
        contact_id: str,
        channel: str,
        queue: str,
        source: str = "",
        customer_id: str | None = None,
        wait: float | None = None,
        duration: float | None = None,
        reason: str | None = None,
        score: float | None = None,
        target: str | None = None,
        agents_staffed: int | None = None,
        agents_available: int | None = None,
        contacts_waiting: int | None = None,
    ) -> None:
        _set_ts(self, ts)
        _set_kind(self, kind)
        _set_contact_id(self, contact_id)
        _set_channel(self, channel)
        _set_queue(self, queue)
        _set_source(self, source)
        _set_customer_id(self, customer_id)
        _set_wait(self, wait)
        _set_duration(self, duration)
        _set_reason(self, reason)
        _set_score(self, score)
        _set_target(self, target)
        _set_agents_staffed(self, agents_staffed)
        _set_agents_available(self, agents_available)
        _set_contacts_waiting(self, contacts_waiting)

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-friendly dict, leaving out empty optional fields."""
        out: dict[str, object] = {
            "ts": self.ts,
            "kind": self.kind.value,
            "contact_id": self.contact_id,
            "channel": self.channel,
            "queue": self.queue,
        }
        for name in _CONVERT:  # the optional fields
            value = getattr(self, name)
            if value is not None and value != "":
                out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], make: Callable[..., Any] | None = None) -> ContactEvent:
        """Build an event from :meth:`to_dict` output (or a JSON feed record).

        ``make``, when given, is called with the checked fields instead of the class (see
        cxmon.rows.row_maker).

        Raises:
            ValueError: a field is missing or has the wrong type (the message names it).
        """
        get = data.get
        try:
            customer, wait, duration, reason = get("customer_id"), get("wait"), get("duration"), get("reason")
            score, target, staffed, available = (
                get("score"),
                get("target"),
                get("agents_staffed"),
                get("agents_available"),
            )
            waiting = get("contacts_waiting")
            return (make or cls)(
                _time(data["ts"]),
                KINDS_BY_VALUE[data["kind"]],
                str(get("contact_id", "")),
                str(get("channel", "")),
                str(get("queue", "")),
                str(get("source", "")),
                None if customer is None else str(customer),
                None if wait is None else _seconds(wait),
                None if duration is None else _seconds(duration),
                None if reason is None else str(reason),
                None if score is None else float(score),
                None if target is None else str(target),
                None if staffed is None else _count(staffed),
                None if available is None else _count(available),
                None if waiting is None else _count(waiting),
            )
        except (KeyError, TypeError, ValueError, OverflowError):
            raise ValueError(_explain(data)) from None


MAX_COUNT = 1_000_000
"""The most agents or waiting contacts a staffing event may count: a count past it (``1e300`` in a
feed) is a mistake, and an integer past SQLite's 64 bits would fail the commit of the whole batch."""


def _count(value: Any) -> int:
    """A count of agents or contacts: a whole number from 0 to MAX_COUNT (``3`` or ``3.0``, not
    ``2.5``, ``true`` or ``-1``).

    Raises:
        ValueError: it is not such a number.
    """
    count = int(value)
    if count != value or not 0 <= count <= MAX_COUNT or value.__class__ is bool:
        raise ValueError(value)
    return count


def _time(value: Any) -> float:
    """An event's time: epoch seconds, finite and not before 1970.

    Raises:
        ValueError: it is not such a number.
    """
    ts = float(value)
    if not 0.0 <= ts < math.inf:
        raise ValueError(value)
    return ts


def _seconds(value: Any) -> float:
    """A wait or a duration: a number of seconds, not below 0.

    Raises:
        ValueError: it is negative (or not a number).
    """
    seconds = float(value)
    if seconds < 0.0:
        raise ValueError(value)
    return seconds


def _opt(value: Any, conv: Callable[[Any], Any]) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or (conv is not str and isinstance(value, str)):
        raise TypeError(value)
    return conv(value)


def _explain(data: dict[str, Any]) -> str:
    """Say which field of a record is wrong (the slow path, for bad input only)."""
    if "kind" not in data:
        return "missing field 'kind'"
    if data["kind"] not in KINDS_BY_VALUE:
        return f"unknown kind {data['kind']!r}"
    if "ts" not in data:
        return "missing field 'ts'"
    try:
        ts = float(data["ts"])
    except (TypeError, ValueError):
        return f"ts must be a number, got {data['ts']!r}"
    if not 0.0 <= ts < math.inf:
        return f"ts must be a finite time from 1970 on, got {data['ts']!r}"
    for name, conv in _CONVERT.items():
        value = data.get(name)
        if value is None:
            continue
        try:
            _opt(value, conv)
        except (TypeError, ValueError):
            return f"{name} has the wrong type: {value!r}"
        if name in ("wait", "duration") and float(value) < 0.0:
            return f"{name} is negative: {value!r}"
        if conv is int:
            try:
                _count(value)
            except (OverflowError, ValueError):
                return f"{name} is not a count from 0 to {MAX_COUNT:,}: {value!r}"
    return "not an event"


# The slot descriptors' setters, for ContactEvent.__init__.
(
    _set_ts,
    _set_kind,
    _set_contact_id,
    _set_channel,
    _set_queue,
    _set_source,
    _set_customer_id,
    _set_wait,
    _set_duration,
    _set_reason,
    _set_score,
    _set_target,
    _set_agents_staffed,
    _set_agents_available,
    _set_contacts_waiting,
) = (ContactEvent.__dict__[f.name].__set__ for f in fields(ContactEvent))

_CONVERT: dict[str, Callable[[Any], Any]] = {
    "source": str,
    "customer_id": str,
    "wait": float,
    "duration": float,
    "reason": str,
    "score": float,
    "target": str,
    "agents_staffed": int,
    "agents_available": int,
    "contacts_waiting": int,
}
"""The optional fields in field order (what to_dict leaves out when empty), and the type each holds."""
