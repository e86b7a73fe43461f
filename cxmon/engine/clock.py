"""Engine time: whose clock the engine follows, how far apart its ticks are, and where they fall.

Engine time is a simulator's (or replay's) clock when one drives the run, the events' own in a
backfill (``clock="events"``: the newest event's time), and the wall otherwise. A paced run ticks
on a timer; an unpaced one (a backfill, a simulator running as fast as it can) ticks at every tick
boundary a batch of events crosses, so the detector sees history unfold as it would have live.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Literal

from collectors.base import Source
from cxmon.config import Config

EVENT_TICK_MIN = 5.0
"""Ticks are at least this far apart in engine time when a simulator runs as fast as it can."""
BACKFILL_TICK = 60.0
"""Tick spacing of backfills (``clock="events"``): a minute of history at a time, like the minute figures."""

QUEUE_CATCH_UP = 1.0
"""Seconds a tick on a source's accelerated clock waits at most for the batches already queued."""

ClockArg = Callable[[], float] | Literal["events"] | None


class EngineClock:
    """Engine time, the tick spacing, and the placing of ticks in batches of the data's own time."""

    def __init__(
        self,
        config: Config,
        clock: ClockArg,
        sources: Sequence[Source],
        watermark: Callable[[], float],
        duration: float | None,
    ) -> None:
        """Choose engine time.

        Args:
            config: the monitor's tick, windows and clock skew are read from it.
            clock: a callable, ``"events"`` (the data's own time), or None (a clocked source's
                clock if there is one, else the wall).
            sources: the engine's sources (one of them may carry a clock).
            watermark: the newest event time the aggregator has seen.
            duration: stop after this much engine time (None: no limit).
        """
        self.config = config
        self.event_clock = clock == "events"
        """Engine time is the events' own (a backfill)."""
        self.paced = True
        """Engine time runs on by itself (ticks on a timer), not only as events arrive."""
        self.source_clock = False
        """Engine time is a paced source's own (accelerated) clock."""
        if callable(clock):
            self._clock: Callable[[], float] = clock
        elif self.event_clock:
            self._clock = watermark
            self.paced = False
        else:
            clocked = next((s for s in sources if callable(getattr(s, "clock", None))), None)
            if clocked is not None:
                self.paced = bool(getattr(clocked, "paced", True))
                self.source_clock = self.paced
                # Unpaced, the source runs ahead of what has been processed: time is the data's.
                self._clock = clocked.clock if self.paced else watermark  # type: ignore[attr-defined]
            else:
                self._clock = time.time
        if self.paced:
            self.every = config.monitor.tick
        elif self.event_clock:
            self.every = max(config.monitor.tick, BACKFILL_TICK)
        else:
            self.every = max(config.monitor.tick, EVENT_TICK_MIN)
        """Engine time between two ticks."""
        self.next_tick: float | None = None
        """The next tick boundary of an unpaced run (None until its first event)."""
        self.start_time: float | None = None
        self.deadline: float | None = None
        """Engine time a paced run stops at (None: none)."""
        self.duration = duration
        self.quiet_until: Callable[[], float] | None = None
        """Engine time up to which a tick with no new data would change nothing (-inf: a tick
        may change something now), as the tick path tells it; None: every tick is made."""

    def now(self) -> float:
        """Engine time (epoch seconds)."""
        return self._clock()

    def limit(self, source: Source) -> float:
        """The newest timestamp ``source`` may send: its clock (or the wall's, or engine time's,
        whichever is ahead) plus ``max_clock_skew``; no limit but finiteness for a backfill, whose
        time is the data's own."""
        if self.event_clock:
            return math.inf
        ahead = max(time.time(), self.now())
        clock = getattr(source, "clock", None)
        if callable(clock):
            ahead = max(ahead, float(clock()))
        return ahead + self.config.monitor.max_clock_skew

    def run_for(self, duration: float | None) -> None:
        """Start the run's time: stop after ``duration`` of engine time (None: the one given before)."""
        if duration is not None:
            self.duration = duration
        if self.duration is not None and self.paced:
            self.deadline = self.now() + self.duration

    def past_deadline(self) -> bool:
        """Whether a paced run has had the engine time it asked for."""
        return self.deadline is not None and self.now() >= self.deadline

    @property
    def end(self) -> float:
        """Engine time an unpaced run ends at (inf: when its sources do)."""
        if self.duration is None or self.start_time is None:
            return math.inf
        return self.start_time + self.duration

    def place(
        self,
        stamps: Sequence[float],
        add: Callable[[int, int], None],
        tick: Callable[[float], None],
        reached: Callable[[float], None] | None = None,
    ) -> int | None:
        """Feed one batch of an unpaced run, ticking at every tick boundary it crosses.

        Events between two boundaries go to the aggregator in one call.

        Args:
            stamps: the batch's event times, in the order they came.
            add: hands events ``[i:j]`` of the batch to the aggregator.
            tick: ticks (unpublished or published) at an engine time.
            reached: told the time of the event that crossed a boundary, before the ticks (the
                source is alive up to it: ticks inside a batch must know).

        Returns:
            Where the run's duration ends inside the batch (the events from there on are not part
            of the run), or None.
        """
        if not stamps:
            return None
        if self.next_tick is None:
            self.start_time = stamps[0]
            self.next_tick = self._grid(stamps[0])
        next_tick = self.next_tick
        limit = self.end
        # Every event before ``i`` is older than the next boundary (and within the limit), so
        # the first event at or past a boundary is where the running maximum first reaches it.
        newest_yet = list(accumulate(stamps, max))
        i, n = 0, len(stamps)
        while i < n:
            j = min(bisect_left(newest_yet, next_tick, i), bisect_right(newest_yet, limit, i))
            if j > i:
                add(i, j)
            if j == n:
                return None
            ts = stamps[j]
            if ts > limit:
                return j
            if reached is not None:
                reached(ts)
            self.catch_up(ts, tick)
            next_tick = self.next_tick
            i = j
        return None

    def _grid(self, ts: float) -> float:
        """The first tick of a run whose data begins at ``ts`` (after a gap, the last before it):
        a backfill's ticks fall on whole multiples of its spacing (whole minutes), so the same
        history is judged at the same moments however it is cut into imports; other unpaced runs
        tick from ``ts``."""
        if not self.event_clock:
            return ts
        return math.floor(ts / self.every) * self.every

    def catch_up(self, ts: float, tick: Callable[[float], None]) -> None:
        """Tick at every boundary up to ``ts``. Across a gap in the data longer than the longest
        window, the ticks that can change nothing are left out: once :attr:`quiet_until` says no
        tick before the next data can (every window empty, no contact open, no timer due), the
        next tick is the grid's last one before the stretch the next data's windows look back on,
        or before the next timer. The grid itself is kept, so the ticks that are made are the ones
        ticking through would make, and so is the outcome (a live engine's)."""
        assert self.next_tick is not None
        if not math.isfinite(ts):
            return  # never reached past the sinks' checks; a loop to infinity must not be possible
        longest = max(self.config.monitor.windows)
        every = self.every
        quiet_until = self.quiet_until
        while self.next_tick <= ts:
            if quiet_until is not None and ts - self.next_tick > longest + every:
                until = min(quiet_until(), ts - longest)
                if until < self.next_tick + every:
                    pass  # a tick now can change something (or one is due): no jump
                elif self.event_clock:
                    # Whole multiples, where an import resumed after the gap would begin.
                    self.next_tick = max(self.next_tick, self._grid(until))
                else:
                    # Stepped as ticking would step it: the ticks after the jump are the same floats.
                    next_tick = self.next_tick
                    while next_tick + every <= until:
                        next_tick += every
                    self.next_tick = next_tick
            tick(self.next_tick)
            self.next_tick += every
