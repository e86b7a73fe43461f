"""A history with a pot hole at nightfall and a quiet stretch longer than the longest window after it.

Shared by the backfill's and the replay's tests of quiet stretches (tests/test_quiet_gaps.py,
tests/hub/test_replay_quiet.py).
"""

from __future__ import annotations

from typing import Any

from cxmon.config import loads
from cxmon.events import ContactEvent, EventKind

T0 = 1_767_600_000.0
EVENING_END = T0 + 9 * 30.0 + 200.0
"""The evening's last event."""

CONFIG = loads(
    """
[monitor]
windows = ["5m", "15m"]

[journey]
channels = ["voice"]
queues = ["q1"]

[[journey.steps]]
name = "help"
service_level_target = "20s"
match = [{ channel = "voice", queue = "q1" }]
  [[journey.steps.thresholds]]
  measure = "wait_p90"
  window = "5m"
  warn = "30s"
  breach = "60s"
  clear = "45s"
  for = "1m"
  min_volume = 3
""",
    "<quiet night>",
)
"""One step judged on its 5m wait p90 (a pot hole past 60 s), windows of 5 and 15 minutes."""


def evening_and_morning(morning: float) -> list[ContactEvent]:
    """Ten calls answered after two minutes each from ``T0`` (a pot hole), nothing until
    ``morning``, then three calls answered at once; in time order."""
    out = []
    for i in range(10):
        at = T0 + i * 30.0
        where: dict[str, Any] = {"contact_id": f"e{i}", "channel": "voice", "queue": "q1"}
        out.append(ContactEvent(ts=at, kind=EventKind.ARRIVED, **where))
        out.append(ContactEvent(ts=at + 120.0, kind=EventKind.ANSWERED, wait=120.0, **where))
        out.append(ContactEvent(ts=at + 200.0, kind=EventKind.RESOLVED, duration=80.0, **where))
    for i in range(3):
        where = {"contact_id": f"m{i}", "channel": "voice", "queue": "q1"}
        out.append(ContactEvent(ts=morning + i * 30.0, kind=EventKind.ARRIVED, **where))
        out.append(ContactEvent(ts=morning + i * 30.0 + 5.0, kind=EventKind.ANSWERED, wait=5.0, **where))
    out.sort(key=lambda ev: ev.ts)
    return out
