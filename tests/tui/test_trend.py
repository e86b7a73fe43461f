"""Trend arrows show which way the number moves (↑ rising, ↓ falling); colour alone says good or bad."""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Callable
from pathlib import Path

from collectors.base import Sink
from cxmon.config import Config, loads
from cxmon.engine import Engine
from cxmon.events import ContactEvent, EventKind
from cxmon.snapshot import Snapshot, StepStatus
from cxmon.tui.format import trend_arrow
from cxmon.tui.widgets.journey_map import tile_text
from tests.helpers import sim_config

START = 1767600000.0
MINUTES = 10


def headline_config(measure: str, direction: str, breach: str) -> Config:
    """One step whose only threshold (and so its headline) is ``measure`` over a 60 s window."""
    text = f"""
[monitor]
windows = ["60s", "5m"]
panes = 6
short_abandon = "5s"
stale_after = "30m"
lost_after = "1h"

[journey]
queues = ["q1"]

[[journey.steps]]
name = "help"
headline = "{measure}"
match = [{{ channel = "voice", queue = "q*" }}]
  [[journey.steps.thresholds]]
  measure = "{measure}"
  window = "60s"
  breach = {breach}
  direction = "{direction}"
  for = "1h"
"""
    return loads(text, "<trend>")


class MinuteSource:
    """A finite source: each minute ``i``, the events ``make(i, ts)`` returns."""

    name = "feed"
    type = "test"

    def __init__(self, make: Callable[[int, float], list[ContactEvent]]) -> None:
        self.make = make

    async def run(self, sink: Sink) -> None:
        for i in range(MINUTES):
            await sink.emit(self.make(i, START + 60.0 * i))
        # One more event a minute later, so the last minute is ticked through.
        await sink.emit([self._heartbeat(START + 60.0 * MINUTES + 1)])

    @staticmethod
    def _heartbeat(ts: float) -> ContactEvent:
        return ContactEvent(ts=ts, kind=EventKind.HEARTBEAT, contact_id="", channel="voice", queue="q1")


def calls(i: int, ts: float, abandoned: int, total: int = 20) -> list[ContactEvent]:
    """``total`` calls in minute ``i``: ``abandoned`` of them hang up after 30 s, the rest are answered."""
    out = []
    for n in range(total):
        cid = f"c{i}-{n}"
        t = ts + n
        out.append(ContactEvent(ts=t, kind=EventKind.ARRIVED, contact_id=cid, channel="voice", queue="q1"))
        if n < abandoned:
            kind, wait = EventKind.ABANDONED, 30.0
        else:
            kind, wait = EventKind.ANSWERED, 10.0
        out.append(
            ContactEvent(ts=t + wait, kind=kind, contact_id=cid, channel="voice", queue="q1", wait=wait)
        )
    return out


def scores(i: int, ts: float, score: float) -> list[ContactEvent]:
    """Ten answered calls in minute ``i``, each scored ``score`` in the survey after it."""
    out = []
    for n in range(10):
        cid, t = f"s{i}-{n}", ts + n
        out += [
            ContactEvent(ts=t, kind=EventKind.ARRIVED, contact_id=cid, channel="voice", queue="q1"),
            ContactEvent(
                ts=t + 5, kind=EventKind.ANSWERED, contact_id=cid, channel="voice", queue="q1", wait=5.0
            ),
            ContactEvent(
                ts=t + 20, kind=EventKind.FEEDBACK, contact_id=cid, channel="voice", queue="q1", score=score
            ),
        ]
    return out


async def last_status(
    tmp_path: Path, config: Config, make: Callable[[int, float], list[ContactEvent]]
) -> StepStatus:
    """Run the engine over the source on the events' clock and return the step as last published."""
    snaps: list[Snapshot] = []
    engine = Engine(config, db_path=str(tmp_path / "t.db"), sources=[MinuteSource(make)], clock="events")
    engine.add_listener(snaps.append)
    async with engine:
        await engine.run()
    status = snaps[-1].step("help")
    assert status is not None
    return status


