"""Ticket SLAs in business time: first reply, next reply and resolution with pausing statuses, and
aged backlog per queue, on a step calendar (Mon–Fri 09:00–17:00 London, a holiday)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.webhook.model import Update
from collectors.webhook.tracker import ContactTracker, step_clocks
from cxmon.config import loads
from cxmon.events import ContactEvent, EventKind
from cxmon.windows import Aggregator, Series, instant_measures, window_measures

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


def upd(action: str, ts: float, n: int, status: str = "") -> Update:
    return Update(f"e{n}", action, ts, "zd:1", "email", "billing", None, status=status)


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


def test_replies_to_later_messages_are_replied_events_with_the_next_reply_time() -> None:
    """The tracker makes one ``replied`` event per next reply; its wait is the business next-reply
    time (Fri 16:30 → Mon 09:45 is 75 min), not the wall-clock 65 h."""
    t = tracker()
    t.apply(upd("open", at(4, 9), 1))
    t.apply(upd("reply", at(4, 10), 2))
    t.apply(upd("customer", at(4, 16, 30), 3))
    [replied] = t.apply(upd("reply", at(7, 9, 45), 4))
    assert (replied.kind, replied.ts, replied.wait) == (EventKind.REPLIED, at(7, 9, 45), 75 * 60)


def test_next_reply_in_target_is_a_windowed_ratio_against_the_steps_target() -> None:
    """Three next replies of 75, 20 and 60 min against a 1 h target: 2 of 3 in target (60 min is
    within), each window's ``next_replies`` is 3; the first reply is no next reply."""
    t = tracker()
    events: list[ContactEvent] = []
    for n, (action, when) in enumerate(
        [
            ("open", at(4, 9)),
            ("reply", at(4, 10)),
            ("customer", at(4, 16, 30)),
            ("reply", at(7, 9, 45)),
            ("customer", at(7, 10)),
            ("reply", at(7, 10, 20)),
            ("customer", at(7, 11)),
            ("reply", at(7, 12)),
        ]
    ):
        events += t.apply(upd(action, when, n))
    agg = Aggregator(loads(CONFIG))
    agg.add(events)
    agg.advance(at(7, 12))
    [series] = agg.series.values()
    [window] = series.windows
    figures = window_measures(window.total, "excl_short_abandons")
    assert figures["next_replies"] == 1  # the 60-minute window holds only Monday 12:00's reply
    assert figures["next_reply_in_target"] == 1.0
    every = Aggregator(loads(CONFIG.replace('windows = ["60m"]', 'windows = ["7d"]')))
    every.add(events)
    [long_series] = every.series.values()
    figures = window_measures(long_series.windows[0].total, "excl_short_abandons")
    assert figures["next_replies"] == 3
    assert figures["next_reply_in_target"] == 2 / 3


def test_next_reply_threshold_becomes_a_rule_promtool_accepts(tmp_path: Path) -> None:
    """A threshold on next_reply_in_target is a valid config; its rule reads
    cxmon_next_reply_in_target_ratio, gated on cxmon_window_next_replies, and promtool accepts it."""
    import subprocess

    from cxmon.rules import render_rules
    from tests.integration import require_binary

    promtool = require_binary("promtool")
    config = loads(
        CONFIG
        + """
  [[journey.steps.thresholds]]
  measure = "next_reply_in_target"
  window = "60m"
  warn = 0.9
  breach = 0.8
  min_volume = 5
"""
    )
    text = render_rules(config)
    assert "cxmon_next_reply_in_target_ratio" in text and "cxmon_window_next_replies" in text
    path = tmp_path / "rules.yml"
    path.write_text(text)
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


