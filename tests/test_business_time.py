"""Business-time arithmetic against an independent minute-by-minute count (DST, holidays, nights)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from cxmon.business_time import Calendar, parse_calendar

ZONES = ["UTC", "Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "Europe/Berlin"]
# Clock changes of 2026 (and ordinary days), to start spans near.
ANCHORS = [
    datetime(2026, 3, 8, tzinfo=UTC),  # US spring forward
    datetime(2026, 3, 29, tzinfo=UTC),  # EU spring forward
    datetime(2026, 4, 5, tzinfo=UTC),  # Lord Howe back (half an hour)
    datetime(2026, 10, 4, tzinfo=UTC),  # Lord Howe forward
    datetime(2026, 10, 25, tzinfo=UTC),  # EU fall back
    datetime(2026, 11, 1, tzinfo=UTC),  # US fall back
    datetime(2026, 6, 17, tzinfo=UTC),  # an ordinary week
]


def brute_force(cal: Calendar, start: int, end: int) -> int:
    """Business seconds in [start, end), a minute at a time: the minute counts when its local
    wall-clock time is inside that weekday's hours and its local date is not a holiday."""
    zone = ZoneInfo(cal.tz)
    total = 0
    for minute in range(start, end, 60):
        local = datetime.fromtimestamp(minute, UTC).astimezone(zone)
        if local.date().isoformat() in cal.holidays:
            continue
        of_day = local.hour * 3600 + local.minute * 60
        if any(s <= of_day < e for s, e in cal.hours[local.weekday()]):
            total += 60
    return total


@st.composite
def day_hours(draw: st.DrawFn) -> tuple[tuple[int, int], ...]:
    """0–3 non-overlapping spans on a minute grid, some reaching midnight (overnight gaps between)."""
    cuts = sorted(draw(st.sets(st.integers(0, 1440), min_size=0, max_size=6)))
    if len(cuts) % 2:
        cuts = cuts[:-1]
    return tuple((cuts[i] * 60, cuts[i + 1] * 60) for i in range(0, len(cuts), 2))


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    tz = draw(st.sampled_from(ZONES))
    hours = tuple(draw(day_hours()) for _ in range(7))
    anchor = draw(st.sampled_from(ANCHORS)).date()
    holidays = sorted(
        (anchor + timedelta(days=d)).isoformat() for d in draw(st.sets(st.integers(-3, 6), max_size=3))
    )
    return Calendar(tz, hours, tuple(holidays))


@st.composite
def spans(draw: st.DrawFn) -> tuple[int, int]:
    anchor = int(draw(st.sampled_from(ANCHORS)).timestamp())
    start = anchor + 60 * draw(st.integers(-3 * 1440, 2 * 1440))
    return start, start + 60 * draw(st.integers(0, 5 * 1440))


@settings(max_examples=80, deadline=None)
@given(calendars(), spans())
def test_between_matches_a_minute_by_minute_count(cal: Calendar, span: tuple[int, int]) -> None:
    """Calendar.between equals the brute-force count for any calendar, zone and span."""
    start, end = span
    assert cal.between(start, end) == brute_force(cal, start, end)


@settings(max_examples=60, deadline=None)
@given(calendars(), spans(), st.integers(1, 3 * 1440))
def test_add_is_the_first_instant_reaching_the_target(
    cal: Calendar, span: tuple[int, int], minutes: int
) -> None:
    """add(start, s) is the earliest t with between(start, t) == s (checked by the brute force)."""
    start, _ = span
    t = cal.add(start, minutes * 60)
    if cal.week_seconds() == 0:
        assert t is None
        return
    assert t is not None
    assert brute_force(cal, start, int(t)) == minutes * 60
    assert cal.between(start, t - 1) < minutes * 60


def test_weekend_and_holiday_do_not_count() -> None:
    """Mon–Fri 09:00–17:00 London: from Friday 16:00 to Tuesday 10:00 with Monday a holiday is 2 h."""
    cal = Calendar(
        "Europe/London",
        tuple(((9 * 3600, 17 * 3600),) if d < 5 else () for d in range(7)),
        ("2026-12-28",),
    )
    friday = datetime(2026, 12, 25, 16, tzinfo=ZoneInfo("Europe/London")).timestamp()
    tuesday = datetime(2026, 12, 29, 10, tzinfo=ZoneInfo("Europe/London")).timestamp()
    assert cal.between(friday, tuesday) == 2 * 3600


def test_parse_calendar_reports_every_problem_with_its_path() -> None:
    """Bad zone, bad span, unknown weekday, bad holiday: each named with its key path."""
    problems: list[str] = []
    raw = {"timezone": "Mars/Olympus", "hours": {"mon": ["9-5"], "funday": []}, "holidays": ["someday"]}
    assert parse_calendar(raw, "journey.steps[0].calendar", problems) is None
    assert [p.split(":")[0] for p in problems] == [
        "journey.steps[0].calendar.timezone",
        "journey.steps[0].calendar.hours.mon[0]",
        "journey.steps[0].calendar.hours.funday",
        "journey.steps[0].calendar.holidays[0]",
    ]


ALL_DAY = tuple(((0, 86400),) for _ in range(7))
NIGHTS = tuple(((0, 3 * 3600),) for _ in range(7))


def test_spring_forward_day_is_23_hours() -> None:
    """A 24-hour calendar in London over the spring-forward weekend counts 47 h (brute force agrees)."""
    cal = Calendar("Europe/London", ALL_DAY)
    zone = ZoneInfo("Europe/London")
    start = int(datetime(2026, 3, 28, tzinfo=zone).timestamp())
    end = int(datetime(2026, 3, 30, tzinfo=zone).timestamp())
    assert cal.between(start, end) == 47 * 3600 == brute_force(cal, start, end)


def test_fall_back_night_counts_the_repeated_hour_twice() -> None:
    """Working 00:00–03:00 in New York: the fall-back night has 4 h of it (brute force agrees)."""
    cal = Calendar("America/New_York", NIGHTS)
    zone = ZoneInfo("America/New_York")
    start = int(datetime(2026, 10, 31, 12, tzinfo=zone).timestamp())
    end = int(datetime(2026, 11, 1, 12, tzinfo=zone).timestamp())
    assert cal.between(start, end) == 4 * 3600 == brute_force(cal, start, end)


def test_wall_span_is_the_shortest_and_longest_wall_time_of_a_business_age() -> None:
    """On 09:00–17:00 weekdays, 2 business hours take 2 h from a morning and 66 h from Friday 17:00;
    3 business days (72 h) take 10 d 8 h from Monday 09:00 and 13 d from Friday 17:00; a calendar
    that never works, or an age not reached within ten years, has none. Holidays are left out (the
    6 January holiday here falls in the week it is measured in)."""
    days = tuple([((9 * 3600, 17 * 3600),)] * 5 + [(), ()])
    cal = Calendar("Europe/London", days, ("2026-01-06",))
    assert cal.wall_span(2 * 3600) == (2 * 3600, 66 * 3600)
    assert cal.wall_span(3 * 86400) == (10 * 86400 + 8 * 3600, 13 * 86400)
    assert Calendar("UTC").wall_span(3600) is None
    assert cal.wall_span(3650 * 86400) is None
