"""ReplaySource: a history database's events, in time order, at a chosen speed, with pause and skip.

Stored ``lost`` events are left out: the engine closes those contacts itself when their time comes,
as it did live. Time is the data's (the engine ticks on its data-driven grid), so the pot holes form
and heal at the same moments at every speed; the speed only sets how fast that time is walked.
Through a quiet stretch (a night, the range's end after its last event) heartbeats carry that time
on with the cursor, so the picture follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import cast

import aiosqlite

from collectors.base import Sink
from cxmon.events import ContactEvent, EventKind
from cxmon.rows import KIND, Row, decode_rows, event_from_columns
from cxmon.store_schema import SELECT_NEWEST_START, select_customer, select_rows

BATCH = 500
"""Rows read and emitted at a time when running flat out."""
STEP = 0.1
"""Wall seconds between paced batches."""
BEAT_EVERY = 1.0
"""Wall seconds between the heartbeats that carry the engine's time through a quiet stretch."""


async def stored_range(db_path: str | Path) -> tuple[float, float] | None:
    """The first and last event times in the database (None when it holds no events)."""
    uri = f"{Path(db_path).resolve().as_uri()}?mode=ro"
    async with (
        aiosqlite.connect(uri, uri=True) as db,
        db.execute("SELECT min(ts), max(ts) FROM events") as cur,
    ):
        row = await cur.fetchone()
    if row is None or row[0] is None:
        return None
    return float(row[0]), float(row[1])


PATH_SPAN = 86400.0
"""Seconds of a customer's history shown as their path (as live: the last 24 h)."""


async def customer_path(db_path: str | Path, customer_id: str, upto: float) -> list[ContactEvent]:
    """One customer's stored events of the 24 h up to ``upto`` (nothing after it), oldest first."""
    uri = f"{Path(db_path).resolve().as_uri()}?mode=ro"
    async with aiosqlite.connect(uri, uri=True) as db:
        select = select_customer(await event_columns(db))
        async with db.execute(select, (customer_id, upto - PATH_SPAN)) as cur:
            rows = await cur.fetchall()
    events = [event_from_columns(r) for r in rows]
    return [ev for ev in events if ev.ts <= upto]


async def event_columns(db: aiosqlite.Connection) -> set[str]:
    """The columns of the events table. History is read read-only, so a database of an older
    schema is not migrated: what it lacks is read as empty (cxmon.store_schema.select_rows)."""
    async with db.execute("PRAGMA table_info(events)") as cur:
        return {str(r[1]) for r in await cur.fetchall()}


async def replayed_rows(
    db_path: str | Path, start: float, end: float, limit: int | None = None
) -> AsyncGenerator[list[Row], None]:
    """The stored events of ``[start, end)`` a replay takes, oldest first, in batches: every one
    but the ``lost`` (the replaying engine closes those contacts itself, as it did live).

    Args:
        db_path: the history database (opened read-only).
        start: the first time read.
        end: events at or after this are left out.
        limit: read only the newest this many of the range (None: all).
    """
    uri = f"{Path(db_path).resolve().as_uri()}?mode=ro"
    async with aiosqlite.connect(uri, uri=True) as db:
        if limit is not None:
            async with db.execute(SELECT_NEWEST_START, (start, end, limit)) as cur:
                row = await cur.fetchone()
            if row is not None:  # the (limit + 1)-th newest: those after it are the newest ``limit``
                start = math.nextafter(float(row[0]), math.inf)
        select = select_rows(await event_columns(db))
        async with db.execute(select, (start, end)) as cur:
            while True:
                rows = await cur.fetchmany(BATCH)
                if not rows:
                    return
                # aiosqlite hands rows over as plain tuples (no row factory is set).
                yield cast(list[Row], [r for r in rows if r[KIND] != EventKind.LOST.value])


