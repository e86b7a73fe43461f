"""ContactEvent and EventKind: the normalized events every source produces."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class EventKind(str, Enum):
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


KINDS_BY_VALUE: dict[str, EventKind] = {k.value: k for k in EventKind}


@dataclass(frozen=True, slots=True)
class ContactEvent:
    """One normalized event, timestamped by the source's clock (epoch seconds, UTC)."""

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

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-friendly dict, leaving out empty optional fields."""
        out: dict[str, object] = {
            "ts": self.ts,
            "kind": self.kind.value,
            "contact_id": self.contact_id,
            "channel": self.channel,
            "queue": self.queue,
        }
        for name in _OPTIONAL:
            value = getattr(self, name)
            if value is not None and value != "":
                out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ContactEvent:
        """Build an event from :meth:`to_dict` output (or a JSON feed record).

        Raises:
            ValueError: a field is missing or has the wrong type.
        """
        try:
            kind = KINDS_BY_VALUE[str(data["kind"])]
            ts = float(data["ts"])  # type: ignore[arg-type]
        except KeyError as exc:
            raise ValueError(f"missing or unknown field {exc}") from None
        except (TypeError, ValueError):
            raise ValueError(f"ts must be a number, got {data.get('ts')!r}") from None
        kwargs: dict[str, object] = {}
        for name, conv in _CONVERT.items():
            value = data.get(name)
            if value is not None:
                try:
                    kwargs[name] = conv(value)
                except (TypeError, ValueError):
                    raise ValueError(f"{name} has the wrong type: {value!r}") from None
        return cls(
            ts=ts,
            kind=kind,
            contact_id=str(data.get("contact_id", "")),
            channel=str(data.get("channel", "")),
            queue=str(data.get("queue", "")),
            **kwargs,  # type: ignore[arg-type]
        )


_OPTIONAL = (
    "source",
    "customer_id",
    "wait",
    "duration",
    "reason",
    "score",
    "target",
    "agents_staffed",
    "agents_available",
)
_CONVERT = {
    "source": str,
    "customer_id": str,
    "wait": float,
    "duration": float,
    "reason": str,
    "score": float,
    "target": str,
    "agents_staffed": int,
    "agents_available": int,
}
