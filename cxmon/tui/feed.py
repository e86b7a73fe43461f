"""Feed: what the dashboard needs from whatever publishes Snapshots (the Engine, later a hub client)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol, runtime_checkable

from cxmon.config import Config
from cxmon.events import ContactEvent
from cxmon.snapshot import EMPTY_SNAPSHOT, Ack, Snapshot


@runtime_checkable
class Feed(Protocol):
    """A source of Snapshots plus the few requests the dashboard makes.

    :class:`cxmon.engine.Engine` implements it in-process; a hub client implements it over a websocket.
    """

    config: Config
    """Steps in journey order, thresholds, windows."""

    @property
    def latest(self) -> Snapshot:
        """The newest published snapshot."""

    def subscribe(self) -> AsyncIterable[Snapshot]:
        """Return an async iterator over snapshots, newest only (a slow reader skips, never blocks)."""

    async def acknowledge(self, step: str, who: str, note: str, until: float | None = None) -> Ack:
        """Acknowledge a pot hole on ``step`` (stored; silences repeat alerts until ``until``)."""

    async def customer_leaders(self, limit: int = 20) -> list[tuple[str, int]]:
        """Return (customer_id, strikes in 24 h), most strikes first."""

    async def customer_path(self, customer_id: str) -> list[ContactEvent]:
        """Return one customer's events, oldest first."""


@runtime_checkable
class GatedFeed(Protocol):
    """A feed that knows, before asking, whether its acknowledgements would be refused (a hub
    client knows its token's role from the hub's hello)."""

    def may_acknowledge(self, step: str) -> bool:
        """Whether an acknowledgement on ``step`` is allowed (True while not known)."""


class MemoryFeed:
    """A feed whose snapshots are published by hand: for benchmarks, tests and fixed screenshots.

    Acknowledgements are kept in :attr:`acks`; customer data comes from the dicts given.
    """

    def __init__(
        self,
        config: Config,
        snapshot: Snapshot = EMPTY_SNAPSHOT,
        *,
        leaders: list[tuple[str, int]] | None = None,
        paths: dict[str, list[ContactEvent]] | None = None,
    ) -> None:
        self.config = config
        self._latest = snapshot
        self._changed = asyncio.Event()
        self._closed = False
        self.acks: list[Ack] = []
        self.leaders = leaders or []
        self.paths = paths or {}

    @property
    def latest(self) -> Snapshot:
        """The newest published snapshot."""
        return self._latest

    def publish(self, snapshot: Snapshot) -> None:
        """Make ``snapshot`` the newest and wake subscribers."""
        self._latest = snapshot
        self._changed.set()

    def close(self) -> None:
        """End every subscription after the current snapshot."""
        self._closed = True
        self._changed.set()

    async def subscribe(self) -> AsyncIterator[Snapshot]:
        """Yield the latest snapshot, then each newer one (skipping any published while busy)."""
        seen = -1
        while True:
            snap = self._latest
            if snap.version != seen:
                seen = snap.version
                yield snap
                continue
            if self._closed:
                return
            self._changed.clear()
            await self._changed.wait()

    async def acknowledge(self, step: str, who: str, note: str, until: float | None = None) -> Ack:
        """Record an acknowledgement (until defaults to one hour after the latest snapshot)."""
        ts = self._latest.ts
        ack = Ack(step=step, who=who, note=note, ts=ts, until=until if until is not None else ts + 3600.0)
        self.acks.append(ack)
        return ack

    async def customer_leaders(self, limit: int = 20) -> list[tuple[str, int]]:
        """Return the configured leaders."""
        return self.leaders[:limit]

    async def customer_path(self, customer_id: str) -> list[ContactEvent]:
        """Return the configured path of ``customer_id`` (empty when unknown)."""
        return list(self.paths.get(customer_id, []))
