"""QueueLogSource: tails an Asterisk queue_log and emits events with the offset they end at."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from collectors.base import Offset, checked_options
from collectors.queue_log.options import QueueLogOptions, parse_options, resolve_path
from collectors.queue_log.parser import QueueLogParser
from collectors.queue_log.tailer import (
    IDLE,
    MISSING,
    PARTIAL,
    UNREADABLE,
    FileTailer,
    Lines,
    Skipped,
    Switched,
)
from cxmon.events import ContactEvent, EventKind

if TYPE_CHECKING:
    from collectors.base import Sink
    from cxmon.config import CollectorConfig, Config


class QueueLogSource:
    """Follows a queue_log file; every batch it emits carries the byte offset after its last line.

    The engine stores a batch's events and its offset in one transaction, so after a crash the
    source resumes exactly after the last stored line. The lines before that offset are parsed
    again without emitting, which rebuilds who is waiting, talking, logged in and paused.
    """

    type = "queue_log"

    def __init__(
        self, name: str, options: QueueLogOptions, forget_after: float = 86400.0, region: str | None = None
    ) -> None:
        """Create the source.

        Args:
            name: collector name, put into every event's ``source``.
            options: validated options.
            forget_after: seconds after which an unfinished call is dropped from the parser's memory.
            region: default region of caller ids without a country code (``[customers] region``).
        """
        self.name = name
        self.options = options
        self.path = options.path
        self.parser = QueueLogParser(
            name, options.channels, options.channel, forget_after, region, max_skew=options.max_skew
        )
        self.tailer = FileTailer(options.path, grace=options.rotate_grace)
        self.status: dict[str, Any] = {}
        """Small counters (lines, verbs, rotations…) a caller may publish in the engine's status;
        ``reread_lines`` counts the lines before the stored offset, read again to resume after them."""
        self.rotations = 0
        self.done = False
        self._missing_since: float | None = None
        """When the path was first seen without a file while the old one is still read (a rotation
        by rename leaves that moment between the rename and the new file's creation)."""

    @classmethod
    def validate(cls, options: dict[str, Any], path: str) -> list[str]:
        """Return every problem with a queue_log ``[[collectors]]`` table, each with its key path."""
        return parse_options(options, path)[1]

    @classmethod
    def from_config(cls, collector: CollectorConfig, config: Config) -> QueueLogSource:
        """Build the source a validated ``[[collectors]]`` table describes.

        Raises:
            ConfigError: the options are invalid.
        """
        options = checked_options(parse_options, collector, config)
        options = _with_path(options, resolve_path(options.path, config.source))
        return cls(
            collector.name,
            options,
            forget_after=max(config.monitor.lost_after * 2, 3600.0),
            region=config.customer_region,
        )

    # ------------------------------------------------------------------ progress

    @property
    def bytes_done(self) -> int:
        """Byte offset reached in the current file."""
        return self.tailer.pos

    @property
    def lines(self) -> int:
        """Lines parsed in the current file."""
        return self.parser.lines

    def make_rows(self, make: Callable[..., Any]) -> None:
        """Build events with ``make`` instead of ContactEvent (collectors.base.RowSource)."""
        self.parser.make_event = make

    def _publish_status(self) -> None:
        self.status.update(self.parser.status())
        self.status["rotations"] = self.rotations
        self.status["offset"] = self.tailer.pos

    # ------------------------------------------------------------------ running

    async def run(self, sink: Sink) -> None:
        """Follow the file until cancelled (or to its end when ``follow`` is off)."""
        opts = self.options
        parser = self.parser
        tailer = self.tailer
        parser.on_error = lambda lineno, why: sink.error(f"{tailer.name}:{lineno}", why)
        stored = await sink.load_offset()
        found, warm_until = await asyncio.to_thread(
            tailer.open, stored.file_id if stored else None, stored.position if stored else 0
        )
        if stored is not None and not found:
            sink.error(
                self.path,
                f"stored offset file {stored.file_id} is gone; reading {self.path} from the start",
            )
        elif stored is None and opts.start == "end":
            warm_until = await asyncio.to_thread(tailer.size)
        pending: list[ContactEvent] = []
        parser.out = pending
        offset: Offset | None = None
        emitted: Offset | None = stored
        dead_reported = ""
        # The first moment the file is caught up and alive says so at once: after a restart the
        # engine knows only the last stored line's time, and a heartbeat period of silence
        # could outlast stale_after and page STALE for a file that is fine.
        last_beat = time.monotonic() - opts.heartbeat
        try:
            while True:
                step = await asyncio.to_thread(tailer.step)
                if isinstance(step, Lines):
                    dead_reported = ""
                    sink.set_up(True)
                    data = step.data
                    if step.start < warm_until:
                        cut = data.rfind(b"\n", 0, warm_until - step.start) + 1
                        parser.quiet = True
                        parser.feed(data[:cut])
                        parser.quiet = False
                        data = data[cut:]
                        self.status["reread_lines"] = parser.lines
                    if data:
                        parser.feed(data)
                    offset = Offset(step.file_id, step.end)
                    if len(pending) >= opts.batch:
                        await sink.emit(pending, offset)
                        emitted = offset
                        pending = parser.out = []
                        self._publish_status()
                    continue
                if isinstance(step, Skipped):
                    parser.quiet = step.start < warm_until
                    parser.skip_line(
                        f"line of {step.size:,} bytes is longer than {tailer.max_line:,}: skipped"
                    )
                    if parser.quiet:
                        self.status["reread_lines"] = parser.lines
                    parser.quiet = False
                    offset = Offset(step.file_id, step.end)
                    continue
                if isinstance(step, Switched):
                    self.rotations += 1
                    if step.dropped:
                        sink.error(
                            f"{self.path}:{parser.lines + 1}",
                            f"unfinished last line ({step.dropped} bytes) dropped: the file was {step.why}",
                        )
                    if step.unread:
                        sink.error(
                            self.path,
                            f"the file was {step.why} and no rotated copy with its first line was found "
                            "beside it: lines written after the last read are lost",
                        )
                    if not step.same_lines:
                        parser.new_file()
                        warm_until = 0
                    continue
                if step == PARTIAL:
                    continue
                # At the end of the file (or no file): hand over what is pending, then wait.
                if pending or (offset is not None and offset != emitted):
                    await sink.emit(pending, offset)
                    emitted = offset
                    pending = parser.out = []
                self._publish_status()
                if not opts.follow:
                    if tailer.held:
                        sink.error(
                            f"{tailer.name}:{parser.lines + 1}",
                            f"unfinished last line ({tailer.held} bytes) not read: it has no newline",
                        )
                    break
                alive, why = self._alive(step)
                if why and why.split(":")[0] != dead_reported:
                    sink.error(self.path, why)
                dead_reported = why.split(":")[0]
                sink.set_up(step == IDLE and (tailer.path_state == IDLE or self._rotating()))
                now = time.monotonic()
                if alive and now - last_beat >= opts.heartbeat:
                    last_beat = now
                    await sink.emit(
                        [ContactEvent(time.time(), EventKind.HEARTBEAT, "", opts.channel, "", self.name)]
                    )
                await asyncio.sleep(opts.poll_interval)
        finally:
            self.done = True
            self._publish_status()
            tailer.close()
            if opts.follow:
                sink.set_up(False)

    def _rotating(self) -> bool:
        """Whether the path has had no file for less than ``rotate_grace``: a rotation by rename
        (logrotate ``create``) in progress, not a file that is gone."""
        if self.tailer.path_state != MISSING:
            self._missing_since = None
            return False
        now = time.monotonic()
        if self._missing_since is None:
            self._missing_since = now
        return now - self._missing_since < self.options.rotate_grace

    def _alive(self, step: str) -> tuple[bool, str]:
        """Whether the file is alive at the end of a read, and if not why (for a report).

        Alive: the path names a readable file and, while the centre is open, the file grew within
        ``max_silence`` (counted from the opening time when it opened since). Asterisk writes no
        heartbeat lines of its own, so growth (the file's modification time) is the sign of life;
        a QUEUESTART line is one like any other.
        """
        tailer = self.tailer
        if step in (MISSING, UNREADABLE):
            return False, f"{tailer.problem}: waiting for it"
        if tailer.path_state == MISSING and not self._rotating():
            return False, "the file is gone: renamed or deleted, and nothing has replaced it"
        if tailer.path_state == UNREADABLE:
            return False, tailer.problem
        now = time.time()
        opened = self.options.hours.opened_at(now)
        if opened is None:
            return True, ""  # closed: quiet is expected
        modified = tailer.modified()
        since = max(modified if modified is not None else opened, opened)
        silent = now - since
        if silent > self.options.max_silence:
            return False, (
                "silent while the centre is open: is the PBX still writing? "
                f"No new line for {silent:,.0f} s (max_silence {self.options.max_silence:,.0f} s)"
            )
        return True, ""


def _with_path(options: QueueLogOptions, path: str) -> QueueLogOptions:
    from dataclasses import replace

    return replace(options, path=path)
