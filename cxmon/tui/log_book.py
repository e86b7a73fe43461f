"""The event log's entries: newest first, each once, at most a fixed number kept."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from cxmon.tui.widgets.event_log import LogEntry

LIMIT = 500
"""Entries kept by default (the newest)."""


class LogBook:
    """Transitions and acknowledgements seen so far, newest first.

    A transition reaches the app in several snapshots (``recent_transitions`` repeats the ticks a
    reader skipped) and an acknowledgement both from the form and from the feed: each is kept once.
    The oldest entries leave when ``limit`` is reached, and their identities with them, so a
    long-running dashboard holds ``limit`` entries and no more.
    """

    def __init__(self, limit: int = LIMIT) -> None:
        """Keep at most ``limit`` entries."""
        self._entries: deque[LogEntry] = deque(maxlen=limit)
        self._keys: set[str] = set()

    def add(self, entries: Iterable[LogEntry]) -> bool:
        """Add the entries not seen yet, oldest first (so the newest ends on top).

        Returns:
            Whether any was added.
        """
        added = False
        for entry in sorted(entries, key=lambda e: e.ts):
            if entry.key in self._keys:
                continue
            if len(self._entries) == self._entries.maxlen:
                self._keys.discard(self._entries[-1].key)
            self._entries.appendleft(entry)
            self._keys.add(entry.key)
            added = True
        return added

    def entries(self) -> tuple[LogEntry, ...]:
        """The entries kept, newest first."""
        return tuple(self._entries)

    def __len__(self) -> int:
        return len(self._keys)
