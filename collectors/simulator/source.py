"""SimulatorSource: runs the model paced against the wall clock (accelerated) or as fast as possible."""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING, Any

from collectors.base import checked_options
from collectors.simulator.model import simulate_events
from collectors.simulator.options import SimOptions, parse_options
from cxmon.events import ContactEvent

if TYPE_CHECKING:
    from collectors.base import Sink
    from cxmon.config import CollectorConfig, Config

PACE_INTERVAL = 0.05
"""Wall seconds between batches in paced mode."""
MAX_BATCH = 1000
"""Events per batch in "max" mode; the await on the sink between batches is the back-pressure."""


class SimulatorSource:
    """A simulated contact centre that owns the clock (a ``ClockedSource``)."""

    type = "simulator"

    def __init__(self, name: str, options: SimOptions) -> None:
        """Create the source.

        Args:
            name: collector name, put into every event's ``source``.
            options: validated options (see :func:`collectors.simulator.parse_options`).
        """
        self.name = name
        self.options = options
        self._start = options.start if options.start is not None else float(math.floor(time.time()))
        self._now = self._start

    @classmethod
    def validate(cls, options: dict[str, Any], path: str) -> list[str]:
        """Return every problem with a simulator ``[[collectors]]`` table, each with its key path."""
        return parse_options(options, path)[1]

    @classmethod
    def from_config(cls, collector: CollectorConfig, config: Config) -> SimulatorSource:
        """Build the source a validated ``[[collectors]]`` table describes.

        Raises:
            ConfigError: the options are invalid.
        """
        options = checked_options(parse_options, collector, config)
        return cls(collector.name, options)

    @property
    def start(self) -> float:
        """Epoch seconds the simulation starts (or started) at."""
        return self._start

    @property
    def paced(self) -> bool:
        """True when simulated time follows the wall clock (``speed`` a number), False for "max"."""
        return self.options.speed is not None

    def clock(self) -> float:
        """Return the simulated time up to which every event has been handed to the sink."""
        return self._now

    async def run(self, sink: Sink) -> None:
        """Generate events into ``sink`` until ``duration`` is reached, or forever until cancelled."""
        opts = self.options
        if opts.start is None:
            self._start = float(math.floor(time.time()))
        self._now = self._start
        until = None if opts.duration is None else self._start + opts.duration
        events = simulate_events(opts, self._start, until, source=self.name)
        sink.set_up(True)
        try:
            if opts.speed is None:
                await self._run_max(sink, events, until)
            else:
                await self._run_paced(sink, events, until, opts.speed)
        finally:
            sink.set_up(False)

    async def _run_max(self, sink: Sink, events: Any, until: float | None) -> None:
        batch: list[ContactEvent] = []
        append = batch.append
        for event in events:
            append(event)
            if len(batch) >= MAX_BATCH:
                self._now = event.ts
                await sink.emit(batch)
                batch = []
                append = batch.append
                # emit() may not suspend when the engine keeps up; give the loop a turn anyway.
                await asyncio.sleep(0)
        if batch:
            self._now = batch[-1].ts
            await sink.emit(batch)
        if until is not None:
            self._now = until

    async def _run_paced(self, sink: Sink, events: Any, until: float | None, speed: float) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        pending: ContactEvent | None = next(events, None)
        beat = 0
        while True:
            beat += 1
            # Sleep to a fixed grid so the simulated clock does not drift behind the wall clock.
            await asyncio.sleep(max(0.0, t0 + beat * PACE_INTERVAL - loop.time()))
            now = self._start + (loop.time() - t0) * speed
            if until is not None:
                now = min(now, until)
            batch: list[ContactEvent] = []
            while pending is not None and pending.ts <= now:
                batch.append(pending)
                pending = next(events, None)
            if batch:
                await sink.emit(batch)
            # Only now: the clock says every event up to it has been handed over.
            self._now = max(self._now, now)
            if until is not None and now >= until:
                return
