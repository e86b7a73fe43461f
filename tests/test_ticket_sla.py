"""Ticket SLAs in business time: first reply, next reply and resolution with pausing statuses, and
aged backlog per queue, on a step calendar (Mon–Fri 09:00–17:00 London, a holiday)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from collectors.webhook.model import Update
from collectors.webhook.tracker import ContactTracker, step_clocks
from cxmon.config import loads
from cxmon.events import ContactEvent, EventKind
from cxmon.windows import Aggregator, instant_measures

LONDON = ZoneInfo("Europe/London")
CONFIG = """
[monitor]
windows = ["60m"]

[journey]
channels = ["email"]
queues = ["billing"]

[[journey.steps]]
name = "resolve"
match = [{ channel = "email" }]
targets = { first_reply = "4h", next_reply = "1h", resolution = "2h" }
  [journey.steps.calendar]
  timezone = "Europe/London"
  holidays = ["2026-12-25"]
    [journey.steps.calendar.hours]
    mon = ["09:00-17:00"]
    tue = ["09:00-17:00"]
    wed = ["09:00-17:00"]
    thu = ["09:00-17:00"]
    fri = ["09:00-17:00"]
"""


def at(day: int, hour: int, minute: int = 0) -> float:
    """A December 2026 London time (the 4th and 11th are Fridays, the 7th a Monday)."""
    return datetime(2026, 12, day, hour, minute, tzinfo=LONDON).timestamp()


def tracker() -> ContactTracker:
    return ContactTracker("zd", clock_for=step_clocks(loads(CONFIG)))


def upd(action: str, ts: float, n: int, **kw: object) -> Update:
    return Update(f"e{n}", action, ts, "zd:1", "email", "billing", None, **kw)  # type: ignore[arg-type]


def test_targets_and_calendar_are_read_from_the_step() -> None:
    """targets set the step's first-reply T, next-reply target and resolution age; the calendar parses."""
    [step] = loads(CONFIG).steps
    assert (step.service_level_target, step.next_reply, step.backlog_age) == (4 * 3600, 3600, 2 * 3600)
    assert step.calendar is not None and step.calendar.tz == "Europe/London"


def test_first_reply_is_business_time_with_the_pause_left_out() -> None:
    """Opened Fri 16:00, pending 16:30 → open Mon 10:00, answered Mon 11:00: 30 min + 60 min."""
    t = tracker()
    t.apply(upd("open", at(4, 16), 1))
    t.apply(upd("status", at(4, 16, 30), 2, status="paused"))
    t.apply(upd("status", at(7, 10), 3, status="open"))
    [answered] = t.apply(upd("reply", at(7, 11), 4))
    assert answered.kind is EventKind.ANSWERED and answered.wait == 90 * 60


def test_resolution_is_business_time_with_pauses_left_out() -> None:
    """Opened Thu 16:00, answered Thu 16:30, on hold Thu 16:45 → Fri 10:00, solved Fri 12:00:
    45 min Thursday + 2 h Friday; the night and the hold do not count."""
    t = tracker()
    t.apply(upd("open", at(3, 16), 1))
    t.apply(upd("reply", at(3, 16, 30), 2))
    t.apply(upd("status", at(3, 16, 45), 3, status="paused"))
    t.apply(upd("status", at(4, 10), 4, status="open"))
    [resolved] = t.apply(upd("status", at(4, 12), 5, status="resolved"))
    assert resolved.duration == 45 * 60 + 2 * 3600


def test_next_reply_over_target_is_a_breach() -> None:
    """The customer writes again Fri 16:30; the agent replies Mon 09:45: 30 + 45 min > 1 h target."""
    t = tracker()
    t.apply(upd("open", at(4, 9), 1))
    t.apply(upd("reply", at(4, 10), 2))
    t.apply(upd("customer", at(4, 16, 30), 3))
    t.apply(upd("reply", at(7, 9, 45), 4))
    t.apply(upd("customer", at(7, 10), 5))
    t.apply(upd("reply", at(7, 10, 20), 6))
    assert t.next_reply_seconds == [75 * 60, 20 * 60]
    assert (t.next_replies, t.next_reply_breaches) == (2, 1)


def test_aged_backlog_counts_business_age() -> None:
    """Resolution target 2 h: a ticket opened Fri 16:00 is aged at Mon 10:00 (2 business hours), not
    at Mon 09:30 (1.5 h) although 65 wall-clock hours have passed."""
    agg = Aggregator(loads(CONFIG))
    agg.add([ContactEvent(at(4, 16), EventKind.ARRIVED, "t1", "email", "billing", "zd")])
    [series] = agg.series.values()
    assert instant_measures(series, at(7, 9, 30))["aged_backlog"] == 0
    assert instant_measures(series, at(7, 10))["aged_backlog"] == 1
    assert instant_measures(series, at(7, 10))["backlog"] == 1


def test_holiday_stops_the_clock() -> None:
    """Opened Thu 24 Dec 16:00, answered Mon 28 Dec 09:30: Friday the 25th is a holiday → 1 h 30 min."""
    t = tracker()
    t.apply(upd("open", at(24, 16), 1))
    [answered] = t.apply(upd("reply", at(28, 9, 30), 2))
    assert answered.wait == 90 * 60


def test_calendar_and_targets_travel_in_the_hubs_hello() -> None:
    """A step's calendar and next-reply target survive the hub's journey encoding (JSON and back)."""
    import orjson

    from cxmon.hub.protocol import config_of, journey_of

    config = loads(CONFIG)
    back = config_of(orjson.loads(orjson.dumps(journey_of(config))), "<hub>")
    assert back.steps[0].calendar == config.steps[0].calendar
    assert back.steps[0].next_reply == 3600
    assert back.steps[0].calendar is not None
    assert back.steps[0].calendar.between(at(4, 16), at(7, 10)) == 2 * 3600