class ReplaySource:
    """Events of ``[start, end)`` from a history database, paced at ``speed`` (None: flat out)."""

    type = "replay"
    paced = False
    """The engine's time is the data's: it ticks on the data-driven grid whatever the speed."""

    def __init__(
        self,
        db_path: str | Path,
        start: float,
        end: float,
        *,
        speed: float | None = 1.0,
        skip_to: float | None = None,
        name: str = "replay",
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        """Build the source.

        Args:
            db_path: the history database (opened read-only).
            start: first event time replayed.
            end: events at or after this are left out.
            speed: replay seconds per wall second (None: as fast as possible).
            skip_to: run flat out up to this time, then at ``speed`` (a seek).
            name: the source's name in the engine.
            wall: the wall clock pacing is measured against.
        """
        self.db_path = db_path
        self.name = name
        self.start = start
        self.end = end
        self.speed = speed
        self.skip_to = skip_to
        self.wall = wall
        self.position = start
        """Replay time reached (the newest event time handed over, or the paced clock)."""
        self.finished = False
        self._running = asyncio.Event()
        self._running.set()
        self._changed = asyncio.Event()

    def clock(self) -> float:
        """Replay time (the engine's clock is the data's watermark; this is the cursor)."""
        return self.position

    @property
    def paused(self) -> bool:
        """True while the replay is held."""
        return not self._running.is_set()

    def pause(self, paused: bool) -> None:
        """Hold or resume the replay."""
        if paused:
            self._running.clear()
        else:
            self._running.set()
        self._changed.set()

    def set_speed(self, speed: float | None) -> None:
        """Change the speed (None: flat out)."""
        self.speed = speed
        self._changed.set()

    def skip(self, target: float) -> None:
        """Run flat out until ``target`` (only forward: a backward seek needs a fresh engine)."""
        self.skip_to = max(target, self.position)
        self._changed.set()

    def _beat(self, ts: float) -> ContactEvent:
        """A heartbeat at replay time ``ts``: the engine's time (its data's) moves on to it."""
        return ContactEvent(ts, EventKind.HEARTBEAT, "", "", "", self.name)

    async def _rows(self) -> AsyncGenerator[list[ContactEvent], None]:
        async with contextlib.aclosing(replayed_rows(self.db_path, self.start, self.end)) as batches:
            async for rows in batches:
                yield decode_rows(rows)
        if self.end != float("inf"):
            # The range's end, walked to like an event: the quiet stretch after the last event is
            # replayed too (windows empty, pot holes heal), and a range with no events still shows.
            yield [self._beat(self.end)]

    async def run(self, sink: Sink) -> None:
        """Emit the events in time order, paced; return when the range is done."""
        sink.set_up(True)
        pending: list[ContactEvent] = []
        mark_wall, mark_ts, mark_speed = self.wall(), self.position, self.speed
        handed = -math.inf  # the newest time handed over
        beat_wall = -math.inf
        # aclosing: a cancelled run closes the database itself. Left to the loop's finalizer, the
        # reader's close would run in a later task, or after the loop has closed (aiosqlite's thread
        # then fails with "Event loop is closed").
        async with contextlib.aclosing(self._rows()) as rows:
            async for batch in rows:
                pending.extend(batch)
                while pending:
                    if not self._running.is_set():
                        await self._running.wait()
                        mark_wall, mark_ts = self.wall(), self.position
                    if self.skip_to is not None and self.skip_to <= self.position:
                        self.skip_to = None
                        mark_wall, mark_ts = self.wall(), self.position
                    if self.speed != mark_speed:
                        mark_wall, mark_ts, mark_speed = self.wall(), self.position, self.speed
                    if self.speed is None or self.skip_to is not None:
                        horizon = self.skip_to if self.skip_to is not None else float("inf")
                        take = [ev for ev in pending[:BATCH] if ev.ts <= horizon]
                        if not take:
                            # Nothing more before the target: the cursor stops at it (a seek
                            # into a quiet stretch), and the replay goes on from there at its speed;
                            # a heartbeat brings the engine's picture to the target.
                            self.position = max(self.position, horizon)
                            if self.position > handed:
                                handed = self.position
                                await sink.emit([self._beat(handed)])
                            continue
                    else:
                        now_ts = mark_ts + (self.wall() - mark_wall) * self.speed
                        n = 0
                        while n < len(pending) and pending[n].ts <= now_ts:
                            n += 1
                        take = pending[:n]
                        if not take:
                            # Nothing due yet: the cursor walks on through the quiet stretch, and
                            # heartbeats take the engine's picture with it (windows empty as time
                            # passes, as they did live).
                            self.position = max(self.position, min(now_ts, pending[0].ts))
                            wall = self.wall()
                            if self.position > handed and wall - beat_wall >= BEAT_EVERY:
                                handed, beat_wall = self.position, wall
                                await sink.emit([self._beat(handed)])
                            self._changed.clear()
                            with contextlib.suppress(TimeoutError):
                                async with asyncio.timeout(STEP):
                                    await self._changed.wait()
                            continue
                    del pending[: len(take)]
                    await sink.emit(take)
                    self.position = max(self.position, take[-1].ts)
                    handed = max(handed, take[-1].ts)
                    await asyncio.sleep(0)
        if self.end != float("inf"):
            self.position = max(self.position, self.end)
        self.finished = True
