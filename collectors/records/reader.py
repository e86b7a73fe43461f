"""Read a call-record CSV into time-ordered ContactEvents (one call per row)."""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from collectors.records.mapping import RecordMapping
from cxmon.events import ContactEvent, EventKind

_RANK = {EventKind.ARRIVED: 0, EventKind.ANSWERED: 1, EventKind.ABANDONED: 1, EventKind.RESOLVED: 2}
_HALF_DAY = 43200.0
MAX_RECORD_LINES = 20
"""Lines one record may span (a quoted field may hold line ends); more is a quote left open."""
MAX_RECORD_BYTES = 65_536
"""Bytes a record spanning several lines may hold before it counts as a quote left open."""


@dataclass(slots=True)
class ReadState:
    """Progress and counters of one read (updated from the reading thread)."""

    bytes_done: int = 0
    bytes_total: int = 0
    rows: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    """calls answered / abandoned / not_queued / answered_untimed / skipped:<outcome> / bad."""


class _Times:
    """Turns a row's date and time-of-day strings into epoch seconds, caching per date."""

    def __init__(self, m: RecordMapping) -> None:
        self.m = m
        self.tz = m.tz
        self._dates: dict[str, tuple[int, int, int]] = {}
        self._hours: dict[tuple[tuple[int, int, int], int], float] = {}
        self.hms = m.time_format == "%H:%M:%S"

    def day(self, text: str) -> tuple[int, int, int]:
        hit = self._dates.get(text)
        if hit is None:
            d = dt.datetime.strptime(text.strip(), self.m.date_format)
            hit = (self.m.year or d.year, d.month, d.day)
            self._dates[text] = hit
        return hit

    def at(self, day: tuple[int, int, int] | None, text: str) -> float:
        """Epoch seconds of ``text`` (a time of day on ``day``, a datetime, or epoch seconds)."""
        m = self.m
        if m.time_format == "epoch":
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"not an epoch time: {text!r}") from None
            if not math.isfinite(value):
                raise ValueError(f"not a finite time: {text!r}")
            return value
        if day is None:
            t = dt.datetime.strptime(text.strip(), m.time_format)
            if m.year:
                t = t.replace(year=m.year)
            return t.replace(tzinfo=self.tz).timestamp()
        if self.hms:
            try:
                h, mi, s = (int(part) for part in text.split(":"))
            except ValueError:
                raise ValueError(f"not a time of day: {text!r}") from None
            if not (0 <= h < 24 and 0 <= mi < 60 and 0 <= s < 60):
                raise ValueError(f"not a time of day: {text!r}")
            secs = h * 3600 + mi * 60 + s
        else:
            tt = dt.datetime.strptime(text.strip(), m.time_format)
            secs = tt.hour * 3600 + tt.minute * 60 + tt.second
        if not 0 <= secs < 86400 * 2:
            raise ValueError(text)
        # Local hour starts are cached: zone arithmetic per value would dominate the read.
        hour, rest = divmod(secs, 3600)
        start = self._hours.get((day, hour))
        if start is None:
            local = dt.datetime(*day) + dt.timedelta(hours=hour)
            start = local.replace(tzinfo=self.tz).timestamp()
            self._hours[(day, hour)] = start
        return start + rest


def read_records(
    path: str | Path,
    mapping: RecordMapping,
    source: str = "records",
    on_error: Callable[[int, str], None] | None = None,
    state: ReadState | None = None,
) -> list[ContactEvent]:
    """Read every row of a call-record CSV and return its events ordered by time.

    Per row: ``arrived`` when it entered the queue (or reached an agent directly), then
    ``answered`` at the queue exit (wait = queue time; a call served without queueing waits 0)
    and ``resolved`` at the service end (duration = service time), or ``abandoned`` at the queue
    exit (reason ``hangup``). Calls that never reached a queue or an agent make no events, nor do
    skipped outcomes; both are counted in ``state.counts``.

    Args:
        path: the CSV file (header row first).
        mapping: which columns hold what.
        source: the collector name put on every event.
        on_error: called with (line number, why) for each row that cannot be read.
        state: progress and counters to update.

    Returns:
        The events, sorted by time (ties: arrivals before exits before resolutions).
    """
    data = Path(path).read_bytes()
    return read_rows(data, mapping, source, on_error, state)


def header_end(data: bytes) -> int:
    """Return the byte offset just after the header line (the first row starts there)."""
    cut = data.find(b"\n")
    return len(data) if cut < 0 else cut + 1


def header_index(data: bytes, mapping: RecordMapping) -> dict[str, int]:
    """The columns of ``data``'s header line: name → position."""
    head = data[: header_end(data)].decode("utf-8", "replace")
    header = next(csv.reader([head], delimiter=mapping.delimiter), [])
    return {name.strip(): i for i, name in enumerate(header)}


def missing_columns(data: bytes, mapping: RecordMapping) -> list[str]:
    """The columns ``mapping`` reads that ``data``'s header does not have."""
    index = header_index(data, mapping)
    return [c for c in mapping.columns() if c not in index]


