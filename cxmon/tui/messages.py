"""Messages the dashboard passes around, each stating a fact in the past tense."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from cxmon.events import ContactEvent
from cxmon.snapshot import Ack, SeriesKey, Snapshot


@dataclass
class SnapshotPublished(Message):
    """The feed published a newer snapshot; only the newest one waits in a queue."""

    snapshot: Snapshot
    """The snapshot, as published."""

    def can_replace(self, message: Message) -> bool:
        """A newer snapshot supersedes an older one still waiting."""
        return isinstance(message, SnapshotPublished)


@dataclass
class StepChosen(Message):
    """The user drilled into a step (Enter on a tile or a matrix row)."""

    step: str
    """The step's name."""
    series: SeriesKey | None = None
    """The series picked with it, when a matrix row named one."""


@dataclass
class PotholeAcknowledged(Message):
    """An acknowledgement was stored through the feed."""

    ack: Ack
    """The stored acknowledgement."""


@dataclass
class CustomerLeadersLoaded(Message):
    """The customers with the most strikes were read from the store."""

    leaders: list[tuple[str, int]]
    """(customer_id, strikes in 24 h), most first."""


@dataclass
class CustomerPathLoaded(Message):
    """One customer's path was read from the store."""

    customer_id: str
    """Whose path it is."""
    events: list[ContactEvent]
    """Their events, oldest first."""


@dataclass
class CustomerChosen(Message):
    """The user asked for one customer's path (Enter on the strikes list)."""

    customer_id: str
    """Whose path to load."""
