"""Reading the history database: events (as events or as rows), offsets, transitions, acks, journey."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Collection, Sequence
from typing import TYPE_CHECKING, Any

import aiosqlite

from collectors.base import Offset
from cxmon.events import ContactEvent
from cxmon.recorded_config import config_from_text
from cxmon.rows import Row, event_from_columns
from cxmon.snapshot import Ack, State, Transition
from cxmon.store_schema import SELECT_CUSTOMER, SELECT_EVENTS, SELECT_JOURNEY, SELECT_ROWS, select_source_rows

if TYPE_CHECKING:
    from cxmon.config import Config


class StoreReads:
    """The queries of :class:`cxmon.store.Store`, on its one connection."""

    path: str

    @property
    def db(self) -> aiosqlite.Connection:
        """The open connection."""
        raise NotImplementedError

    async def load_config(self) -> Config | None:
        """Return the journey this history was last written with, or None when it records none.

        Raises:
            ConfigError: the recorded journey is not valid (a database edited by hand).
        """
        async with self.db.execute(SELECT_JOURNEY) as cur:
            row = await cur.fetchone()
        return None if row is None else config_from_text(row[1], f"{self.path} (recorded journey)")

    async def schema_version(self) -> int:
        """Return the schema version of the open database."""
        async with self.db.execute("SELECT version FROM schema_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def load_offset(self, source: str) -> Offset | None:
        """Return the committed offset of ``source``, or None."""
        async with self.db.execute(
            "SELECT file_id, position FROM source_offsets WHERE source = ?", (source,)
        ) as cur:
            row = await cur.fetchone()
        return Offset(row[0], int(row[1])) if row else None

    async def events(
        self, start: float | None = None, end: float | None = None, batch: int = 10_000
    ) -> list[ContactEvent]:
        """Return stored events with ``start ≤ ts < end``, oldest first."""
        return [ev async for ev in self.iter_events(start, end, batch)]

    async def iter_events(
        self, start: float | None = None, end: float | None = None, batch: int = 10_000
    ) -> AsyncIterator[ContactEvent]:
        """Yield stored events with ``start ≤ ts < end``, oldest first, fetched in batches."""
        lo = float("-inf") if start is None else start
        hi = float("inf") if end is None else end
        async with self.db.execute(SELECT_EVENTS, (lo, hi)) as cur:
            while True:
                rows = await cur.fetchmany(batch)
                if not rows:
                    break
                for row in rows:
                    yield event_from_columns(row)

    async def iter_rows(
        self, start: float | None = None, end: float | None = None, batch: int = 10_000
    ) -> AsyncIterator[list[Row]]:
        """Yield stored events with ``start ≤ ts < end``, oldest first, as lists of rows
        (:mod:`cxmon.rows`, NULLs as its sentinels), which the aggregator takes as they are:
        replaying a long history then builds no event objects."""
        lo = float("-inf") if start is None else start
        hi = float("inf") if end is None else end
        async with self.db.execute(SELECT_ROWS, (lo, hi)) as cur:
            while True:
                rows = await cur.fetchmany(batch)
                if not rows:
                    break
                yield rows  # type: ignore[misc]

    async def newest_start(self, start: float, end: float, sources: Collection[str], limit: int) -> float:
        """Where the newest ``limit`` events of ``sources`` with ``start ≤ ts < end`` begin (``start``
        when there are no more than that)."""
        names = sorted(sources)
        if not names or limit <= 0:
            return end
        marks = ",".join("?" * len(names))
        async with self.db.execute(
            f"SELECT ts FROM events WHERE ts >= ? AND ts < ? AND source IN ({marks}) "
            "ORDER BY ts DESC LIMIT 1 OFFSET ?",
            (start, end, *names, limit),
        ) as cur:
            row = await cur.fetchone()
        # The (limit + 1)-th newest: those after it are the newest ``limit``.
        return start if row is None else math.nextafter(float(row[0]), math.inf)

    async def newest_ts(self, sources: Collection[str]) -> float | None:
        """Return the time of the newest stored event of ``sources`` (None: none stored)."""
        names = sorted(sources)
        if not names:
            return None
        marks = ",".join("?" * len(names))
        async with self.db.execute(f"SELECT max(ts) FROM events WHERE source IN ({marks})", names) as cur:
            row = await cur.fetchone()
        return None if row is None or row[0] is None else float(row[0])

    async def iter_source_rows(
        self, start: float, end: float, sources: Collection[str], batch: int = 10_000
    ) -> AsyncIterator[list[Row]]:
        """Yield the events of ``sources`` with ``start ≤ ts < end``, oldest first, as lists of rows
        (see :meth:`iter_rows`)."""
        names = sorted(sources)
        if not names:
            return
        async with self.db.execute(select_source_rows(len(names)), (start, end, *names)) as cur:
            while True:
                rows = await cur.fetchmany(batch)
                if not rows:
                    break
                yield rows  # type: ignore[misc]

    async def count_events(self) -> int:
        """Return how many events are stored."""
        async with self.db.execute("SELECT count(*) FROM events") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def customer_events(self, customer_id: str, since: float | None = None) -> list[ContactEvent]:
        """Return one customer's events, oldest first."""
        async with self.db.execute(
            SELECT_CUSTOMER, (customer_id, float("-inf") if since is None else since)
        ) as cur:
            rows = await cur.fetchall()
        return [event_from_columns(r) for r in rows]

    async def transitions(self, start: float | None = None, end: float | None = None) -> list[Transition]:
        """Return stored transitions with ``start ≤ ts < end``, oldest first."""
        async with self.db.execute(
            "SELECT ts, step, channel, queue, from_state, to_state, reason, measure FROM transitions "
            "WHERE ts >= ? AND ts < ? ORDER BY ts, id",
            (float("-inf") if start is None else start, float("inf") if end is None else end),
        ) as cur:
            rows = await cur.fetchall()
        return [_transition(r) for r in rows]

    async def last_transitions(self) -> dict[str, Transition]:
        """Return each step's newest stored transition (the state the history leaves it in)."""
        async with self.db.execute(
            "SELECT ts, step, channel, queue, from_state, to_state, reason, measure FROM transitions "
            "WHERE id IN (SELECT max(id) FROM transitions GROUP BY step)"
        ) as cur:
            rows = await cur.fetchall()
        return {r[1]: _transition(r) for r in rows}

    async def acks(self) -> list[Ack]:
        """Return every stored acknowledgement, oldest first."""
        async with self.db.execute("SELECT step, who, note, ts, until FROM acks ORDER BY ts, id") as cur:
            rows = await cur.fetchall()
        return [Ack(step=r[0], who=r[1], note=r[2], ts=r[3], until=r[4]) for r in rows]


def _transition(r: Sequence[Any]) -> Transition:
    """A transition from its stored columns (ts, step, channel, queue, from, to, reason, measure)."""
    return Transition(
        ts=r[0],
        step=r[1],
        channel=r[2],
        queue=r[3],
        from_state=State(r[4]),
        to_state=State(r[5]),
        reason=r[6],
        measure=r[7],
    )