def read_rows(
    data: bytes,
    mapping: RecordMapping,
    source: str = "records",
    on_error: Callable[[int, str], None] | None = None,
    state: ReadState | None = None,
    start: int | None = None,
    end: int | None = None,
) -> list[ContactEvent]:
    """Read the rows of a call-record CSV held in ``data`` between two byte offsets, like
    :func:`read_records` (which reads them all).

    Args:
        data: the whole file (its header line is always read from the top).
        mapping: which columns hold what.
        source: the collector name put on every event.
        on_error: called with (line number in the file, why) for each row that cannot be read.
        state: progress and counters to update (``bytes_done`` counts from ``start``).
        start: offset of the first row to read, at the start of a line (default: after the header).
        end: offset after the last row to read (default: the end of ``data``).

    Returns:
        The events of those rows, sorted by time (ties: arrivals before exits before resolutions).
    """
    state = state or ReadState()
    m = mapping
    times = _Times(m)
    report = on_error or (lambda lineno, why: None)
    keyed: list[tuple[float, int, int, ContactEvent]] = []
    seen: set[str] = set()
    first = header_end(data)
    start = first if start is None else max(start, first)
    end = len(data) if end is None else end
    state.bytes_total = len(data)
    state.bytes_done = start
    if not data:
        return []
    index = header_index(data, m)
    missing_cols = [c for c in m.columns() if c not in index]
    if missing_cols:
        report(1, f"columns not in the header: {', '.join(missing_cols)}")
        state.counts["bad"] += 1
        return []
    col = {name: index[getattr(m, name)] if getattr(m, name) else None for name in _COLUMN_FIELDS}
    width = max(index.values()) + 1
    # Line numbers stay those of the file, wherever the read starts.
    base = data.count(b"\n", 0, start)
    for lineno, row in _records(data, start, end, base, m.delimiter, width, state):
        state.rows += 1
        if isinstance(row, str):
            report(lineno, row)
            state.counts["bad"] += 1
            continue
        if not row:
            continue
        if len(row) < width:
            report(lineno, f"expected {width} columns, got {len(row)}")
            state.counts["bad"] += 1
            continue
        try:
            events = _row_events(row, col, m, times, source, lineno, seen, state)
        except (ValueError, OverflowError) as exc:
            report(lineno, f"cannot read the row: {exc}")
            state.counts["bad"] += 1
            continue
        for ev in events:
            keyed.append((ev.ts, _RANK[ev.kind], lineno, ev))
    keyed.sort(key=lambda k: k[:3])
    return [k[3] for k in keyed]


_COLUMN_FIELDS = (
    "arrival",
    "queue_start",
    "queue_exit",
    "service_start",
    "service_end",
    "queue",
    "contact",
    "customer",
    "agent",
    "outcome",
    "date",
)


class _OpenQuote(Exception):
    """A record ran past MAX_RECORD_LINES or MAX_RECORD_BYTES: a quote was left open."""


class _Lines:
    """The lines of ``data[start:end]`` for a csv reader, watching the record being read.

    Before each record the caller sets ``fresh``; the first line handed out after it starts a
    record (its number and offset are kept, and whether any of its lines was not UTF-8 or held a
    NUL). A record that runs on too long raises :class:`_OpenQuote` out of the csv reader.
    """

    def __init__(self, data: bytes, pos: int, end: int, lineno: int, state: ReadState) -> None:
        self.data = data
        self.pos = pos
        self.end = end
        self.lineno = lineno
        self.state = state
        self.fresh = True
        self.first = lineno
        """Line number of the record's first line."""
        self.after_first = pos
        """Offset just after the record's first line (where reading resumes if it is broken)."""
        self.lines = 0
        self.bytes = 0
        self.problem = ""

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pos >= self.end:
            raise StopIteration
        nl = self.data.find(b"\n", self.pos, self.end)
        stop = self.end if nl < 0 else nl + 1
        raw = self.data[self.pos : stop]
        self.pos = stop
        self.lineno += 1
        self.state.bytes_done += len(raw)
        if self.fresh:
            self.fresh = False
            self.first, self.after_first = self.lineno, stop
            self.lines, self.bytes, self.problem = 0, 0, ""
        self.lines += 1
        self.bytes += len(raw)
        if self.lines > 1 and (self.lines > MAX_RECORD_LINES or self.bytes > MAX_RECORD_BYTES):
            raise _OpenQuote
        if b"\0" in raw and not self.problem:
            self.problem = f"a NUL byte at column {raw.index(0) + 1} of line {self.lineno}"
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if not self.problem:
                self.problem = f"bytes that are not UTF-8 at column {exc.start + 1} of line {self.lineno}"
            return raw.decode("utf-8", "replace")


