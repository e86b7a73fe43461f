"""JsonlFileSource: ContactEvents as JSON lines (what ``cxmon simulate --out`` writes), read or followed."""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

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


def _read_at(fh: BinaryIO, position: int, size: int) -> bytes:
    fh.seek(position)
    return fh.read(size)


def _ident(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}"


def _changed(path: str, fh: BinaryIO, position: int) -> str | None:
    """What became of the followed file since ``position`` of ``fh`` was read: None (nothing), "gone"
    (no file at the path), "rotated" (another file there) or "truncated" (cut shorter)."""
    try:
        st = os.stat(path)
    except OSError:
        return "gone"
    if _ident(st) != _ident(os.fstat(fh.fileno())):
        return "rotated"
    if st.st_size < position:
        return "truncated"
    return None


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
    return _ident(os.stat(path))


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
    if not _KEYS.issuperset(data):
        key = min(k for k in data if k not in _KEYS)
        hint = " (a line names its customer with customer_id, a string)" if key == "customer" else ""
        raise ValueError(f"{key[:40]}: unknown key{hint}")
    for key in _NUMBERS:
        value = data.get(key)
        # JSON numbers cannot be infinite or NaN (orjson refuses them); strings like "inf" can.
        if value.__class__ is str and not _finite(value):
            raise ValueError(f"{key} is not a finite number: {value[:40]!r}")
    for key in _STRINGS:
        value = data.get(key)
        # ContactEvent.from_dict would make a string of anything: {"x": 1} is no customer key.
        if value is not None and value.__class__ is not str:
            raise ValueError(
                f"{key}: expected a string, got {orjson.dumps(value)[:40].decode(errors='replace')}"
            )
    return ContactEvent.from_dict(data, make)


_NUMBERS = ("ts", "wait", "duration", "score")
_STRINGS = ("contact_id", "channel", "queue", "source", "customer_id", "reason", "target")
_KEYS = frozenset(
    (
        "ts",
        "kind",
        *_STRINGS,
        "wait",
        "duration",
        "score",
        "agents_staffed",
        "agents_available",
        "contacts_waiting",
    )
)
"""The fields of a line: what ContactEvent.to_dict writes."""


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
        """Emit the file's events in batches, each with the offset after its last complete line.

        Followed, a file that is not there yet (or vanishes) is waited for, with the source down
        meanwhile; a file replaced at the path (rotated) or cut shorter than what was read
        (truncated) is read again from its start, and each is reported, so no line of the new
        content is passed over unseen.
        """
        saved = await sink.load_offset()
        fh = await self._open(sink)
        await self._follow(sink, fh, saved)

    async def _open(self, sink: Sink, said: str = "") -> BinaryIO:
        """Open the file; followed, wait (down) until it can be.

        Not followed, the file is work the run was given: one that cannot be read fails the source
        (reported, then raised, as a records file is), so the run cannot end as a success.
        ``said``: the reason already reported for not having it, not to be reported again.

        Raises:
            OSError: the file cannot be read and the source does not follow it.
        """
        while True:
            try:
                return await asyncio.to_thread(open, self.path, "rb")
            except OSError as exc:
                why = f"cannot read: {exc.strerror or exc}"
                if not self.follow:
                    sink.error(self.path, why)
                    raise
                if why != said:
                    sink.error(self.path, f"{why} (waiting for it)")
                    said = why
                sink.set_up(False)
            await asyncio.sleep(POLL)

    async def _follow(self, sink: Sink, fh: BinaryIO, saved: Offset | None) -> None:
        st = os.fstat(fh.fileno())
        ident = _ident(st)
        position = 0
        lineno = 0
        if saved is not None and saved.file_id == ident:
            if saved.position <= st.st_size:
                position = saved.position
                # A bad line is reported by its line in the file, not in what this run read of it.
                lineno = await asyncio.to_thread(lines_before, self.path, position)
            else:
                sink.error(
                    self.path,
                    f"truncated to {st.st_size} bytes since byte {saved.position} was read: "
                    "read from its start",
                )
        sink.set_up(True)
        pending = b""
        batch: list[ContactEvent] = []
        make = self._make
        # The file now at the path, once the one read was renamed away or vanished: taken up when
        # the old one has been read to its end.
        successor: BinaryIO | None = None
        try:
            while True:
                chunk = await asyncio.to_thread(_read_at, fh, position + len(pending), CHUNK)
                if chunk:
                    data = pending + chunk
                    lines = data.split(b"\n")
                    pending = lines.pop()
                    for raw in lines:
                        lineno += 1
                        position += len(raw) + 1
                        self._take(sink, raw, lineno, batch, make)
                        if len(batch) >= BATCH:
                            await self._emit(sink, batch, ident, position)
                            batch = []
                    continue
                if batch:
                    await self._emit(sink, batch, ident, position)
                    batch = []
                if successor is None and not self.follow:
                    if pending:
                        sink.error(f"{self.path}:{lineno + 1}", "last line has no newline (left for later)")
                    return
                if successor is None:
                    await asyncio.sleep(POLL)
                    change = await asyncio.to_thread(_changed, self.path, fh, position + len(pending))
                    if change is None:
                        continue
                    if change == "gone":
                        sink.error(self.path, "vanished (waiting for it)")
                        sink.set_up(False)
                        successor = await self._open(sink, "cannot read: No such file or directory")
                    else:
                        sink.error(self.path, f"{change}: the file at the path is read from its start")
                        successor = await asyncio.to_thread(open, self.path, "rb")
                    if change != "truncated":
                        continue  # what was written to the old file before the switch is read first
                    pending = b""  # cut off with the rest of the old content
                if pending:
                    sink.error(
                        f"{self.path}:{lineno + 1}", "last line has no newline (left behind by a rotation)"
                    )
                assert successor is not None
                fh.close()
                fh, successor = successor, None
                ident = _ident(os.fstat(fh.fileno()))
                position, lineno, pending = 0, 0, b""
                sink.set_up(True)
        finally:
            fh.close()
            if successor is not None:
                successor.close()

    def _take(
        self, sink: Sink, raw: bytes, lineno: int, batch: list[ContactEvent], make: Callable[..., Any] | None
    ) -> None:
        if not raw.strip():
            return
        try:
            batch.append(parse_line(raw, make))
        except ValueError as exc:
            sink.error(f"{self.path}:{lineno}", str(exc))

    async def _emit(self, sink: Sink, batch: Sequence[ContactEvent], ident: str, position: int) -> None:
        await sink.emit(batch, Offset(ident, position))
