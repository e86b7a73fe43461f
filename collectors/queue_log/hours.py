"""A centre's opening hours (``"mon-fri 08:00-18:00"``): when a quiet log means a dead PBX."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Span:
    """Open from ``start`` to ``end`` (minutes after midnight) on ``days`` (0 = Monday).

    An ``end`` at or before ``start`` runs past midnight into the next day.
    """

    days: frozenset[int]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """When the centre is open; no spans means always open."""

    spans: tuple[Span, ...] = ()
    timezone: str = "local"
    """An IANA zone name, or ``local`` for the machine's own."""

    def _local(self, ts: float) -> dt.datetime:
        if self.timezone == "local":
            return dt.datetime.fromtimestamp(ts).astimezone()
        return dt.datetime.fromtimestamp(ts, zoneinfo.ZoneInfo(self.timezone))

    def opened_at(self, ts: float) -> float | None:
        """Return when the opening period that ``ts`` falls in began (epoch seconds), or None when
        the centre is closed at ``ts``. Always open: ``-inf``."""
        if not self.spans:
            return float("-inf")
        local = self._local(ts)
        minute = local.hour * 60 + local.minute
        day = local.weekday()
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        best: dt.datetime | None = None
        for span in self.spans:
            if span.end > span.start:
                if day in span.days and span.start <= minute < span.end:
                    began = midnight + dt.timedelta(minutes=span.start)
                else:
                    continue
            elif day in span.days and minute >= span.start:
                began = midnight + dt.timedelta(minutes=span.start)
            elif (day - 1) % 7 in span.days and minute < span.end:
                began = midnight - dt.timedelta(days=1) + dt.timedelta(minutes=span.start)
            else:
                continue
            if best is None or began < best:
                best = began
        return None if best is None else best.timestamp()


def parse_hours(spans: list[str], timezone: str) -> tuple[OpeningHours | None, list[tuple[str, str]]]:
    """Read ``["mon-fri 08:00-18:00", "sat 09:00-13:00"]`` in ``timezone``.

    Days are ``mon`` … ``sun``, ``daily``, a range (``mon-fri``) or a list (``mon,wed``); times are
    ``HH:MM`` (``24:00`` ends a day); an end before the start runs past midnight.

    Returns:
        (hours, problems): hours is None when there are problems, each a (key, why) pair.
    """
    problems: list[tuple[str, str]] = []
    if timezone != "local":
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.append(("timezone", f"unknown time zone {timezone!r}"))
    out: list[Span] = []
    for i, text in enumerate(spans):
        try:
            out.append(_span(text))
        except ValueError as exc:
            problems.append((f"hours[{i}]", str(exc)))
    if problems:
        return None, problems
    return OpeningHours(tuple(out), timezone), []


def _span(text: str) -> Span:
    parts = text.split()
    if len(parts) != 2:
        raise ValueError(f'expected "DAYS HH:MM-HH:MM" like "mon-fri 08:00-18:00", got {text!r}')
    days_text, times = parts
    days: set[int] = set()
    for item in days_text.lower().split(","):
        if item == "daily":
            days.update(range(7))
            continue
        first, _, last = item.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"unknown day {item!r} (mon … sun, daily, mon-fri)")
        a = DAYS.index(first)
        b = DAYS.index(last) if last else a
        days.update((a + k) % 7 for k in range((b - a) % 7 + 1))
    start_text, sep, end_text = times.partition("-")
    if not sep:
        raise ValueError(f"expected a time range like 08:00-18:00, got {times!r}")
    start, end = _minute(start_text), _minute(end_text)
    if start == 24 * 60:
        raise ValueError(f"a span cannot start at 24:00: {text!r}")
    return Span(frozenset(days), start, end)


def _minute(text: str) -> int:
    hh, sep, mm = text.partition(":")
    if not (sep and hh.isdigit() and mm.isdigit() and len(mm) == 2):
        raise ValueError(f"expected HH:MM, got {text!r}")
    h, m = int(hh), int(mm)
    if not (0 <= m < 60 and (0 <= h < 24 or (h == 24 and m == 0))):
        raise ValueError(f"not a time of day: {text!r}")
    return h * 60 + m
