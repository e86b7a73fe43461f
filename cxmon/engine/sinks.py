"""The engine's door: the sink each source hands its batches to (``collectors.base.Sink``)."""

from __future__ import annotations

import logging
import marshal
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from collectors.base import Offset, Source
from cxmon.events import MAX_COUNT, ContactEvent
from cxmon.rows import TS, Row, heartbeats

if TYPE_CHECKING:
    from cxmon.engine.core import Engine

log = logging.getLogger("cxmon.engine.core")


class SourceSink:
    """The Sink a source talks to (collectors.base.Sink)."""

    def __init__(self, engine: Engine, source: Source) -> None:
        self._engine = engine
        self.name = source.name
        self._source = source
        self.health = engine.health[source.name]
        self.emitted = 0
        """Events the source has handed over (counted once they are on the engine's queue; its
        heartbeats are not events)."""
        self._queued = 0
        """Batches of this source put on the engine's queue (or being put)."""
        self._done = 0
        """Of those, the batches the engine has taken in."""
        self._said: list[tuple[int, bool]] = []
        """Up or down, as the source said it, each after the batches it had handed over by then (one
        entry per batch at most: no longer than the engine's queue)."""

    async def emit(self, events: Sequence[ContactEvent], offset: Offset | None = None) -> None:
        if not events and offset is None:
            return
        bad = self._bad_stamps([ev.ts for ev in events])
        for i, ev in enumerate(events):
            # A wait, duration or score that is not a finite number would break the sums and
            # histograms of a whole batch.
            for name in ("wait", "duration", "score"):
                value = getattr(ev, name)
                if value is not None and not math.isfinite(value) and i not in bad:
                    bad.add(i)
                    self.error(f"{self.name}: event {i + 1} of a batch", f"rejected: {name} {value!r}")
            # A count past any real one (1e308 agents from a feed) would fail the store's commit of
            # the whole batch: an integer past 64 bits cannot be written.
            for name in ("agents_staffed", "agents_available", "contacts_waiting"):
                value = getattr(ev, name)
                if value is not None and not 0 <= value <= MAX_COUNT and i not in bad:
                    bad.add(i)
                    self.error(
                        f"{self.name}: event {i + 1} of a batch",
                        f"rejected: {name} {value!r:.40} is not a count from 0 to {MAX_COUNT:,}",
                    )
        if bad:
            events = [ev for i, ev in enumerate(events) if i not in bad]
        await self._put((self.name, events, offset, None))
        self.emitted += len(events) - heartbeats(events, False)

    async def emit_rows(self, rows: Sequence[Row], offset: Offset | None, encoded: bytes) -> None:
        """Hand over a batch as rows (:mod:`cxmon.rows`) with their marshalled form ``encoded``:
        what a :class:`~cxmon.ingest.ProcessSource` relays from its child (whose readers check
        every number of a line; the timestamps are checked here again, cheaply)."""
        if not rows and offset is None:
            return
        bad = self._bad_stamps([r[TS] for r in rows])
        if bad:
            rows = [r for i, r in enumerate(rows) if i not in bad]
            encoded = marshal.dumps(list(rows))
        await self._put((self.name, rows, offset, encoded))
        self.emitted += len(rows) - heartbeats(rows, True)

    async def _put(self, item: tuple[str, Sequence[Any], Offset | None, bytes | None]) -> None:
        # Counted before the put: an up or down said while it waits for room comes after it.
        self._queued += 1
        try:
            await self._engine._queue.put(item)
        except BaseException:
            self._queued -= 1
            self._said = [(min(after, self._queued), up) for after, up in self._said]
            self._apply_said()
            raise

    def _bad_stamps(self, stamps: Sequence[float]) -> set[int]:
        """Positions of timestamps that are not finite or lie too far ahead of the source's clock.

        Each is reported (counted, with the event's position in its batch); none reaches the
        engine, so a bad stamp can neither stop a tick nor move engine time.
        """
        limit = self._engine.clock_limit(self._source)
        if not stamps or (math.isfinite(sum(stamps)) and min(stamps) >= 0.0 and max(stamps) <= limit):
            return set()  # the usual case, checked in C
        skew = self._engine.config.monitor.max_clock_skew
        bad: set[int] = set()
        for i, ts in enumerate(stamps):
            if not math.isfinite(ts) or ts < 0.0:
                why = f"timestamp {ts!r} is not a finite time"
            elif ts > limit:
                why = (
                    f"timestamp {ts:.0f} is {ts - limit + skew:.0f}s ahead of the source's clock "
                    f"(max_clock_skew {skew:.0f}s)"
                )
            else:
                continue
            if len(bad) < 20:
                self.error(f"{self.name}: event {i + 1} of a batch", f"rejected: {why}")
            else:
                self.health.errors_total += 1
            bad.add(i)
        return bad

    def error(self, where: str, msg: str) -> None:
        self.health.errors_total += 1
        line = f"{where}: {msg}"
        self.health.last_error = line
        self._engine.errors.append(f"[{self.name}] {line}")
        log.warning("%s: %s", self.name, line)

    def set_up(self, up: bool) -> None:
        """The source's input is up or down: it counts from the moment the engine has taken in every
        batch the source handed over before saying so. (Whatever the source read before it lost its
        input is good; a backfill's reader that finished long before the engine did is not down
        for the batches still queued.)"""
        said = self._said
        if said and said[-1][0] == self._queued:
            said[-1] = (self._queued, up)  # only the last word after the same batch counts
        else:
            said.append((self._queued, up))
        self._apply_said()

    def batch_done(self) -> None:
        """The engine has taken in one more of this source's batches."""
        self._done += 1
        if self._said:
            self._apply_said()

    def _apply_said(self) -> None:
        said, done = self._said, self._done
        while said and said[0][0] <= done:
            _, up = said.pop(0)
            self.health.say_up(up, self._engine.now())

    async def load_offset(self) -> Offset | None:
        store = self._engine.store
        return None if store is None else await store.load_offset(self.name)
