"""Arrival profiles in a running engine: learned from the store at start, and again once a day."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cxmon.forecast import profile
from cxmon.forecast.live import Forecaster
from cxmon.forecast.options import ForecastOptions

log = logging.getLogger("cxmon.engine.core")

RELEARN_EVERY = profile.DAY
"""Engine time between two learnings of the profiles while the engine runs live."""


class ProfileLearner:
    """Learns every queue's arrival profile from the store (:func:`cxmon.forecast.profile.load`)
    into the forecaster: at start, then once a day of engine time in a task while the engine runs
    live (a backfill keeps the profiles it started with, so its results do not depend on when its
    rows were committed)."""

    def __init__(
        self,
        db_path: str,
        forecaster: Forecaster,
        options: ForecastOptions,
        live: bool,
        tasks: list[asyncio.Task[Any]],
    ) -> None:
        """Learn into ``forecaster`` from the store at ``db_path``; relearning tasks join ``tasks``.

        Args:
            db_path: the store.
            forecaster: whose ``profiles`` are set.
            options: the ``[forecast]`` settings (``profile_*``).
            live: whether to learn again once a day.
            tasks: the engine's owned tasks.
        """
        self.db_path = db_path
        self.forecaster = forecaster
        self.options = options
        self.enabled = options.enabled and options.profile_days > 0
        self.live = live
        self._tasks = tasks
        self._next = float("inf")

    def _load(self) -> dict[tuple[str, str], profile.Profile]:
        opts = self.options
        return profile.load(self.db_path, opts.profile_interval, opts.profile_days, opts.profile_min_days)

    async def start(self, now: float) -> None:
        """Learn the profiles of the history stored so far (in a thread: sqlite3, read only)."""
        if not self.enabled:
            return
        self.forecaster.profiles = await asyncio.to_thread(self._load)
        if self.live:
            self._next = now + RELEARN_EVERY

    def tick(self, now: float) -> None:
        """Start learning the profiles again when a day of engine time has passed since the last time."""
        if now < self._next:
            return
        self._next = now + RELEARN_EVERY

        async def relearn() -> None:
            try:
                self.forecaster.profiles = await asyncio.to_thread(self._load)
            except Exception:
                log.exception("learning the arrival profiles failed")

        task = asyncio.get_running_loop().create_task(relearn(), name="profiles-relearn")
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)
