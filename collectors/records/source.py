"""RecordsSource: replays a call-record file through the engine, paced (×speed) or as fast as it goes."""

from __future__ import annotations

import asyncio
import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collectors.queue_log.options import resolve_path
from collectors.records.mapping import PRESETS, RecordMapping, parse_mapping
from collectors.records.reader import ReadState, read_records
from cxmon.config import _Problems, _Section, _str
from cxmon.errors import ConfigError
from cxmon.events import ContactEvent, EventKind

if TYPE_CHECKING:
    from collectors.base import Sink
    from cxmon.config import CollectorConfig, Config

PACE_INTERVAL = 0.05
"""Wall seconds between batches when paced."""
MAX_BATCH = 2000
HEARTBEAT_EVERY = 2.0
"""Wall seconds without a replayed event before a heartbeat is sent."""


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
    problems = _Problems()
    sec = _Section(options, path, problems)
    file = sec.get("path", _str, "", "a file path", required=True)
    preset = sec.get("preset", _str, "", "a preset name")
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
        text = sec.get(name, _str, "", "an ISO time like 1999-08-02T07:00")
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

    def __init__(self, name: str, options: RecordsOptions) -> None:
        """Create the source.

        Args:
            name: collector name, put into every event's ``source``.
            options: validated options.
        """
        self.name = name
        self.options = options
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
        options, problems = parse_options(collector.options, collector.path or collector.name)
        if options is None:
            raise ConfigError(problems, config.source)
        from dataclasses import replace

        options = replace(options, path=resolve_path(options.path, config.source))
        return cls(collector.name, options)

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
        """Return (bytes done, bytes total, rows read); bytes advance as calls are replayed."""
        total = self.state.bytes_total
        if self._events_total:
            done = total * self._events_done // self._events_total
        else:
            done = self.state.bytes_done // 2 if not self.done else total
        return done, total, self.state.rows

    # ------------------------------------------------------------------ running

    async def run(self, sink: Sink) -> None:
        """Read the file, then hand its events over in time order; returns when all are replayed."""
        opts = self.options
        errors: list[tuple[int, str]] = []
        try:
            events = await asyncio.to_thread(
                read_records,
                opts.path,
                opts.mapping,
                self.name,
                lambda lineno, why: errors.append((lineno, why)),
                self.state,
            )
        except OSError as exc:
            sink.error(self.path, f"cannot read: {exc.strerror or exc}")
            self.done = True
            return
        for lineno, why in errors:
            sink.error(f"{self.path}:{lineno}", why)
        if opts.start is not None:
            events = [e for e in events if e.ts >= opts.start]
        if opts.end is not None:
            events = [e for e in events if e.ts < opts.end]
        self._events_total = len(events)
        self.status.update(rows=self.state.rows, **dict(self.state.counts))
        if not events:
            self.done = True
            return
        self._now = opts.start if opts.start is not None else events[0].ts
        sink.set_up(True)
        try:
            if opts.speed is None:
                await self._run_max(sink, events)
            else:
                await self._run_paced(sink, events, opts.speed)
        finally:
            self.done = True
            sink.set_up(False)

    async def _run_max(self, sink: Sink, events: list[ContactEvent]) -> None:
        for i in range(0, len(events), MAX_BATCH):
            batch = events[i : i + MAX_BATCH]
            self._now = batch[-1].ts
            await sink.emit(batch)
            self._events_done = i + len(batch)
            await asyncio.sleep(0)

    async def _run_paced(self, sink: Sink, events: list[ContactEvent], speed: float) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        start = self._now
        i = 0
        beat = 0
        n = len(events)
        quiet_since = t0
        while i < n:
            beat += 1
            await asyncio.sleep(max(0.0, t0 + beat * PACE_INTERVAL - loop.time()))
            now = start + (loop.time() - t0) * speed
            j = i
            while j < n and events[j].ts <= now:
                j += 1
            self._now = max(self._now, now)
            if j > i:
                await sink.emit(events[i:j])
                self._events_done = j
                i = j
                quiet_since = loop.time()
            elif loop.time() - quiet_since >= HEARTBEAT_EVERY:
                # The replay is alive and nothing happened (a quiet hour): say so, not STALE.
                quiet_since = loop.time()
                beat_event = ContactEvent(
                    now, EventKind.HEARTBEAT, "", self.options.mapping.channel, "", self.name
                )
                await sink.emit([beat_event])
