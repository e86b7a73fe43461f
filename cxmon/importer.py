"""Backfill: run a file through the engine on the events' own clock, with a progress bar on stderr."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import io
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any, Protocol

from cxmon.config import OTHER, Config, default_config_path, load
from cxmon.errors import ConfigError, CxmonError
from cxmon.preflight import check_database
from cxmon.snapshot import ImportStatus, Snapshot

if TYPE_CHECKING:
    from collectors.records.mapping import RecordMapping

PROGRESS_EVERY = 0.2
"""Wall seconds between progress redraws on a terminal."""
NEVER_PURGE = 100 * 365 * 86400.0
"""An import keeps all of the history it writes, whatever the retention of the live monitor."""
IMPORT_BATCH = 20_000
"""Rows per store transaction during an import."""
IMPORT_PENDING = 200_000
"""Rows an import lets wait for a commit before the engine waits for the writer."""


class Progressing(Protocol):
    """What the importer needs from a source to draw its progress."""

    name: str
    type: str
    status: dict[str, Any]

    def progress(self) -> tuple[int, int, int]:
        """Return (bytes done, bytes total, lines or rows read)."""

    async def run(self, sink: Any) -> None:
        """Read the file into the sink."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did."""

    source: str
    lines: int
    events: int
    errors: int
    seconds: float
    db: str
    final: Snapshot
    """The engine's last snapshot: the figures of the imported history."""
    failed: str | None = None
    """Why the source stopped before the end of the file (None when it read it all)."""
    reread: int = 0
    """Of ``lines``, those before the stored offset: imported before, read again to resume after them."""
    skipped: int = 0
    """Events an earlier import stored, read again from their rows and skipped (records)."""
    left_out: tuple[str, ...] = ()
    """The rows read that are not contacts, each kind as "N why" (records)."""

    @property
    def lines_per_second(self) -> float:
        """Lines (or rows) read per wall second."""
        return self.lines / self.seconds if self.seconds > 0 else 0.0


