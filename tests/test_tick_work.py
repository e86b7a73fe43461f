"""Ticks that look only at changes leave alone a series whose verdict nothing can change."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from cxmon.config import loads
from cxmon.engine import Engine
from cxmon.events import ContactEvent, EventKind
from tests.helpers import HandFed

T0 = 1_767_600_000.0
CONFIG = """
[monitor]
tick = "1s"
windows = ["60s"]

[journey]
channels = ["voice"]
queues = ["q1"]

[[journey.steps]]
name = "help"
service_level_target = "20s"
match = [{ channel = "voice", queue = "q*" }]
  [[journey.steps.thresholds]]
  measure = "service_level"
  window = "60s"
  direction = "below"
  warn = "85%"
  breach = "70%"
  for = "1m"
"""


async def _judgements_on_unchanged_windows(staffed: int | None, monkeypatch: pytest.MonkeyPatch) -> int:
    """Feed a call every 20 s for 20 minutes (with a staffing event first when ``staffed``), tick
    every second, and count the judgements of the series, past its first 12 minutes (forecasts
    coming due every 10 s by then), made when none of its windows had changed."""
    engine = Engine(
        loads(CONFIG, "<tick-work>"),
        store=False,
        sources=[HandFed()],
        clock=lambda: now,
        recompute="changes",
    )
    key = ("help", "voice", "q1")
    ticks = engine._ticks
    windows_of = ticks.book.update
    changed: dict[tuple[str, str, str], set[float]] = {}

    def recorded(k: tuple[str, str, str], *args: Any) -> set[float]:
        changed[k] = windows_of(k, *args)
        return changed[k]

    monkeypatch.setattr(ticks.book, "update", recorded)
    counts: Counter[tuple[str, str, str]] = Counter()
    judge = engine.detector.judge_series

    def counted(k: tuple[str, str, str], *args: Any, **kwargs: Any) -> Any:
        if not changed.get(k):
            counts[k] += 1
        return judge(k, *args, **kwargs)

    monkeypatch.setattr(engine.detector, "judge_series", counted)
    events = []
    if staffed is not None:
        events.append(
            ContactEvent(
                ts=T0,
                kind=EventKind.STAFFING,
                contact_id="",
                channel="voice",
                queue="q1",
                agents_staffed=staffed,
                agents_available=staffed,
            )
        )
    for i in range(60):
        cid = f"c{i}"
        at = T0 + 20.0 * i
        events.append(
            ContactEvent(ts=at, kind=EventKind.ARRIVED, contact_id=cid, channel="voice", queue="q1")
        )
        events.append(
            ContactEvent(
                ts=at + 5.0, kind=EventKind.ANSWERED, contact_id=cid, channel="voice", queue="q1", wait=5.0
            )
        )
        events.append(
            ContactEvent(
                ts=at + 65.0,
                kind=EventKind.RESOLVED,
                contact_id=cid,
                channel="voice",
                queue="q1",
                duration=60.0,
            )
        )
    events.sort(key=lambda e: e.ts)
    i = 0
    for second in range(1200):
        now = T0 + second
        batch = []
        while i < len(events) and events[i].ts <= now:
            batch.append(events[i])
            i += 1
        if batch:
            await engine._process("feed", batch, None)
        if second == 720:
            counts.clear()
        engine._tick(now)
    forecast = engine.forecaster.forecast(key)
    assert forecast is not None and forecast.ts > T0 + 1100  # forecasts kept coming due
    return counts[key]


@pytest.mark.pure_python
async def test_a_series_with_no_agents_known_is_not_judged_as_its_forecasts_come_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no staffing figures and none in ``[forecast] agents``, a forecast cannot carry a
    projection until a staffing event (which has the series looked at anyway): the series is judged
    only when its windows change, not again every time its forecast comes due. With agents known it
    is (the next forecast may project a breach): the count tells the two apart."""
    assert await _judgements_on_unchanged_windows(None, monkeypatch) == 0
    assert await _judgements_on_unchanged_windows(4, monkeypatch) >= 20