async def test_next_reply_ratio_reaches_the_snapshot_and_metrics() -> None:
    """Native events through the daemon's HTTP server: one next reply in 30 min, one in 2 h against
    the 1 h target; /metrics shows cxmon_next_reply_in_target_ratio 0.5 and 2 next replies."""
    import asyncio
    import re
    import time

    import aiohttp

    from cxmon.engine import Engine
    from cxmon.http_server import start_http
    from tests.collectors.webhook.harness import SECRET, body_of, native_headers

    config = loads(
        CONFIG.replace('windows = ["60m"]', 'windows = ["5m"]\ntick = "100ms"')
        + f"""
[[collectors]]
type = "webhook"
name = "crm"
adapter = "native"
secret = "{SECRET}"
"""
    )
    now = time.time()
    events = [
        {"id": "a", "ts": now - 9000, "kind": "arrived", "contact_id": "t1", "channel": "email",
         "queue": "billing"},
        {"id": "r1", "ts": now - 20, "kind": "replied", "contact_id": "t1", "channel": "email",
         "queue": "billing", "wait": 1800},
        {"id": "r2", "ts": now - 10, "kind": "replied", "contact_id": "t1", "channel": "email",
         "queue": "billing", "wait": 7200},
    ]  # fmt: skip
    engine = Engine(config, store=False)
    found: dict[str, float] = {}
    async with engine:
        services = await start_http(engine, "127.0.0.1", 0, sources=engine.sources)
        try:
            base = f"http://127.0.0.1:{services.port}"
            body = body_of({"version": 1, "events": events})
            async with aiohttp.ClientSession() as http:
                async with http.post(base + "/webhooks/crm", data=body, headers=native_headers(body)) as r:
                    assert r.status == 200, await r.text()
                for _ in range(200):  # bounded: a render follows the next snapshot
                    async with http.get(base + "/metrics") as r:
                        text = await r.text()
                    found = {
                        m.group(1): float(m.group(2))
                        for m in re.finditer(
                            r"^(cxmon_next_reply_in_target_ratio|cxmon_window_next_replies)"
                            r'\{[^}]*window="5m"\} (\S+)$',
                            text,
                            re.M,
                        )
                    }
                    if len(found) == 2:
                        break
                    await asyncio.sleep(0.05)
        finally:
            await services.aclose()
    assert found == {"cxmon_next_reply_in_target_ratio": 0.5, "cxmon_window_next_replies": 2.0}


PAUSE_CONFIG = """
[monitor]
windows = ["60m"]

[journey]
channels = ["email"]
queues = ["billing"]

[[journey.steps]]
name = "resolve"
match = [{ channel = "email" }]
targets = { first_reply = "1h", resolution = "3h" }
  [journey.steps.calendar]
  timezone = "Europe/London"
  holidays = ["2026-03-27"]
    [journey.steps.calendar.hours]
    mon = ["09:00-17:00"]
    tue = ["09:00-17:00"]
    wed = ["09:00-17:00"]
    thu = ["09:00-17:00"]
    sat = ["00:00-03:00"]
    sun = ["00:00-03:00", "22:00-24:00"]
"""
PAUSE_TARGET = 3 * 3600
# Thursday 26 March 2026 00:00 UTC: a holiday Friday, then the night the clocks go forward (Sunday
# 01:00 → 02:00 in London) inside Sunday's early hours.
PAUSE_START = int(datetime(2026, 3, 26, tzinfo=ZoneInfo("UTC")).timestamp())


def unpaused_business_seconds(opened: int, now: int, toggles: list[int]) -> int:
    """Seconds of [opened, now) that are business time in PAUSE_CONFIG's calendar and not paused,
    a minute at a time (``toggles``: pause, resume, pause… times, each a whole minute)."""
    zone = ZoneInfo("Europe/London")
    hours = {0: (9, 17), 1: (9, 17), 2: (9, 17), 3: (9, 17)}
    total = 0
    for minute in range(opened, now, 60):
        if sum(1 for t in toggles if t <= minute) % 2:
            continue  # paused
        local = datetime.fromtimestamp(minute, ZoneInfo("UTC")).astimezone(zone)
        if local.date().isoformat() == "2026-03-27":
            continue
        day = local.weekday()
        in_hours = (
            (day in hours and hours[day][0] <= local.hour < hours[day][1])
            or (day == 5 and local.hour < 3)
            or (day == 6 and (local.hour < 3 or local.hour >= 22))
        )
        total += 60 * in_hours
    return total