class ProgressBar:
    """Bytes read of the total and lines per second, redrawn in place on a terminal.

    When the stream is not a terminal (a log, CI) it prints a plain line at every tenth of the file.
    """

    def __init__(
        self,
        stream: IO[str],
        label: str,
        tty: bool | None = None,
        width: int = 30,
        columns: Callable[[], int] | None = None,
    ) -> None:
        self.stream = stream
        self.label = label
        self.tty = stream.isatty() if tty is None else tty
        self.width = width
        self.columns = columns or self._terminal_columns
        """The terminal's width now (it can be resized while the import runs)."""
        self.started = time.monotonic()
        self._last_tenth = -1

    def _terminal_columns(self) -> int:
        try:
            return os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            return shutil.get_terminal_size().columns

    def update(self, done: int, total: int, lines: int, final: bool = False) -> None:
        """Draw the bar for ``done`` of ``total`` bytes and ``lines`` read so far."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        frac = min(done / total, 1.0) if total > 0 else (1.0 if final else 0.0)
        rate = lines / elapsed
        text = (
            f"{self.label}: {frac * 100:5.1f}% {_mb(done)}/{_mb(total)} MB, "
            f"{lines:,} lines, {rate:,.0f} lines/s"
        )
        if self.tty:
            # One line that fits the terminal: a line that wraps is not redrawn by "\r" (it returns to
            # the start of the wrapped part), and each redraw would leave a line behind. The bar
            # shrinks first, then goes; the text is cut last. The last column is left free, since
            # some terminals wrap on writing to it.
            room = max(self.columns() - 1, 1)
            width = min(self.width, room - len(text) - 3)
            if width >= 10:
                filled = int(frac * width)
                line = f"[{'#' * filled}{'-' * (width - filled)}] {text}"
            else:
                line = text[:room]
            # Erase what a longer line before it left (after a resize, or a shorter count).
            self.stream.write(f"\r{line}\x1b[K" + ("\n" if final else ""))
            self.stream.flush()
            return
        tenth = int(frac * 10)
        if tenth > self._last_tenth or final:
            self._last_tenth = tenth
            self.stream.write(text + "\n")
            self.stream.flush()


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f}"


async def run_import(
    config: Config,
    source: Progressing,
    db_path: str,
    *,
    progress: ProgressBar | None = None,
    paced: bool = False,
) -> ImportResult:
    """Run ``source`` to its end through an :class:`~cxmon.engine.Engine` that stores everything.

    Args:
        config: steps and thresholds the history is judged by (its collectors are not started).
        source: a finite source (queue_log with ``follow`` off, records).
        db_path: the history database; offsets are kept there, so importing a file again only
            adds what was appended since.
        progress: where to draw progress, if anywhere.
        paced: follow the source's own (accelerated) clock instead of the events' timestamps.

    Returns:
        Counts and timing of the run.
    """
    from cxmon.engine import Engine
    from cxmon.ingest import ProcessSource

    config = dataclasses.replace(
        config,
        store=dataclasses.replace(
            config.store,
            retention=NEVER_PURGE,
            # Big transactions: each commit rewrites every index page it touched, and the customer
            # index is touched all over; nobody waits on a backfill's commits.
            batch_size=max(config.store.batch_size, IMPORT_BATCH),
            # Commits run beside the engine: let it work on while one is in progress.
            max_pending=max(config.store.max_pending, IMPORT_PENDING),
            flush_interval=max(config.store.flush_interval, 1.0),
        ),
    )
    # Unpaced, the file is read and parsed in a child process and commits run in a writer process,
    # so reading, aggregating and committing each have a core rather than taking turns.
    if not paced:
        source = ProcessSource.wrap(source)
    engine = Engine(
        config,
        db_path=db_path,
        sources=[source],
        clock=None if paced else "events",
        store_writer="thread" if paced else "process",
        restart_sources=False,
    )
    engine.import_status = lambda: import_status(source)
    started = time.monotonic()

    async def draw() -> None:
        assert progress is not None
        while True:
            progress.update(*source.progress())
            await asyncio.sleep(PROGRESS_EVERY)

    async with engine:
        drawer = asyncio.create_task(draw()) if progress is not None else None
        try:
            await engine.run()
        finally:
            if drawer is not None:
                drawer.cancel()
                await asyncio.gather(drawer, return_exceptions=True)
    seconds = time.monotonic() - started
    done, total, lines = source.progress()
    if progress is not None:
        progress.update(done, total, lines, final=True)
    health = engine.health[source.name]
    return ImportResult(
        source=source.name,
        lines=lines,
        events=health.events_total,
        errors=health.errors_total,
        seconds=seconds,
        db=db_path,
        final=engine.latest,
        failed=health.last_error if health.failed else None,
        reread=int(source.status.get("reread_lines", 0)),
        skipped=int(source.status.get("skipped_events", 0)),
        left_out=left_out(source.status),
    )


def left_out(status: Mapping[str, Any]) -> tuple[str, ...]:
    """The rows of a records import that are not contacts, from its source's counts: each kind as
    "N why", so a count of the file's rows can be matched to the import's."""
    out = []
    not_queued = int(status.get("not_queued", 0))
    if not_queued:
        out.append(f"{not_queued:,} never reached a queue (not offered)")
    for key, count in sorted(status.items()):
        if key.startswith("skipped:") and count:
            out.append(f"{int(count):,} with outcome {key.removeprefix('skipped:')} (skipped)")
    untimed = int(status.get("answered_untimed", 0))
    if untimed:
        out.append(f"{untimed:,} answered with no queue or service times (not counted)")
    return tuple(out)


def import_status(source: Progressing) -> ImportStatus:
    """``source``'s progress and counters as they are now, frozen (what a snapshot carries)."""
    done, total, lines = source.progress()
    counts: dict[str, float] = {}
    _numbers(source.status, "", counts)
    return ImportStatus(source.name, done, total, lines, MappingProxyType(counts))


