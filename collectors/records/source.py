"""RecordsSource: replays a call-record file through the engine, paced (×speed) or as fast as it goes."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collectors.base import Offset, checked_options
from collectors.queue_log.options import resolve_path
from collectors.records.mapping import PRESETS, RecordMapping, parse_mapping
from collectors.records.reader import ReadState, header_end, read_rows
from cxmon.errors import ConfigError
from cxmon.events import ContactEvent, EventKind
from cxmon.validation import Problems, Section, string

if TYPE_CHECKING:
    from collectors.base import Sink
    from cxmon.config import CollectorConfig, Config

PACE_INTERVAL = 0.05
"""Wall seconds between batches when paced."""
MAX_BATCH = 2000
HEARTBEAT_EVERY = 2.0
"""Wall seconds without a replayed event before a heartbeat is sent."""
BEATS_PER_STALE = 4
"""Heartbeats per ``stale_after`` of replayed time in a quiet stretch, at the least: at a high
speed two wall seconds are many times ``stale_after`` of replayed time."""


@dataclass(frozen=True, slots=True)
class RecordsOptions:
    """A validated ``[[collectors]]`` table of type "records"."""

    path: str
    mapping: RecordMapping
    speed: float | None = None
    """Source seconds per wall second; None replays as fast as the engine takes it."""
    start: float | None = None
    """Leave out calls before this time (epoch seconds)."""
    end: float | None = None


def _speed(value: Any) -> float | None:
    if value == "max":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(value)
    return float(value)


def load_mapping_file(path: str | Path) -> dict[str, Any]:
    """Read a ``--mapping`` TOML file: its ``[mapping]`` table, or its top level.

    Raises:
        ConfigError: the file cannot be read or parsed.
    """
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read: {exc.strerror}"], str(p)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{p}: {exc}"], str(p)) from None
    table = raw.get("mapping", raw)
    return table if isinstance(table, dict) else {}


def parse_options(options: dict[str, Any], path: str) -> tuple[RecordsOptions | None, list[str]]:
    """Validate a records table: ``path``, ``preset`` and/or ``mapping``, ``speed``, ``start``, ``end``.

    Returns:
        (options, problems): options is None when there are problems.
    """
    problems = Problems()
    sec = Section(options, path, problems)
    file = sec.get("path", string, "", "a file path", required=True)
    preset = sec.get("preset", string, "", "a preset name")
    base = RecordMapping()
    if preset:
        if preset in PRESETS:
            base = PRESETS[preset]
        else:
            problems.add(sec.key("preset"), f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    raw_mapping = sec.raw("mapping")
    if raw_mapping is None and not preset:
        problems.add(path, "needs a preset or a mapping table")
        mapping = base
    else:
        mapping = parse_mapping(raw_mapping or {}, sec.key("mapping"), problems, base)
    speed = sec.get("speed", _speed, None, 'a positive number or "max"')
    if "speed" not in sec.data:
        speed = None
    bounds: list[float | None] = []
    for name in ("start", "end"):
        text = sec.get(name, string, "", "an ISO time like 1999-08-02T07:00")
        if not text:
            bounds.append(None)
            continue
        try:
            t = dt.datetime.fromisoformat(text)
        except ValueError:
            problems.add(sec.key(name), f"expected an ISO time like 1999-08-02T07:00, got {text!r}")
            bounds.append(None)
            continue
        if t.tzinfo is None:
            t = t.replace(tzinfo=mapping.tz)
        bounds.append(t.timestamp())
    sec.finish()
    if problems.items:
        return None, problems.items
    return RecordsOptions(path=file, mapping=mapping, speed=speed, start=bounds[0], end=bounds[1]), []


class RecordsSource:
    """A call-record file replayed as live: a ``ClockedSource`` whose clock is the replayed time."""

    type = "records"

    def __init__(self, name: str, options: RecordsOptions, stale_after: float | None = None) -> None:
        """Create the source.

        Args:
            name: collector name, put into every event's ``source``.
            options: validated options.
            stale_after: the engine's ``stale_after``: paced, a quiet stretch has a heartbeat at
                least every quarter of it in replayed time (None: every two wall seconds only).
        """
        self.name = name
        self.options = options
        self.beat_every = stale_after / BEATS_PER_STALE if stale_after is not None else None
        """Replayed seconds of quiet after which a paced replay sends a heartbeat (None: no limit)."""
        self.path = options.path
        self.state = ReadState()
        self.status: dict[str, Any] = {}
        self._now = options.start or 0.0
        self._events_total = 0
        self._events_done = 0
        self.done = False

    @classmethod
    def validate(cls, options: dict[str, Any], path: str) -> list[str]:
        """Return every problem with a records ``[[collectors]]`` table, each with its key path."""
        return parse_options(options, path)[1]

    @classmethod
    def from_config(cls, collector: CollectorConfig, config: Config) -> RecordsSource:
        """Build the source a validated ``[[collectors]]`` table describes.

        Raises:
            ConfigError: the options are invalid.
        """
        options = checked_options(parse_options, collector, config)
        from dataclasses import replace

        options = replace(options, path=resolve_path(options.path, config.source))
        return cls(collector.name, options, config.monitor.stale_after)

    # ------------------------------------------------------------------ ClockedSource

    @property
    def paced(self) -> bool:
        """True when replayed time follows the wall clock ×``speed``."""
        return self.options.speed is not None

    def clock(self) -> float:
        """Return the replayed time up to which every event has been handed over."""
        return self._now

    # ------------------------------------------------------------------ progress

    def progress(self) -> tuple[int, int, int]:
        """Return (bytes done, bytes total, rows done); both advance as calls are replayed (the
        file is read whole first, and a figure of rows read would be complete long before the end)."""
        total, rows = self.state.bytes_total, self.state.rows
        if self._events_total:
            done = total * self._events_done // self._events_total
            rows = rows * self._events_done // self._events_total
        else:
            done = self.state.bytes_done // 2 if not self.done else total
            rows = rows if self.done else 0
        return done, total, rows

    # ------------------------------------------------------------------ running

    async def run(self, sink: Sink) -> None:
        """Read the file, then hand its events over in time order; returns when all are replayed.

        Every batch carries an :class:`~collectors.base.Offset` naming the part of the file it
        comes from and how many of that part's events have been handed over, so a second run
        skips what the store already holds: only rows appended since, or the rest of a part an
        interrupted run did not finish.
        """
        opts = self.options
        errors: list[tuple[int, str]] = []
        try:
            data = await asyncio.to_thread(Path(opts.path).read_bytes)
        except OSError as exc:
            # A file that cannot be read is not an import that finished: the run must fail.
            sink.error(self.path, f"cannot read: {exc.strerror or exc}")
            self.done = True
            raise
        self.state.bytes_total = len(data)
        parts = await asyncio.to_thread(self._parts, data, await sink.load_offset(), sink)

        def read(part: _Part) -> list[ContactEvent]:
            events = read_rows(
                data,
                opts.mapping,
                self.name,
                lambda lineno, why: errors.append((lineno, why)),
                self.state,
                part.start,
                part.end,
            )
            if opts.start is not None:
                events = [e for e in events if e.ts >= opts.start]
            if opts.end is not None:
                events = [e for e in events if e.ts < opts.end]
            return events

        work: list[tuple[_Part, list[ContactEvent]]] = []
        for part in parts:
            events = await asyncio.to_thread(read, part)
            for lineno, why in errors:
                if part.skip == 0:  # a resumed part was read (and its errors reported) before
                    sink.error(f"{self.path}:{lineno}", why)
            errors.clear()
            work.append((part, events))
        self.state.bytes_done = len(data)
        self._events_total = sum(len(events) - min(part.skip, len(events)) for part, events in work)
        # The events an earlier run handed over: read again with their rows, and skipped.
        skipped = sum(min(part.skip, len(events)) for part, events in work)
        self.status.update(rows=self.state.rows, skipped_events=skipped, **dict(self.state.counts))
        if not self._events_total:
            # Nothing new; still record where the file ends, so the next run skips it too.
            for part, events in work:
                await sink.emit([], Offset(part.file_id, len(events)))
            self.done = True
            return
        first = next(events[part.skip] for part, events in work if len(events) > part.skip)
        self._now = opts.start if opts.start is not None else first.ts
        sink.set_up(True)
        try:
            for part, events in work:
                if opts.speed is None:
                    await self._run_max(sink, events, part)
                else:
                    await self._run_paced(sink, events, opts.speed, part)
        finally:
            self.done = True
            sink.set_up(False)

    def _parts(self, data: bytes, stored: Offset | None, sink: Sink) -> list[_Part]:
        """The parts of ``data`` still to hand over, given the offset stored by an earlier run."""
        head = data[: header_end(data)]
        ident = _identity(head, self.options)
        out: list[_Part] = []
        start = len(head)
        if stored is not None:
            done = _Part.parse(stored.file_id, stored.position)
            if (
                done is not None
                and done.ident == ident
                and done.end <= len(data)
                and _digest(data[done.start : done.end]) == done.digest
            ):
                out.append(done)  # the runs skips the events already handed over
                start = done.end
            else:
                sink.error(
                    self.path,
                    "the stored offset belongs to another file or other options; reading from the start",
                )
        if start < len(data) or not out:
            out.append(_Part(ident, start, len(data), _digest(data[start:]), 0))
        return out

    async def _run_max(self, sink: Sink, events: list[ContactEvent], part: _Part) -> None:
        start = min(part.skip, len(events))
        if start == len(events):
            return
        for i in range(start, len(events), MAX_BATCH):
            batch = events[i : i + MAX_BATCH]
            self._now = batch[-1].ts
            await sink.emit(batch, Offset(part.file_id, i + len(batch)))
            self._events_done += len(batch)
            await asyncio.sleep(0)

    async def _run_paced(self, sink: Sink, events: list[ContactEvent], speed: float, part: _Part) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        i = min(part.skip, len(events))
        if i == len(events):
            return
        start = max(self._now, events[i].ts) if self._events_done else self._now
        beat = 0
        n = len(events)
        quiet_since = t0
        said = self._now  # the replayed time of the newest event or heartbeat handed over
        while i < n:
            beat += 1
            await asyncio.sleep(max(0.0, t0 + beat * PACE_INTERVAL - loop.time()))
            now = start + (loop.time() - t0) * speed
            j = i
            while j < n and events[j].ts <= now:
                j += 1
            if j > i:
                await sink.emit(events[i:j], Offset(part.file_id, j))
                self._events_done += j - i
                i = j
                quiet_since = loop.time()
                said = events[j - 1].ts
            if loop.time() - quiet_since >= HEARTBEAT_EVERY or (
                self.beat_every is not None and now - said >= self.beat_every
            ):
                # The replay is alive and nothing happened (a quiet hour): say so, not STALE. The
                # engine judges silence in replayed time: at 600x two wall seconds are 20 minutes of
                # it, and every quiet stretch longer than stale_after went STALE and back. At a
                # speed where one step is more than that, a step's events are not enough either.
                quiet_since = loop.time()
                said = now
                beat_event = ContactEvent(
                    now, EventKind.HEARTBEAT, "", self.options.mapping.channel, "", self.name
                )
                await sink.emit([beat_event])
            # The clock moves on once what it reaches has been said: the engine ticks on it.
            self._now = max(self._now, now)


def _digest(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()[:16]


def _identity(head: bytes, options: RecordsOptions) -> str:
    """The header line and the options that shape the events: the same events come from the same rows."""
    shape = repr((options.mapping, options.start, options.end)).encode()
    return _digest(head + b"\0" + shape)


@dataclass(frozen=True, slots=True)
class _Part:
    """A byte range of rows read as one time-ordered sequence of events, and how many were handed over.

    Its :class:`~collectors.base.Offset` is ``records:IDENT:START-END:DIGEST`` (the content of the
    range, so a rewritten file is not taken for the one already imported) with the count of events.
    """

    ident: str
    start: int
    end: int
    digest: str
    skip: int
    """Events of this part already handed over (they come first in its time order)."""

    @property
    def file_id(self) -> str:
        return f"records:{self.ident}:{self.start}-{self.end}:{self.digest}"

    @classmethod
    def parse(cls, file_id: str, position: int) -> _Part | None:
        try:
            tag, ident, span, digest = file_id.split(":")
            a, b = span.split("-")
            if tag != "records":
                return None
            return cls(ident, int(a), int(b), digest, position)
        except ValueError:
            return None
