"""ReplaySession: the engine over a ReplaySource, as a Feed the dashboard shows, with seek and speed.

Seeking forward runs the same engine flat out to the target. Seeking back starts a fresh engine at
the beginning of the range and runs it flat out to the target: a pot hole's state depends on
everything before it, so this is the only way the picture at the target is the one seen live.

For the same reason the range's beginning is not a blank: each engine first runs, flat out and
unseen, through the history of the span before it that the thresholds look at (the span a live
engine reads back as it starts, cxmon.engine.warm), so a replay from 09:00 opens on the windows and
the pot holes the floor saw at 09:00, not on empty windows that take an hour to fill. The day
before that span is taken in first, without ticks, for the customers' strikes (24 h) and the
contacts still open.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from cxmon.config import Config
from cxmon.engine import Engine
from cxmon.engine.warm import WARM_MAX_EVENTS, take_in, warm_span
from cxmon.events import ContactEvent
from cxmon.replay.source import ReplaySource, customer_path, replayed_rows
from cxmon.snapshot import EMPTY_SNAPSHOT, Ack, Snapshot, Transition
from cxmon.windows import STRIKE_WINDOW

SPEEDS: tuple[float | None, ...] = (1.0, 10.0, 60.0, None)
"""The speeds ``<`` and ``>`` step through (None: as fast as possible)."""


def speed_text(speed: float | None) -> str:
    """``1×``, ``10×``, ``max``."""
    return "max" if speed is None else f"{speed:g}×"


class ReplaySession:
    """A Feed over a replayed history: ``latest``, ``subscribe()``; plus pause, speed and seek."""

    def __init__(
        self,
        config: Config,
        db_path: str | Path,
        start: float,
        end: float,
        *,
        speed: float | None = 1.0,
        lead: float | None = None,
    ) -> None:
        """Build the session; :meth:`run` replays.

        Args:
            config: the journey to judge by (the one recorded in the database).
            db_path: the history database.
            start: replay from this time.
            end: up to this time.
            speed: replay seconds per wall second (None: as fast as possible).
            lead: seconds of history before ``start`` run through unseen first (default: the
                span the thresholds look at, :func:`cxmon.engine.warm.warm_span`; 0: none).
        """
        self.config = config
        self.db_path = db_path
        self.start = start
        self.lead = warm_span(config) if lead is None else lead
        self.end = end
        self.speed = speed
        self.paused = False
        self.engine: Engine | None = None
        self.source: ReplaySource | None = None
        self.restarts = 0
        self.listeners: list[Callable[[Snapshot], None]] = []
        """Called with every snapshot published (none skipped), after the feed has it."""
        self._latest = EMPTY_SNAPSHOT
        self._seq = 0
        self._changed = asyncio.Event()
        self._restart: float | None = None
        self._wake = asyncio.Event()
        self._closed = False

    # ------------------------------------------------------------------ controls

    @property
    def position(self) -> float:
        """The replay's time cursor (at the range's beginning while the lead-in runs)."""
        return max(self.start, self.source.position) if self.source is not None else self.start

    @property
    def aim(self) -> float:
        """Where the cursor is bound: the target of a seek not reached yet (a paused replay runs to
        none), else the cursor. Seeks add up from here, so ``] ] ]`` while paused is three minutes
        on and ``[ [`` two back, not one minute on and the range's beginning."""
        if self._restart is not None:
            return self._restart
        source = self.source
        if source is not None and source.skip_to is not None and source.skip_to > source.position:
            return max(self.start, source.skip_to)
        return self.position

    @property
    def finished(self) -> bool:
        """True once the whole range has been replayed (until a seek back)."""
        return self.source is not None and self.source.finished

    def set_speed(self, speed: float | None) -> None:
        """Replay at ``speed`` (None: flat out)."""
        self.speed = speed
        if self.source is not None:
            self.source.set_speed(speed)

    def faster(self, step: int = 1) -> float | None:
        """Move ``step`` places along :data:`SPEEDS`; return the new speed."""
        i = SPEEDS.index(self.speed) if self.speed in SPEEDS else 0
        self.set_speed(SPEEDS[max(0, min(len(SPEEDS) - 1, i + step))])
        return self.speed

    def toggle_pause(self) -> bool:
        """Hold or resume the replay; return whether it is paused now."""
        self.paused = not self.paused
        if self.source is not None:
            self.source.pause(self.paused)
        return self.paused

    def seek(self, delta: float) -> float:
        """Move the cursor by ``delta`` seconds (clamped to the range); return the target."""
        target = max(self.start, min(self.end, self.aim + delta))
        if (
            target >= self.position
            and self._restart is None
            and self.source is not None
            and not self.source.finished
        ):
            self.source.skip(target)
        else:
            self._restart = target
            self._wake.set()
            if self.engine is not None:
                self.engine.stop()
        return target

    # ------------------------------------------------------------------ Feed

    @property
    def latest(self) -> Snapshot:
        """The newest snapshot of the current engine."""
        return self._latest

    async def subscribe(self) -> AsyncIterator[Snapshot]:
        """Yield each new snapshot (newest only), across seeks back."""
        seen = -1
        while True:
            if self._seq != seen:
                seen = self._seq
                yield self._latest
                continue
            if self._closed:
                return
            self._changed.clear()
            await self._changed.wait()

    async def acknowledge(self, step: str, who: str, note: str, until: float | None = None) -> Ack:
        """Acknowledge inside the replay (shown, not stored: the history is read-only)."""
        if self.engine is None:
            raise KeyError(step)
        return await self.engine.acknowledge(step, who, note, until)

    async def customer_leaders(self, limit: int = 20) -> list[tuple[str, int]]:
        """The strike leaders as of the cursor."""
        return [] if self.engine is None else await self.engine.customer_leaders(limit)

    async def customer_path(self, customer_id: str) -> list[ContactEvent]:
        """The customer's recorded events of the 24 h up to the time cursor, read from the database."""
        return await customer_path(self.db_path, customer_id, self.position)

    # ------------------------------------------------------------------ running

    def _publish(self, snap: Snapshot) -> None:
        if snap.ts < self.start:
            return  # the lead-in: its transitions reach the screen in the recent ones of the first shown
        self._latest = snap
        self._seq += 1
        self._changed.set()
        for listener in self.listeners:
            listener(snap)

    async def run(self) -> None:
        """Replay; after the end, wait for a seek back (until :meth:`close`)."""
        skip_to: float | None = None
        while not self._closed:
            self._restart = None
            target = self.start if skip_to is None else max(self.start, skip_to)
            self.source = ReplaySource(
                self.db_path, self.start - self.lead, self.end, speed=self.speed, skip_to=target
            )
            self.source.pause(self.paused)
            engine = Engine(self.config, store=False, sources=[self.source])
            self.engine = engine
            engine.add_listener(self._publish)
            lead_from = self.start - self.lead
            # What was usual then, from the minute figures stored before the lead-in (the replay
            # learns its own minutes from there, as the live engine did): without it the replay said
            # "Baselines: learning" over weeks of history and missed every "worse than usual" WATCH.
            await asyncio.to_thread(engine.detector.baselines.load, str(self.db_path), lead_from)
            # The day before the lead-in, taken in without ticks: customers' strikes (24 h) and the
            # contacts still open at the lead-in's start are the ones the floor's monitor had.
            day = replayed_rows(self.db_path, lead_from - STRIKE_WINDOW, lead_from, limit=WARM_MAX_EVENTS)
            async with contextlib.aclosing(day) as batches:
                await take_in(engine.aggregator, batches, lambda: self._closed or self._restart is not None)
            async with engine:
                await engine.run()
            if self._closed:
                break
            if self._restart is None:
                self._wake.clear()
                await self._wake.wait()
            if self._restart is not None:
                skip_to = self._restart
                self.restarts += 1

    def close(self) -> None:
        """End the replay."""
        self._closed = True
        self._wake.set()
        if self.engine is not None:
            self.engine.stop()
        self._changed.set()


async def replay_flat_out(
    config: Config, db_path: str | Path, start: float, end: float, listener: Callable[[Snapshot], None]
) -> None:
    """Replay ``[start, end)`` flat out, handing ``listener`` every snapshot (checks and tests)."""
    session = ReplaySession(config, db_path, start, end, speed=None)
    session.listeners.append(listener)
    runner = asyncio.create_task(session.run())
    try:
        while not session.finished and not runner.done():
            await asyncio.sleep(0.05)
    finally:
        session.close()
        await runner


async def replayed_transitions(
    config: Config, db_path: str | Path, start: float, end: float
) -> list[Transition]:
    """Replay ``[start, end)`` flat out and return every transition, in order (checks and tests)."""
    seen: list[Transition] = []
    await replay_flat_out(config, db_path, start, end, lambda snap: seen.extend(snap.transitions))
    return seen