def _numbers(value: Any, name: str, into: dict[str, float]) -> None:
    """The numbers in ``value`` (a source's status: nested mappings), by their dotted names."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _numbers(inner, f"{name}.{key}" if name else str(key), into)
    elif isinstance(value, int | float) and not isinstance(value, bool) and name:
        into[name] = float(value)


# ---------------------------------------------------------------------- sources for the two formats


def queue_log_source(config: Config, file: str, name: str | None = None) -> Progressing:
    """A queue_log source reading ``file`` from its start to its end (channels from config)."""
    from collectors.queue_log import QueueLogSource
    from collectors.queue_log.options import QueueLogOptions

    channels: dict[str, str] = {}
    channel = "voice"
    for cc in config.collectors:
        if cc.type == "queue_log":
            src = QueueLogSource.from_config(cc, config)
            channels, channel = src.options.channels, src.options.channel
            break
    opts = QueueLogOptions(path=file, channels=channels, channel=channel, start="beginning", follow=False)
    name = name or f"queue_log:{Path(file).name}"
    source = QueueLogSource(name, opts, forget_after=config.monitor.lost_after * 2)
    return _QueueLogProgress(source)


class _QueueLogProgress:
    """Adds ``progress()`` to a QueueLogSource (bytes of the file, lines parsed)."""

    type = "queue_log"

    def __init__(self, source: Any) -> None:
        self.source = source
        self.name: str = source.name
        self.status: dict[str, Any] = source.status
        self._total = 0

    def progress(self) -> tuple[int, int, int]:
        path = Path(self.source.path)
        if not self._total:
            try:
                self._total = path.stat().st_size
            except OSError:
                self._total = 0
        return self.source.bytes_done, self._total, self.source.lines

    def make_rows(self, make: Any) -> None:
        self.source.make_rows(make)

    async def run(self, sink: Any) -> None:
        await self.source.run(sink)


def records_source(
    file: str,
    preset: str | None,
    mapping_file: str | None,
    speed: float | None,
    name: str | None = None,
    stale_after: float | None = None,
) -> Progressing:
    """A records source for ``file`` with a preset or a mapping file (paced, its quiet stretches
    have a heartbeat often enough in replayed time not to look STALE by ``stale_after``).

    Raises:
        ConfigError: unknown preset or a bad mapping.
    """
    from collectors.records import RecordsSource, load_mapping_file
    from collectors.records.source import parse_options

    options: dict[str, Any] = {"path": file}
    if preset:
        options["preset"] = preset
    if mapping_file:
        options["mapping"] = load_mapping_file(mapping_file)
    if speed is not None:
        options["speed"] = speed
    opts, problems = parse_options(options, mapping_file or "records")
    if opts is None:
        raise ConfigError(problems, mapping_file)
    _check_header(file, opts.mapping, mapping_file or f"--preset {preset}")
    return RecordsSource(name or f"records:{Path(file).name}", opts, stale_after)


def _check_header(file: str, mapping: RecordMapping, named_by: str) -> None:
    """Refuse a file whose header lacks columns the mapping reads: no row of it can be read, and
    imported, it was one line rejected (exit 3, as if the rest had been stored).

    Raises:
        ConfigError: columns are missing (nothing is read).
    """
    from collectors.records.reader import missing_columns

    try:
        with open(file, "rb") as fh:
            head = fh.readline(1 << 20)
    except OSError:
        return  # the import says that it cannot read the file
    missing = missing_columns(head, mapping) if head else []
    if missing:
        raise ConfigError(
            [
                f"{file}:1: columns not in the header: {', '.join(missing)} ({named_by} reads them); "
                "nothing was imported"
            ]
        )


# ---------------------------------------------------------------------- the command


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""What stops an import (once: committing what was read; twice: at once)."""

REJECTED_LINES = 3
"""The exit code of an import that read the whole file but rejected some of its lines."""


