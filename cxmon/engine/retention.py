"""Retention and memory: the hourly purge of history past ``store.retention``, and a backfill's GC tuning."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Iterator
from typing import Any

from cxmon.store import Store

log = logging.getLogger("cxmon.engine.core")

PURGE_EVERY = 3600.0
"""Engine time between two retention purges."""
BACKFILL_GC_THRESHOLDS = (20_000, 20, 100)
"""Cyclic GC thresholds while a backfill runs (restored after)."""


@contextlib.contextmanager
def backfill_gc(active: bool) -> Iterator[None]:
    """Run the block under the backfill's GC thresholds when ``active``; restore them after.

    A backfill allocates a row tuple per event and frees it at once; the default thresholds then
    spend a tenth of the run in young collections that find nothing.
    """
    thresholds = gc.get_threshold()
    if active:
        gc.set_threshold(*BACKFILL_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


class Purger:
    """Purges stored history older than the retention, once an hour of engine time, in a task."""

    def __init__(self, store: Store, retention: float, tasks: list[asyncio.Task[Any]]) -> None:
        """Purge ``store``'s history past ``retention`` seconds; purge tasks join ``tasks`` while they run."""
        self.store = store
        self.retention = retention
        self._tasks = tasks
        self._next = 0.0

    def tick(self, now: float) -> None:
        """Start a purge when one is due at engine time ``now``."""
        if now < self._next:
            return
        self._next = now + PURGE_EVERY
        before = now - self.retention
        if before > 0:  # else nothing is that old (an import keeps everything)
            self._schedule(before)

    def _schedule(self, before: float) -> None:
        store = self.store

        async def purge() -> None:
            try:
                await store.purge(before)
            except Exception:
                log.exception("retention purge failed")

        task = asyncio.get_running_loop().create_task(purge(), name="store-purge")
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)
