"""What a websocket adapter gives its source: where to connect, and what each message meant."""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.webhook.model import Update
from cxmon.events import ContactEvent


class LinkError(Exception):
    """Connecting failed before the websocket (a REST step, a refused token): retried with backoff."""


@dataclass(frozen=True, slots=True)
class Link:
    """Where to connect."""

    url: str
    headers: dict[str, str]
    renew_at: float | None = None
    """When to leave this connection for a fresh one (a channel about to expire)."""


@dataclass(slots=True)
class Handled:
    """One message's meaning."""

    updates: list[Update] = field(default_factory=list)
    """Vendor updates for the contact tracker (deduplicated by event id)."""
    events: list[ContactEvent] = field(default_factory=list)
    """Events as they are (staffing)."""
    heartbeat: bool = False
    reconnect: bool = False
    unknown: int = 0