def _records(
    data: bytes, start: int, end: int, base: int, delimiter: str, width: int, state: ReadState
) -> Iterator[tuple[int, list[str] | str]]:
    """Yield (line number, fields) per record of ``data[start:end]``, or (line number, why) for
    one that cannot be read; reading always goes on after a bad record.

    A record spanning several lines that is not a readable row (or has fewer than ``width``
    fields) is taken for a quote left open: it is reported at its first line and the lines after
    that are read again as rows of their own.
    """
    lines = _Lines(data, start, end, base, state)
    reader = csv.reader(lines, delimiter=delimiter)
    while True:
        lines.fresh = True
        try:
            row: list[str] | str = next(reader)
        except StopIteration:
            return
        except _OpenQuote:
            row = f"a quoted field is not closed within {MAX_RECORD_LINES} lines"
        except csv.Error as exc:
            row = f"not a CSV row: {exc}"
            if lines.lines > 1:
                row = f"not a CSV row (a quoted field left open?): {exc}"
        else:
            if lines.problem:
                row = f"the row holds {lines.problem}"
            elif lines.lines > 1 and len(row) < width:
                row = f"a quoted field left open: the record runs over {lines.lines} lines"
        first = lines.first
        if isinstance(row, str) and lines.lines > 1:
            # Read the lines the broken record took again, each as a row of its own.
            state.bytes_done -= lines.pos - lines.after_first
            lines = _Lines(data, lines.after_first, end, first, state)
            reader = csv.reader(lines, delimiter=delimiter)
        yield first, row


def _row_events(
    row: list[str],
    col: dict[str, int | None],
    m: RecordMapping,
    times: _Times,
    source: str,
    lineno: int,
    seen: set[str],
    state: ReadState,
) -> list[ContactEvent]:
    def get(name: str) -> str:
        i = col[name]
        return row[i].strip() if i is not None else ""

    outcome = get("outcome")
    if outcome and outcome in m.skipped:
        state.counts[f"skipped:{outcome}"] += 1
        return []
    day = None
    if col["date"] is not None:
        text = get("date")
        try:
            day = times.day(text)
        except ValueError:
            raise ValueError(f"column {m.date}: not a date ({m.date_format}): {text!r}") from None
    missing = m.missing

    def when(name: str) -> float | None:
        # A time the mapping names no column for did not happen (it is not an empty text to parse).
        if col[name] is None:
            return None
        text = get(name)
        if text in missing:
            return None
        try:
            return times.at(day, text)
        except (ValueError, OverflowError) as exc:
            raise ValueError(f"column {getattr(m, name)}: {exc}") from None

    arrival = when("arrival")
    qs, qe = when("queue_start"), when("queue_exit")
    ss, se = when("service_start"), when("service_end")
    start = qs if qs is not None else ss
    if start is None:
        if outcome and outcome in m.answered:
            # Answered, yet neither queued nor served by its times (the bank's month has 29): no
            # time to place it at, so not counted; apart from the calls that never reached a queue
            # so that an analyst comparing counts finds them.
            state.counts["answered_untimed"] += 1
        else:
            state.counts["not_queued"] += 1
        return []
    if day is not None:
        # Times of day after midnight belong to the next day.
        anchor = arrival if arrival is not None else start
        qs, qe, ss, se = (_after(t, anchor) for t in (qs, qe, ss, se))
        start = qs if qs is not None else ss
        assert start is not None

    if outcome:
        if outcome in m.answered:
            answered = True
        elif outcome in m.abandoned:
            answered = False
        else:
            raise ValueError(f"unknown outcome {outcome!r}")
    else:
        answered = ss is not None

    queue = get("queue") or m.queue_value
    contact = get("contact") or f"line{lineno}"
    if day is not None:
        contact = f"{day[0]:04d}-{day[1]:02d}-{day[2]:02d}/{contact}"
    if contact in seen:
        contact = f"{contact}#{lineno}"
    seen.add(contact)
    customer: str | None = get("customer")
    if customer in m.customer_missing:
        customer = None
    channel = m.channel

    def ev(ts: float, kind: EventKind, **kw: object) -> ContactEvent:
        return ContactEvent(ts, kind, contact, channel, queue, source, customer, **kw)  # type: ignore[arg-type]

    out = [ev(start, EventKind.ARRIVED)]
    if answered:
        # Queue exit is when the call left the queue for an agent; service start can be a second
        # or two earlier in this kind of data (the two systems' clocks differ).
        answer_at = qe if qs is not None and qe is not None else (ss if ss is not None else start)
        answer_at = max(answer_at, start)
        out.append(ev(answer_at, EventKind.ANSWERED, wait=answer_at - start))
        if ss is not None and se is not None:
            out.append(ev(max(se, answer_at), EventKind.RESOLVED, duration=max(se - ss, 0.0)))
        state.counts["answered"] += 1
    else:
        leave = qe if qe is not None else start
        leave = max(leave, start)
        out.append(ev(leave, EventKind.ABANDONED, wait=leave - start, reason="hangup"))
        state.counts["abandoned"] += 1
    return out


def _after(t: float | None, anchor: float) -> float | None:
    if t is not None and t < anchor - _HALF_DAY:
        return t + 86400.0
    return t
