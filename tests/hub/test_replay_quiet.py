"""``cxmon replay`` through quiet stretches: the picture follows the time cursor, at every speed alike.

A history's nights and the end of a range after its last event are replayed too: windows empty and
pot holes heal as the cursor passes, as they did live, and a range with no events at all still
shows the journey.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from cxmon.replay.session import ReplaySession, replayed_transitions
from cxmon.snapshot import Snapshot, State, Transition
from cxmon.store import Store
from tests.hub.helpers import until
from tests.quiet_night import CONFIG, EVENING_END, T0, evening_and_morning

MORNING = T0 + 3600.0 + 900.0
"""The first call after the quiet hour (longer than the longest window)."""


async def recorded(db: Path) -> None:
    """The evening's pot hole, an hour of nothing, three calls, stored in ``db``."""
    store = await Store(str(db)).open()
    await store.add(evening_and_morning(MORNING), "pbx")
    await store.close()


@contextlib.asynccontextmanager
async def replaying(session: ReplaySession) -> AsyncIterator[list[Snapshot]]:
    """Run ``session`` for the block; yield the snapshots it publishes, as they come."""
    seen: list[Snapshot] = []
    session.listeners.append(seen.append)
    runner = asyncio.create_task(session.run())
    try:
        yield seen
    finally:
        session.close()
        await runner


async def test_a_paced_replay_through_a_quiet_hour_heals_as_live_and_as_a_flat_out_one(
    tmp_path: Path,
) -> None:
    """Paced, the cursor walks the quiet hour with the picture following it: the evening's pot
    hole heals once its window has emptied (not just before the next call), snapshots are shown
    inside the hour, and the transitions are a flat-out replay's, one for one."""
    db = tmp_path / "quiet.db"
    await recorded(db)
    end = MORNING + 120.0
    flat = await replayed_transitions(CONFIG, db, T0, end)
    session = ReplaySession(CONFIG, db, T0, end, speed=1800.0, lead=0.0)
    paced: list[Transition] = []
    session.listeners.append(lambda snap: paced.extend(snap.transitions))
    async with replaying(session) as seen:
        await until(lambda: session.finished, tries=1200)
        await until(lambda: bool(seen) and seen[-1].ts >= end - 5.0, tries=200)
    healed = [t for t in flat if t.from_state is State.POTHOLE]
    assert [t for t in flat if t.to_state is State.POTHOLE] and healed, flat
    assert healed[0].ts <= EVENING_END + 300.0 + 120.0, (healed[0], EVENING_END)
    assert paced == flat
    inside = [s for s in seen if EVENING_END + 900.0 < s.ts < MORNING - 900.0]
    assert inside and all(step.state is State.OK for s in inside for step in s.steps)


async def test_a_range_with_no_events_shows_the_journey_at_its_end(tmp_path: Path) -> None:
    """A replay of the quiet hour alone (no event in it) shows the journey as it stood at the
    range's end, rather than waiting for a first snapshot that never comes."""
    db = tmp_path / "quiet.db"
    await recorded(db)
    start, end = EVENING_END + 1200.0, EVENING_END + 1800.0
    session = ReplaySession(CONFIG, db, start, end, speed=None)
    async with replaying(session) as seen:
        await until(lambda: session.finished and bool(seen), tries=600)
    last = seen[-1]
    assert start <= last.ts <= end
    assert [(s.name, s.state) for s in last.steps] == [("help", State.OK)]
