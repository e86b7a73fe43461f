"""A long gap in the data (a night): a data-driven clock leaves out only the ticks that change nothing.

A pot hole open when the calls stop heals once its window has emptied, as it did on the live
floor, and the minute figures of the window emptying are stored: not both put off until just
before the next morning's calls.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from cxmon.engine import Engine
from cxmon.snapshot import State
from tests.helpers import BatchFeed
from tests.quiet_night import CONFIG, EVENING_END, T0, evening_and_morning

NIGHT = 8 * 3600.0


async def backfill(db: Path, every_tick: bool) -> None:
    """Import the evening and the morning into ``db`` (``every_tick``: no tick left out)."""
    events = evening_and_morning(T0 + NIGHT)
    engine = Engine(CONFIG, db_path=str(db), sources=[BatchFeed(events)], clock="events")
    if every_tick:
        engine.clock.quiet_until = None
    async with engine:
        await engine.run()


def stored(db: Path) -> tuple[list[Any], list[Any]]:
    con = sqlite3.connect(db)
    try:
        transitions = con.execute(
            "SELECT ts, step, from_state, to_state, reason FROM transitions ORDER BY id"
        ).fetchall()
        minutes = con.execute("SELECT * FROM snapshots ORDER BY minute, step, channel, queue").fetchall()
    finally:
        con.close()
    return transitions, minutes


async def test_a_pot_hole_open_at_nightfall_heals_when_its_window_empties(tmp_path: Path) -> None:
    """The evening's pot hole heals within its window (5m) and a minute of the last call, not just
    before the morning's first (as it did when a night was skipped after a single tick)."""
    db = tmp_path / "night.db"
    await backfill(db, every_tick=False)
    transitions, _ = stored(db)
    holes = [t for t in transitions if t[3] == State.POTHOLE.value]
    healed = [t for t in transitions if t[2] == State.POTHOLE.value]
    assert holes and healed, transitions
    assert healed[0][0] <= EVENING_END + 300.0 + 120.0, (healed[0], EVENING_END)


async def test_leaving_out_a_nights_quiet_ticks_changes_nothing(tmp_path: Path) -> None:
    """The backfill stores the transitions and minute figures of one that ticks through the night
    minute by minute, and the night's quiet minutes are left out (fewer minute figures than minutes)."""
    await backfill(tmp_path / "jumps.db", every_tick=False)
    await backfill(tmp_path / "every.db", every_tick=True)
    jumps, every = stored(tmp_path / "jumps.db"), stored(tmp_path / "every.db")
    assert jumps == every
    minutes = jumps[1]
    assert minutes and len({m[0] for m in minutes}) < NIGHT / 60 / 4
    # The window emptying after the last call is in the minute figures (written minute by minute).
    assert any(T0 + 600.0 <= m[0] <= T0 + 900.0 for m in minutes), [m[0] for m in minutes][:20]
