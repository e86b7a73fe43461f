"""Column mappings for call-record files, and the built-in presets (the "Anonymous Bank" format)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field, replace
from typing import Any

from cxmon.validation import Problems, Section, integer, string

TIME_FIELDS = ("arrival", "queue_start", "queue_exit", "service_start", "service_end")


@dataclass(frozen=True, slots=True)
class RecordMapping:
    """How the columns of a call-record CSV become a call's times and outcome."""

    arrival: str | None = None
    """Column with the time the call reached the system (used when it never queued)."""
    queue_start: str | None = None
    queue_exit: str | None = None
    service_start: str | None = None
    service_end: str | None = None
    queue: str | None = None
    """Column whose value is the queue name (the Anonymous Bank uses the call type)."""
    queue_value: str = "calls"
    """Queue name when there is no queue column."""
    channel: str = "voice"
    contact: str | None = None
    """Column with the call id (made unique per file); the line number when absent."""
    customer: str | None = None
    agent: str | None = None
    outcome: str | None = None
    """Column with the outcome; without it a call with a service start was answered."""
    answered: tuple[str, ...] = ("AGENT", "ANSWERED", "answered")
    abandoned: tuple[str, ...] = ("HANG", "ABANDONED", "abandoned")
    skipped: tuple[str, ...] = ()
    """Outcomes left out entirely (counted), e.g. PHANTOM: calls that could not be traced."""
    date: str | None = None
    """Column with the date when the time columns hold only a time of day."""
    date_format: str = "%Y-%m-%d"
    year: int | None = None
    """Replaces the year of every date (a file whose dates were shifted by an earlier conversion)."""
    time_format: str = "%H:%M:%S"
    """strptime format of the time columns, or "epoch" for epoch seconds. H:MM:SS without zero
    padding is accepted by %H:%M:%S."""
    missing: tuple[str, ...] = ("", "0:00:00", "00:00:00")
    """Values meaning "did not happen"."""
    customer_missing: tuple[str, ...] = ("", "0")
    timezone: str = "UTC"
    delimiter: str = ","
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def tz(self) -> dt.tzinfo:
        """The timezone times are read in."""
        return dt.UTC if self.timezone == "UTC" else zoneinfo.ZoneInfo(self.timezone)

    def columns(self) -> list[str]:
        """Every column the mapping reads."""
        names = [getattr(self, f) for f in (*TIME_FIELDS, "queue", "contact", "customer", "agent")]
        names += [self.outcome, self.date]
        return [n for n in names if n]


ANONYMOUS_BANK = RecordMapping(
    arrival="vru_entry",
    queue_start="q_start",
    queue_exit="q_exit",
    service_start="ser_start",
    service_end="ser_exit",
    queue="type",
    contact="call_id",
    customer="customer_id",
    agent="server",
    outcome="outcome",
    answered=("AGENT",),
    abandoned=("HANG",),
    skipped=("PHANTOM",),
    date="date",
    date_format="%Y-%m-%d",
    # The file's dates read 2010-08-DD after an earlier conversion; the calls are from August 1999.
    year=1999,
    time_format="%H:%M:%S",
    missing=("0:00:00",),
    customer_missing=("0", ""),
    timezone="Asia/Jerusalem",
)
"""The Technion "Anonymous Bank" call-centre format (Brown et al., JASA 2005)."""

PRESETS: dict[str, RecordMapping] = {"anonymous-bank": ANONYMOUS_BANK}


def _str_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(value)
    return tuple(value)


def parse_mapping(
    data: object, path: str, problems: Problems, base: RecordMapping | None = None
) -> RecordMapping:
    """Validate a mapping table (keys as in :class:`RecordMapping`), on top of ``base``.

    Problems are added to ``problems`` with their key path.
    """
    base = base or RecordMapping()
    sec = Section(data, path, problems)
    changes: dict[str, Any] = {}

    def text(name: str) -> None:
        if name in sec.data:
            changes[name] = sec.get(name, string, getattr(base, name), "a column name or string")
        else:
            sec.known.append(name)

    for name in (*TIME_FIELDS, "queue", "contact", "customer", "agent", "outcome", "date"):
        text(name)
    for name in ("queue_value", "channel", "date_format", "time_format", "timezone", "delimiter"):
        text(name)
    for name in ("answered", "abandoned", "skipped", "missing", "customer_missing"):
        if name in sec.data:
            changes[name] = sec.get(name, _str_tuple, getattr(base, name), "a list of strings")
        else:
            sec.known.append(name)
    if "year" in sec.data:
        changes["year"] = sec.get("year", integer(1), 0, "a year like 1999")
    else:
        sec.known.append("year")
    sec.finish()
    mapping = replace(base, **changes)
    if "timezone" in changes:
        try:
            mapping.tz  # noqa: B018 - resolves the zone name
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.add(sec.key("timezone"), f"unknown timezone {mapping.timezone!r}")
    if len(mapping.delimiter) != 1:
        problems.add(sec.key("delimiter"), "expected one character")
    if not (mapping.queue_start or mapping.service_start or mapping.arrival):
        problems.add(path, "needs at least one of queue_start, service_start, arrival")
    return mapping
