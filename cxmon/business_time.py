"""Business time: working hours per weekday in a time zone, holidays, and the arithmetic on them.

A second counts as business time when its local wall-clock time, in the calendar's time zone, falls
inside that weekday's working hours and its local date is not a holiday. Around a daylight-saving
change that definition is followed to the letter: an hour that happens twice (autumn) counts twice
if it is in working hours, an hour that does not happen (spring) not at all. The arithmetic walks the
span in pieces of constant UTC offset, so it is exact at any resolution, and costs one step per
local day in the span.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY = 86400
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class Calendar:
    """Working hours per weekday (seconds of the local day, half-open) in ``tz``, less holidays."""

    tz: str = "UTC"
    hours: tuple[tuple[tuple[int, int], ...], ...] = ((), (), (), (), (), (), ())
    """Monday first: each day's working spans as (start, end) seconds after local midnight."""
    holidays: tuple[str, ...] = ()
    """Local dates that are not worked, ISO 8601 (``2026-12-25``)."""
    _closed: frozenset[int] = field(init=False, repr=False, compare=False)
    """The holidays as days since 1970-01-01 (what the arithmetic looks up)."""

    def __post_init__(self) -> None:
        days = frozenset(date.fromisoformat(d).toordinal() - _EPOCH_ORDINAL for d in self.holidays)
        object.__setattr__(self, "_closed", days)

    @property
    def zone(self) -> ZoneInfo:
        """The time zone."""
        return ZoneInfo(self.tz)

    def week_seconds(self) -> int:
        """Working seconds in an ordinary week (no holiday, no clock change)."""
        return sum(e - s for day in self.hours for s, e in day)

    def _pieces(self, start: float, end: float) -> Iterator[tuple[float, float, float]]:
        """(a, b, offset) pieces of [start, end) over which the UTC offset is constant."""
        zone = self.zone

        def offset(t: float) -> float:
            off = datetime.fromtimestamp(t, UTC).astimezone(zone).utcoffset()
            return 0.0 if off is None else off.total_seconds()

        t = start
        while t < end:
            off = offset(t)
            probe, change = t, end
            while probe < end:
                nxt = min(end, probe + DAY)
                check = nxt if nxt < end else end - 1e-3  # the last instant inside the span
                if check > probe and offset(check) != off:
                    lo, hi = probe, check  # offset(lo) is off; at hi it is not
                    while hi - lo > 1e-3:
                        mid = (lo + hi) / 2
                        if offset(mid) == off:
                            lo = mid
                        else:
                            hi = mid
                    change = float(round(hi)) if abs(hi - round(hi)) < 2e-3 else hi
                    break
                probe = nxt
            yield t, change, off
            t = change

    def _day_spans(self, local_start: float, local_end: float) -> Iterator[tuple[float, float]]:
        """Working spans, in local "epoch" seconds, of the local days meeting [local_start, local_end)."""
        day = int(local_start // DAY)
        last = int((local_end - 1e-9) // DAY) if local_end > local_start else day - 1
        closed = self._closed
        while day <= last:
            if day not in closed:
                base = day * DAY
                for s, e in self.hours[(day + 3) % 7]:  # 1970-01-01 was a Thursday
                    yield base + s, base + e
            day += 1

    def between(self, start: float, end: float) -> float:
        """Business seconds in [start, end) (0 when end ≤ start)."""
        if end <= start:
            return 0.0
        total = 0.0
        for a, b, off in self._pieces(start, end):
            la, lb = a + off, b + off
            for s, e in self._day_spans(la, lb):
                lo, hi = max(s, la), min(e, lb)
                if hi > lo:
                    total += hi - lo
        return total

    def add(self, start: float, seconds: float) -> float | None:
        """The instant at which ``seconds`` of business time have passed since ``start``.

        Returns:
            The earliest t with ``between(start, t) == seconds``; None when the calendar never
            works (or not within ten years).
        """
        if seconds <= 0:
            return start
        if self.week_seconds() == 0:
            return None
        left = seconds
        t = start
        horizon = start + 3653 * DAY
        while t < horizon:
            chunk_end = t + 7 * DAY
            for a, b, off in self._pieces(t, chunk_end):
                la, lb = a + off, b + off
                for s, e in self._day_spans(la, lb):
                    lo, hi = max(s, la), min(e, lb)
                    if hi <= lo:
                        continue
                    if hi - lo >= left:
                        return lo + left - off
                    left -= hi - lo
            t = chunk_end
        return None

    def wall_span(self, seconds: float) -> tuple[float, float] | None:
        """The shortest and the longest wall-clock time in which ``seconds`` of business time pass.

        Taken over every start in an ordinary week: no holiday, and a week (5–11 January 2026) that
        no zone's clock change falls in. The shortest starts as a working span begins, the longest
        as one ends (a start in closed hours waits for the next span). Holidays only lengthen it.

        Returns:
            (shortest, longest) in seconds; None when the calendar never works (or not within
            ten years, as :meth:`add`).
        """
        if self.week_seconds() == 0:
            return None
        if seconds <= 0:
            return 0.0, 0.0
        plain = Calendar(self.tz, self.hours)
        zone = self.zone
        shortest, longest = float("inf"), 0.0
        for d, spans in enumerate(self.hours):
            midnight = datetime(2026, 1, 5 + d, tzinfo=zone).timestamp()
            for s, e in spans:
                start, end = midnight + s, midnight + e
                first, last = plain.add(start, seconds), plain.add(end, seconds)
                if first is None or last is None:
                    return None
                shortest = min(shortest, first - start)
                longest = max(longest, last - end)
        return shortest, max(longest, shortest)


ALWAYS = Calendar("UTC", tuple(((0, DAY),) for _ in range(7)))
"""Every second counts (the default: wall time)."""


def _span(text: str) -> tuple[int, int]:
    m = _SPAN.match(text.strip())
    if not m:
        raise ValueError(text)
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    start, end = (h1 * 60 + m1) * 60, (h2 * 60 + m2) * 60
    if not (0 <= start < end <= DAY) or m1 >= 60 or m2 >= 60:
        raise ValueError(text)
    return start, end


def parse_calendar(raw: object, path: str, problems: list[str]) -> Calendar | None:
    """Read a calendar table: ``timezone``, ``hours = { mon = ["09:00-17:30"], … }``, ``holidays``.

    Weekdays left out are closed. Spans lie within one day (write a night shift as
    ``"22:00-24:00"`` and ``"00:00-06:00"`` on the next day). Problems are appended with key paths.
    """
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problems.append(f"{path}: expected a table (timezone, hours, holidays)")
        return None
    before = len(problems)
    tz = raw.get("timezone", "UTC")
    try:
        if not isinstance(tz, str):
            raise ValueError(tz)
        ZoneInfo(tz)
    except (ValueError, ZoneInfoNotFoundError):
        problems.append(f"{path}.timezone: unknown time zone {tz!r}")
        tz = "UTC"
    hours: list[tuple[tuple[int, int], ...]] = [() for _ in WEEKDAYS]
    raw_hours = raw.get("hours", {})
    if not isinstance(raw_hours, Mapping):
        problems.append(f'{path}.hours: expected a table of weekday = ["09:00-17:00", …]')
        raw_hours = {}
    for name, spans in raw_hours.items():
        if name not in WEEKDAYS:
            problems.append(f"{path}.hours.{name}: not a weekday (one of {', '.join(WEEKDAYS)})")
            continue
        if not isinstance(spans, list):
            problems.append(f'{path}.hours.{name}: expected a list of "HH:MM-HH:MM"')
            continue
        parsed: list[tuple[int, int]] = []
        for i, text in enumerate(spans):
            try:
                parsed.append(_span(text if isinstance(text, str) else ""))
            except ValueError:
                problems.append(f'{path}.hours.{name}[{i}]: expected "HH:MM-HH:MM", got {text!r}')
        parsed.sort()
        if any(a[1] > b[0] for a, b in pairwise(parsed)):
            problems.append(f"{path}.hours.{name}: spans overlap")
        hours[WEEKDAYS.index(name)] = tuple(parsed)
    holidays: set[date] = set()
    raw_holidays = raw.get("holidays", [])
    if not isinstance(raw_holidays, list):
        problems.append(f"{path}.holidays: expected a list of dates")
        raw_holidays = []
    for i, value in enumerate(raw_holidays):
        if isinstance(value, date) and not isinstance(value, datetime):
            holidays.add(value)
            continue
        try:
            holidays.add(date.fromisoformat(str(value)))
        except ValueError:
            problems.append(f"{path}.holidays[{i}]: expected a date like 2026-12-25, got {value!r}")
    for key in raw:
        if key not in ("timezone", "hours", "holidays"):
            problems.append(f"{path}.{key}: unknown key")
    if len(problems) > before:
        return None
    return Calendar(tz, tuple(hours), tuple(sorted(d.isoformat() for d in holidays)))


__all__ = ["ALWAYS", "WEEKDAYS", "Calendar", "parse_calendar"]