def import_command(args: argparse.Namespace, stderr: IO[str] | None = None) -> int:
    """``cxmon import queue_log|records FILE``: backfill, then point at ``cxmon stats``.

    Returns:
        0 when every line was imported, 1 when the file cannot be read or the import stopped on an
        error, 2 for a configuration problem, a history database that cannot be used, or another
        process feeding the same source into the database (nothing is read), 3 when it read the
        whole file but rejected lines (each reported with its file:line; the events around them
        are stored), 130 or 143 when stopped by SIGINT or SIGTERM (after committing what was read).
    """
    err = stderr or sys.stderr
    try:
        config = load(args.config or default_config_path())
        path = Path(args.file)
        if not path.is_file():
            if not path.exists():
                why = "no such file"
            elif path.is_dir():
                why = "is a directory, not a file"
            else:
                why = "not a regular file"
            print(f"{args.file}: {why}", file=err)
            return 1
        make: Callable[[], Progressing]
        if args.import_kind == "queue_log":
            make = lambda: queue_log_source(config, args.file, args.name)  # noqa: E731
        else:
            speed = _speed(args.speed)
            stale_after = config.monitor.stale_after
            make = lambda: records_source(  # noqa: E731
                args.file, args.preset, args.mapping, speed, args.name, stale_after
            )
        source = make()
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=err)
        return 2
    db = args.db or config.store.path
    try:
        check_database(db, "--db FILE" if args.db else "[store] path")
    except CxmonError as exc:
        print(f"cxmon: {exc}", file=err)
        return 2
    bar = None if args.quiet else ProgressBar(err, Path(args.file).name)
    paced = getattr(args, "speed", None) not in (None, "max")

    stopped_by: list[int] = []

    async def stoppable() -> ImportResult:
        # Ctrl-C and SIGTERM stop an import the same way: what was read is committed, then it exits.
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def stop(signum: int) -> None:
            if stopped_by:
                # Asked again while it stops: leave now. A batch is committed with its offset in one
                # transaction, so the history stays whole; the next import reads the rest again.
                print(
                    f"\nimport of {args.file} stopped at once: what was committed is in {db}; "
                    "import the file again to go on from there",
                    file=err,
                    flush=True,
                )
                os._exit(128 + signum)
            stopped_by.append(signum)
            task.cancel()

        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, stop, signum)
        try:
            return await run_import(config, source, db, progress=bar, paced=paced)
        finally:
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)

    try:
        result = asyncio.run(stoppable())
    except CxmonError as exc:
        # The history cannot be used (not a database, a damaged one, rows it could not take at the
        # end; the store's message says which, and what the next import will read again), or
        # another process feeds this source into it (nothing read).
        print(f"cxmon: {exc}", file=err)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(
            f"\nimport of {args.file} stopped: everything read so far is stored in {db}; "
            "import the file again to go on from there",
            file=err,
        )
        return 128 + (stopped_by[0] if stopped_by else signal.SIGINT)
    if result.failed is not None:
        print(
            f"import of {args.file} stopped on an error after {_n(result.lines, 'line')} "
            f"({_n(result.events, 'event')} stored in {db}): {result.failed}",
            file=err,
        )
        return 1
    print(
        f"{_what_was_imported(result, args.file)} {_n(result.errors, 'error')}, {result.seconds:.1f} s "
        f"({result.lines_per_second:,.0f} lines/s) into {db}; see `cxmon stats --db {db}`",
        file=err,
    )
    if result.left_out:
        print(f"rows that are not contacts: {', '.join(result.left_out)}", file=err)
    hint = unmatched_hint(result.final, str(args.config or default_config_path()), db)
    if hint is not None:
        print(hint, file=err)
    if result.errors:
        # The rejected lines are not in the history, and importing again will not bring them back
        # (the offsets are past them): a script must be able to tell this from a whole import.
        print(
            f"{result.errors:,} {'line was' if result.errors == 1 else 'lines were'} rejected "
            f"(each reported above with its line): they are not in {db}",
            file=err,
        )
        return REJECTED_LINES
    return 0


def _what_was_imported(result: ImportResult, file: str) -> str:
    """The summary's first words: what is new in the history, and what was read again to resume."""
    if result.reread:
        return (
            f"imported {_n(result.lines - result.reread, 'new line')} from {file} (after the "
            f"{result.reread:,} imported before, read again to resume): {_n(result.events, 'event')},"
        )
    if result.skipped:
        return (
            f"imported {_n(result.events, 'new event')} from {file} ({_n(result.lines, 'line')} read; "
            f"the {_n(result.skipped, 'event')} of them imported before "
            f"{'was' if result.skipped == 1 else 'were'} skipped):"
        )
    return f"imported {_n(result.lines, 'line')} from {file}: {_n(result.events, 'event')},"


def _n(count: int, noun: str) -> str:
    """``count`` and ``noun``, in the singular for one: "1 line", "1,204 lines"."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def unmatched_hint(final: Snapshot, config_name: str, db: str) -> str | None:
    """A line for an import most of whose contacts matched no step of the journey (the config was
    probably not the one written for this data), else None."""
    offered = sum(s.totals.get("offered", 0) for s in final.series)
    unmatched = sum(s.totals.get("offered", 0) for s in final.series if s.step == OTHER)
    if not offered or unmatched * 2 < offered:
        return None
    return (
        f"note: {unmatched:,} of {offered:,} contacts ({unmatched / offered:.0%}) matched no step of "
        f"the journey in {config_name}, so they are judged as step '{OTHER}'. Every event is stored "
        f"with its own channel and queue: `cxmon stats --db {db} --config FILE` judges them by a "
        "journey whose match rules fit them (and `--config FILE` on the next import records it)"
    )


def _speed(text: str | None) -> float | None:
    if text in (None, "max"):
        return None
    try:
        value = float(text or "")
    except ValueError:
        raise ConfigError([f'--speed: expected a number or "max", got {text!r}']) from None
    if value <= 0:
        raise ConfigError([f"--speed: must be positive, got {text!r}"])
    return value