def shown_arrow(status: StepStatus) -> str:
    """The arrow the journey-map tile draws for the step."""
    text = str(tile_text(status, status.state).plain)
    return next(ch for ch in text if ch in "↑↓→")


async def test_a_rising_abandon_rate_shows_an_up_arrow(tmp_path: Path) -> None:
    """Abandon rate climbing every minute (5 % → 50 %) is drawn with ↑ on its tile."""
    config = headline_config("abandon_rate", "above", '"90%"')
    status = await last_status(tmp_path, config, lambda i, ts: calls(i, ts, abandoned=1 + i))
    assert status.headline_measure == "abandon_rate"
    assert shown_arrow(status) == "↑", status


async def test_a_falling_abandon_rate_shows_a_down_arrow(tmp_path: Path) -> None:
    """Abandon rate dropping every minute (50 % → 5 %) is drawn with ↓ on its tile."""
    config = headline_config("abandon_rate", "above", '"90%"')
    status = await last_status(tmp_path, config, lambda i, ts: calls(i, ts, abandoned=MINUTES - i))
    assert shown_arrow(status) == "↓", status


async def test_a_rising_csat_shows_an_up_arrow(tmp_path: Path) -> None:
    """CSAT rising 4.0 → 4.9 (good news) is still drawn ↑: the arrow is the direction, not the verdict."""
    config = headline_config("csat", "below", "1.0")
    status = await last_status(tmp_path, config, lambda i, ts: scores(i, ts, 4.0 + 0.1 * i))
    assert status.headline_measure == "csat"
    assert shown_arrow(status) == "↑", status


def test_arrow_direction_and_colour_are_independent() -> None:
    """Rising is ↑ and falling ↓ for every measure; whether it is bad depends on the measure."""
    assert trend_arrow(0.05, "abandon_rate") == ("↑", "bad")
    assert trend_arrow(-0.05, "abandon_rate") == ("↓", "good")
    assert trend_arrow(0.2, "csat") == ("↑", "good")
    assert trend_arrow(-0.05, "service_level") == ("↓", "bad")
    assert trend_arrow(0.0, "service_level") == ("→", "flat")


async def test_arrows_on_the_simulated_incident_never_point_against_the_figure(tmp_path: Path) -> None:
    """Through the billing incident (abandons rising then service level recovering), whenever a tile's
    headline figure moved steadily one way over the last two minutes, its arrow does not point the other.

    The reference is the published figures themselves: a run of two minutes of snapshots whose headline
    is one measure and whose values only rise (or only fall) by a clear step.
    """
    snaps: list[Snapshot] = []
    engine = Engine(sim_config(speed="max"), store=False)
    engine.add_listener(snaps.append)
    async with engine:
        await engine.run(duration=20 * 60.0)
    checked = 0
    times = [s.ts for s in snaps]
    for snap in snaps:
        # The figure every 30 s over the last two minutes, as published.
        marks = [bisect_right(times, snap.ts - back) - 1 for back in (120.0, 90.0, 60.0, 30.0, 0.0)]
        if marks[0] < 0:
            continue
        for status in snap.steps:
            past = [snaps[m].step(status.name) for m in marks]
            if any(p is None or p.headline_measure != status.headline_measure for p in past):
                continue
            values = [p.headline_value for p in past if p is not None]
            if status.headline_measure not in ("abandon_rate", "service_level") or None in values:
                continue
            known = [v for v in values if v is not None]
            if abs(known[-1] - known[0]) < 0.05:
                continue
            moves = [b - a for a, b in itertools.pairwise(known)]
            arrow, _ = trend_arrow(status.trend, status.headline_measure)
            if all(d >= 0 for d in moves):
                checked += 1
                assert arrow != "↓", (snap.ts, known, status)
            elif all(d <= 0 for d in moves):
                checked += 1
                assert arrow != "↑", (snap.ts, known, status)
    assert checked > 0