@st.composite
def paused_tickets(draw: st.DrawFn) -> tuple[int, list[tuple[int, list[int]]]]:
    """A time to look at, and 1–3 tickets each opened before it with pauses and resumes between."""
    now = PAUSE_START + 60 * draw(st.integers(60, 6 * 1440))
    tickets = []
    for _ in range(draw(st.integers(1, 3))):
        opened = now - 60 * draw(st.integers(1, (now - PAUSE_START) // 60))
        toggles = sorted(draw(st.sets(st.integers(opened // 60, now // 60 - 1), max_size=6)))
        tickets.append((opened, [60 * t for t in toggles]))
    return now, tickets


def _paused_series(tickets: list[tuple[int, list[int]]]) -> Series:
    """The e-mail series of PAUSE_CONFIG after each ticket opened and paused and resumed in turn at
    its toggles."""
    agg = Aggregator(loads(PAUSE_CONFIG))
    events = []
    for i, (opened, toggles) in enumerate(tickets):
        events.append(ContactEvent(opened, EventKind.ARRIVED, f"t{i}", "email", "billing", "zd"))
        for k, t in enumerate(toggles):
            kind = EventKind.PAUSED if k % 2 == 0 else EventKind.RESUMED
            events.append(ContactEvent(t, kind, f"t{i}", "email", "billing", "zd"))
    agg.add(sorted(events, key=lambda e: e.ts))
    [series] = agg.series.values()
    return series


@settings(max_examples=60, deadline=None)
@given(paused_tickets())
def test_aged_backlog_leaves_paused_time_out(case: tuple[int, list[tuple[int, list[int]]]]) -> None:
    """A ticket is aged when its business time open, less the time it sat paused (pending, on hold),
    reaches the 3 h resolution target: the aggregator agrees with a minute-by-minute count across a
    holiday, nights, and the spring clock change."""
    now, tickets = case
    series = _paused_series(tickets)
    expected = sum(unpaused_business_seconds(o, now, tg) >= PAUSE_TARGET for o, tg in tickets)
    assert instant_measures(series, now)["aged_backlog"] == expected
    assert instant_measures(series, now)["backlog"] == len(tickets)


def test_detail_pane_lists_next_reply_beside_first_reply_where_there_are_next_replies() -> None:
    """The detail pane's figures list next reply in target for a series with next replies in some
    window, and leave it out for one without (a voice queue)."""
    from cxmon.tui.format import figure_measures
    from tests.metrics_helpers import make_series

    tickets = make_series(
        windows={300.0: {"next_reply_in_target": None}, 900.0: {"next_reply_in_target": 0.5}}
    )
    calls = make_series(windows={300.0: {"service_level": 0.8}})
    assert "next_reply_in_target" in figure_measures(tickets)
    assert "service_level" in figure_measures(calls) and "next_reply_in_target" not in figure_measures(calls)


def test_dashboard_shows_next_reply_for_a_step_with_a_next_reply_target() -> None:
    """`cxmon grafana` gives a ticket step with a ``next_reply`` target a panel of
    cxmon_next_reply_in_target_ratio after its first-reply panels; a step without one gets none."""
    from cxmon.grafana import build_dashboard

    def titles(config_text: str) -> list[str]:
        dash = build_dashboard(loads(config_text))
        return [p["title"] for p in dash["panels"] if p["type"] == "timeseries"]

    with_target = build_dashboard(loads(CONFIG))
    [panel] = [p for p in with_target["panels"] if p["title"].startswith("Next reply in target")]
    assert "cxmon_next_reply_in_target_ratio" in panel["targets"][0]["expr"]
    assert 'step="resolve"' in panel["targets"][0]["expr"]
    assert not any(t.startswith("Next reply") for t in titles(CONFIG.replace(', next_reply = "1h"', "")))


def test_long_wait_follows_the_first_reply_target() -> None:
    """Without a long_wait of its own, a step whose first-reply T comes from ``targets`` counts a
    wait as long (a strike) past three times that T, not past three times the 20 s default: a
    ticket answered in 2 h against a 4 h target is no strike."""
    [step] = loads(CONFIG).steps
    assert step.long_wait == 3 * 4 * 3600
    agg = Aggregator(loads(CONFIG))
    agg.add(
        [
            ContactEvent(at(7, 9), EventKind.ARRIVED, "t1", "email", "billing", "zd", "jane@example.com"),
            ContactEvent(
                at(7, 11), EventKind.ANSWERED, "t1", "email", "billing", "zd", "jane@example.com", wait=7200
            ),
        ]
    )
    assert agg.strikes.get("jane@example.com", 0) == 0


def test_a_ticket_open_over_the_weekend_ages_live_instead_of_being_lost() -> None:
    """With the engine closing lost contacts, a ticket opened Fri 16:00 is still open through the
    weekend, in backlog, and in aged_backlog at Mon 10:00 (two business hours): it is not closed as
    lost after ``[monitor] lost_after`` (4 h by default)."""
    agg = Aggregator(loads(CONFIG), time_out_lost=True)
    agg.add([ContactEvent(at(4, 16), EventKind.ARRIVED, "t1", "email", "billing", "zd")])
    lost = [ev for hour in range(1, 67) for ev in agg.advance(at(4, 16) + hour * 3600)]
    assert lost == []
    [series] = agg.series.values()
    assert instant_measures(series, at(7, 10))["backlog"] == 1
    assert instant_measures(series, at(7, 10))["aged_backlog"] == 1


def test_a_ticket_step_gives_a_ticket_up_after_twice_the_slowest_age() -> None:
    """Without a lost_after of its own, the step's is twice the longest wall-clock time its 2 h
    resolution takes on its calendar (from Fri 17:00 to Mon 11:00: 66 h), and a ticket with no
    closing event is closed as lost then, not before."""
    [step] = loads(CONFIG).steps
    assert step.lost_after == 2 * 66 * 3600
    agg = Aggregator(loads(CONFIG), time_out_lost=True)
    agg.add([ContactEvent(at(7, 9), EventKind.ARRIVED, "t1", "email", "billing", "zd")])
    assert agg.advance(at(7, 9) + 132 * 3600 - 60) == []
    [lost] = agg.advance(at(7, 9) + 132 * 3600 + 60)
    assert (lost.kind, lost.contact_id) == (EventKind.LOST, "t1")


def test_longest_wait_of_a_ticket_step_is_business_time() -> None:
    """A ticket opened Fri 16:00 and not yet answered has waited 1 h on Mon 09:00 (the step's
    wait percentiles are business time too), not the 65 wall-clock hours since it opened."""
    agg = Aggregator(loads(CONFIG))
    agg.add([ContactEvent(at(4, 16), EventKind.ARRIVED, "t1", "email", "billing", "zd")])
    [series] = agg.series.values()
    figures = instant_measures(series, at(7, 9))
    assert (figures["waiting_now"], figures["longest_wait_now"]) == (1, 3600)


@settings(max_examples=60, deadline=None)
@given(paused_tickets())
def test_waiting_now_and_longest_wait_leave_paused_time_out(
    case: tuple[int, list[tuple[int, list[int]]]],
) -> None:
    """Tickets awaiting a first reply: those paused now (pending, on hold) wait on the customer and
    are not waiting; the longest wait of the others is their business time less the time they sat
    paused, agreeing with a minute-by-minute count across a holiday, nights and the clock change."""
    now, tickets = case
    series = _paused_series(tickets)
    waits = [unpaused_business_seconds(o, now, tg) for o, tg in tickets if len(tg) % 2 == 0]
    figures = instant_measures(series, now)
    assert figures["waiting_now"] == len(waits)
    assert figures["longest_wait_now"] == (max(waits) if waits else None)
