"""Times for people: in the configured time zone (``[display] timezone``) or the machine's, zone named."""

from __future__ import annotations

import time
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LOCAL = "local"
"""The zone name that means "the machine's own time zone"."""


def check_timezone(value: object) -> str:
    """Return ``value`` when it names a time zone ("Europe/London", "UTC" or "local").

    Raises:
        ValueError: what was wrong, for ``cxmon check``.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f'expected a time zone name like "Europe/London", "UTC" or "local", got {value!r}')
    if value == LOCAL:
        return value
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f'unknown time zone {value!r} (an IANA name like "Europe/London", "UTC" or "local")'
        ) from None
    return value


def zone(name: str | None) -> tzinfo | None:
    """Return the zone called ``name`` (None for the machine's own, which follows its DST rules)."""
    if name is None or name == LOCAL:
        return None
    if name.upper() == "UTC":
        return UTC
    return ZoneInfo(name)


def when(ts: float, tz: tzinfo | None) -> datetime:
    """Return epoch ``ts`` as an aware datetime in ``tz`` (None: the machine's zone)."""
    if tz is None:
        return datetime.fromtimestamp(ts).astimezone()
    return datetime.fromtimestamp(ts, tz)


def clock(ts: float, tz: tzinfo | None) -> str:
    """Format an epoch time as ``HH:MM:SS`` in ``tz``; "—" for no time."""
    if ts <= 0:
        return "—"
    return when(ts, tz).strftime("%H:%M:%S")


def zone_label(tz: tzinfo | None, ts: float | None = None) -> str:
    """Name ``tz`` as people read it at ``ts`` (now when None): "UTC", "CET", "IDT", or "+0530"."""
    moment = when(time.time() if ts is None or ts <= 0 else ts, tz)
    name = moment.tzname() or ""
    if not name or name[0] in "+-":
        offset = moment.strftime("%z")
        return f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    return name


TIME_HELP = "ISO 8601 time (without a zone: in [display] timezone) or epoch seconds"
"""What ``--from`` and ``--to`` take, for the command line's help."""


def parse_time(text: str, tz: tzinfo | None = UTC) -> float:
    """Parse ISO 8601 (``2026-01-05T08:00:00Z``, ``…+03:00``) or epoch seconds.

    Args:
        text: the time as typed.
        tz: the zone of a time written without one (None: the machine's own), which is the zone
            the dashboard shows times in: a floor manager types the clock time they saw.

    Raises:
        ValueError: neither.
    """
    try:
        return float(text)
    except ValueError:
        pass
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        # A naive datetime's timestamp() reads it in the machine's zone.
        dt = dt if tz is None else dt.replace(tzinfo=tz)
    return dt.timestamp()
