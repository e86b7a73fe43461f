"""JsonlFileSource: ContactEvents as JSON lines (what ``cxmon simulate --out`` writes), read or followed."""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from collectors.base import Offset
from cxmon.errors import ConfigError
from cxmon.events import ContactEvent
from cxmon.validation import Problems, Section, boolean, string

if TYPE_CHECKING:
    from collectors.base import Sink
    from cxmon.config import CollectorConfig, Config

CHUNK = 1024 * 1024
"""Bytes per read: big enough that a backfill is not paced by hand-offs to the reading thread."""
BATCH = 5000
POLL = 0.25


def _read(path: str, position: int, size: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(position)
        return fh.read(size)


def lines_before(path: str, position: int) -> int:
    """How many lines end before byte ``position`` of the file (read in chunks: a long file is counted,
    not held)."""
    count = 0
    with open(path, "rb") as fh:
        while position > 0:
            chunk = fh.read(min(CHUNK, position))
            if not chunk:
                break
            count += chunk.count(b"\n")
            position -= len(chunk)
    return count


def file_id(path: str) -> str:
    """Identity of a file: device and inode."""
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}"


def parse_line(raw: bytes, make: Callable[..., Any] | None = None) -> ContactEvent:
    """Parse one JSON line into an event (built by ``make`` when given, see ContactEvent.from_dict).

    Raises:
        ValueError: not JSON, not an object, or not an event.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    for key in _NUMBERS:
        value = data.get(key)
        # JSON numbers cannot be infinite or NaN (orjson refuses them); strings like "inf" can.
        if value.__class__ is str and not _finite(value):
            raise ValueError(f"{key} is not a finite number: {value[:40]!r}")
    return ContactEvent.from_dict(data, make)


_NUMBERS = ("ts", "wait", "duration", "score")


def _finite(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return True  # not a number at all: the event's own check says so


class JsonlFileSource:
    """Reads a file of JSON events from where it last stopped; with ``follow``, keeps reading as it grows."""

    type = "jsonl"

    def __init__(self, name: str, path: str, *, follow: bool = False) -> None:
        """Create the source for ``path``."""
        self.name = name
        self.path = path
        self.follow = follow
        self._make: Callable[..., Any] | None = None

    def make_rows(self, make: Callable[..., Any]) -> None:
        """Build events with ``make`` instead of ContactEvent (collectors.base.RowSource)."""
        self._make = make

    @classmethod
    def validate(cls, options: dict[str, Any], path: str) -> list[str]:
        """Return every problem with a jsonl ``[[collectors]]`` table."""
        problems = Problems()
        sec = Section(options, path, problems)
        sec.get("path", string, "", "a file path", required=True)
        sec.get("follow", boolean, False, "true or false")
        sec.finish()
        return problems.items

    @classmethod
    def from_config(cls, collector: CollectorConfig, config: Config) -> JsonlFileSource:
        """Build the source; a relative path is taken from the config file's folder.

        Raises:
            ConfigError: the options are invalid.
        """
        problems = cls.validate(collector.options, collector.path)
        if problems:
            raise ConfigError(problems)
        raw = Path(collector.options["path"])
        if not raw.is_absolute() and config.source not in ("<memory>", ""):
            raw = Path(config.source).parent / raw
        return cls(collector.name, str(raw), follow=bool(collector.options.get("follow", False)))

    async def run(self, sink: Sink) -> None:
        """Emit the file's events in batches, each with the offset after its last complete line."""
        position = 0
        lineno = 0
        saved = await sink.load_offset()
        try:
            ident = await asyncio.to_thread(file_id, self.path)
        except OSError as exc:
            sink.error(self.path, f"cannot read: {exc.strerror}")
            return
        if saved is not None and saved.file_id == ident:
            position = saved.position
            # A bad line is reported by its line in the file, not in what this run read of it.
            lineno = await asyncio.to_thread(lines_before, self.path, position)
        sink.set_up(True)
        pending = b""
        batch: list[ContactEvent] = []
        make = self._make
        while True:
            chunk = await asyncio.to_thread(_read, self.path, position + len(pending), CHUNK)
            if not chunk:
                if batch:
                    await self._emit(sink, batch, ident, position)
                    batch = []
                if not self.follow:
                    if pending:
                        sink.error(f"{self.path}:{lineno + 1}", "last line has no newline (left for later)")
                    return
                await asyncio.sleep(POLL)
                continue
            data = pending + chunk
            lines = data.split(b"\n")
            pending = lines.pop()
            for raw in lines:
                lineno += 1
                position += len(raw) + 1
                if not raw.strip():
                    continue
                try:
                    batch.append(parse_line(raw, make))
                except ValueError as exc:
                    sink.error(f"{self.path}:{lineno}", str(exc))
                if len(batch) >= BATCH:
                    await self._emit(sink, batch, ident, position)
                    batch = []

    async def _emit(self, sink: Sink, batch: Sequence[ContactEvent], ident: str, position: int) -> None:
        await sink.emit(batch, Offset(ident, position))
