"""History in SQLite (aiosqlite): one connection, WAL, batched writes, migrations, retention."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import marshal
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import aiosqlite
import orjson

from collectors.base import Offset
from cxmon.errors import StoreError
from cxmon.events import ContactEvent
from cxmon.recorded_config import digest, journey_text
from cxmon.rows import encode_rows
from cxmon.shielded import finish, outlast
from cxmon.snapshot import Ack, State, StoreStatus, Transition
from cxmon.store_reads import StoreReads
from cxmon.store_schema import (
    CUSTOMER_INDEX,
    INDEX_BUILD,
    INSERT_EVENT,
    INSERT_JOURNEY,
    INSERT_TRANSITION,
    MIGRATIONS,
    SELECT_JOURNEY,
    UPSERT_OFFSET,
    UPSERT_SNAPSHOT,
)
from cxmon.store_writer import WriterProcess

if TYPE_CHECKING:
    from cxmon.config import Config

log = logging.getLogger(__name__)

RETRY_MAX = 5.0
"""Longest wait, in seconds, between two attempts to commit while commits fail (a full disk)."""


def encode_figures(figures: dict[str, Any]) -> str:
    """A minute's figures as the store keeps them (JSON)."""
    return orjson.dumps(figures).decode()


class Store(StoreReads):
    """The history database. Writes are batched: one transaction per batch, flushed at least every
    ``flush_interval`` seconds, and a source's offset is committed in the same transaction as the
    events that came before it."""

    def __init__(
        self,
        path: str | Path,
        *,
        flush_interval: float = 0.25,
        batch_size: int = 1000,
        max_pending: int = 50_000,
        writer: Literal["thread", "process"] = "thread",
        config: Config | None = None,
    ) -> None:
        """Describe a store; nothing is opened until :meth:`open`.

        Args:
            path: the SQLite file.
            flush_interval: most seconds a written event waits before its commit.
            batch_size: pending rows that trigger a flush straight away.
            max_pending: pending rows past which :meth:`add` waits for a flush, and while commits
                fail, for one to succeed (back-pressure).
            writer: where commits run. "thread" (aiosqlite's thread) suits a live monitor. "process"
                commits in a child process, for backfills: sqlite3 takes the GIL back after every
                row, so a writer thread runs in turn with the parser instead of beside it.
            config: the journey the history is written with; recorded on open (when it differs
                from the one recorded last), for :meth:`load_config`.
        """
        self.path = str(path)
        self.config = config
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.writer = writer
        self.max_pending = max_pending
        self._index_soon = False
        """Ask the writer process to build the customer index after its next commit."""
        self.keep_fds: tuple[int, ...] = ()
        """Descriptors the writer process keeps open while it lives: the sources' locks
        (:mod:`cxmon.source_lock`), which must outlast its last commit even if this process is killed."""
        self._proc: WriterProcess | None = None
        self._db: aiosqlite.Connection | None = None
        self._events: list[tuple[Any, ...]] = []
        self._blobs: list[tuple[bytes, int]] = []
        """Batches already encoded (marshal of :func:`encode_rows`) and their row counts."""
        self._offsets: dict[str, Offset] = {}
        self._transitions: list[tuple[Any, ...]] = []
        self._snapshots: list[tuple[Any, ...]] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        """Set after each commit attempt: a waiting :meth:`add` looks again at what is pending."""
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._holding = True
        """Whether :meth:`add` waits for room while commits fail (off once shutdown begins)."""
        self.rows_written = 0
        self.flushes = 0
        self.commit_failures = 0
        """Commits that failed since the last one that succeeded."""
        self.last_error: str | None = None
        self.backpressure = False
        """An :meth:`add` is waiting for room: commits fail and the pending rows are at their bound."""

    # ------------------------------------------------------------------ life cycle

    async def open(self) -> Store:
        """Open (creating or migrating) the database and start the flusher task."""
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA synchronous=NORMAL")
            await self._db.execute("PRAGMA busy_timeout=5000")
            await self._migrate()
            if self.config is not None and "journey" in self.config.raw:
                await self._record_journey(self.config)
            # An import that died left the customer index out (see below): put it back first.
            await self._db.execute(CUSTOMER_INDEX)
            if self.writer == "process":
                # A backfill writes the customer index all over the file, row by row; building it
                # once at the end is several times cheaper. It is rebuilt on close (or next open).
                await self._db.execute("DROP INDEX IF EXISTS events_customer")
                self._proc = WriterProcess(self.path, keep_fds=self.keep_fds)
        except Exception as exc:  # sqlite3.Error, OSError
            if self._db is not None:
                await self._db.close()
                self._db = None
            raise StoreError(f"cannot open the history database: {exc}", self.path) from exc
        self._task = asyncio.create_task(self._flusher(), name="store-flusher")
        return self

    async def __aenter__(self) -> Store:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Flush everything pending, stop the flusher and close the connection.

        It runs to its end even when the task awaiting it is cancelled meanwhile (Ctrl-C while an
        import's last rows are committed and its customer index is built), and then passes the
        cancellation on: a store left half-closed would drop its last commit, and its connection's
        thread would keep the process from exiting.
        """
        await finish(self._close())

    async def _close(self) -> None:
        self.stop_holding()
        if self._task is not None:
            # Never cancel the flusher mid-transaction: ask it to finish and wait for it.
            self._closing = True
            self._stop.set()
            self._wake.set()
            await self._task
            self._task = None
        if self._db is not None:
            try:
                await self.flush()
            except Exception as exc:  # a full disk at shutdown: say what was not stored, no traceback
                raise StoreError(
                    f"{self.pending:,} rows could not be stored ({exc}); their offsets were not "
                    "committed either, so a file source reads them again when it restarts",
                    self.path,
                ) from exc
            finally:
                db = self._db
                try:
                    if self._proc is not None:
                        proc, self._proc = self._proc, None
                        await asyncio.to_thread(proc.close)
                        try:
                            for pragma in INDEX_BUILD:
                                await db.execute(pragma)
                            await db.execute(CUSTOMER_INDEX)
                        except Exception:  # rebuilt on the next open
                            log.exception("the customer index could not be built")
                    self._db = None
                    await db.close()
                except BaseException:
                    # Cancelled all the same (the loop shutting down after a second Ctrl-C): end the
                    # connection's thread without the loop, or the process could not exit.
                    self._db = None
                    db.stop()
                    raise

    @property
    def db(self) -> aiosqlite.Connection:
        """The open connection."""
        if self._db is None:
            raise StoreError("the store is not open", self.path)
        return self._db

    async def _migrate(self) -> None:
        db = self.db
        await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        async with db.execute("SELECT version FROM schema_version") as cur:
            row = await cur.fetchone()
        version = row[0] if row else 0
        if version > len(MIGRATIONS):
            raise StoreError(
                f"database schema {version} is newer than this cxmon ({len(MIGRATIONS)})", self.path
            )
        for i in range(version, len(MIGRATIONS)):
            await db.executescript(
                "BEGIN;"
                + MIGRATIONS[i]
                + f"DELETE FROM schema_version; INSERT INTO schema_version VALUES ({i + 1});"
                "COMMIT;"
            )

    async def _record_journey(self, config: Config) -> None:
        text = journey_text(config)
        key = digest(text)
        async with self.db.execute(SELECT_JOURNEY) as cur:
            row = await cur.fetchone()
        if row is None or row[0] != key:
            await self.db.execute(INSERT_JOURNEY, (time.time(), key, text))

    # ------------------------------------------------------------------ writes

    @property
    def pending(self) -> int:
        """Rows waiting for the next commit."""
        blob_rows = sum(n for _, n in self._blobs) if self._blobs else 0
        return len(self._events) + blob_rows + len(self._transitions) + len(self._snapshots)

    async def add(
        self, events: Iterable[ContactEvent], source: str = "", offset: Offset | None = None
    ) -> None:
        """Queue events (and the source's new offset) for the next batch; waits when too much is pending."""
        self.add_nowait(events, source)
        if offset is not None:
            self._offsets[source] = offset
        if self.pending >= self.max_pending:
            await self._make_room()

    def add_nowait(self, events: Iterable[ContactEvent], source: str = "") -> None:
        """Queue events for the next batch without waiting (for what the engine makes in a tick)."""
        self._events.extend(encode_rows(events, source))
        if len(self._events) >= self.batch_size:
            self._wake.set()

    async def add_encoded(self, blob: bytes, count: int, source: str, offset: Offset | None = None) -> None:
        """Queue a batch already encoded by :func:`encode_rows` (and marshalled), like :meth:`add`.

        A writer process gets the bytes as they are, so the rows are not built a second time here.

        Args:
            blob: ``marshal.dumps(encode_rows(events, source))``.
            count: the number of rows in it.
            source: the source the batch (and ``offset``) belongs to.
            offset: where the source resumes once this batch is stored.
        """
        if self._proc is not None:
            self._blobs.append((blob, count))
        else:
            self._events.extend(marshal.loads(blob))
        if offset is not None:
            self._offsets[source] = offset
        if self.pending >= self.batch_size:
            self._wake.set()
        if self.pending >= self.max_pending:
            await self._make_room()

    async def _make_room(self) -> None:
        """Commit what is pending; while commits fail, wait until one succeeds (back-pressure).

        The caller is the engine's only consumer: while it waits, the engine's bounded queue fills
        and the sources wait in ``emit``, so a tailer stops reading with its offset where the
        last stored batch left it. The pending rows stay bounded by ``max_pending`` (plus one
        batch and what ticks add), however long the disk stays full.
        """
        if self.last_error is None:
            try:
                await self.flush()
            except Exception as exc:  # sqlite3.Error, StoreError: the flusher retries
                self._commit_failed(exc)
        while self.pending >= self.max_pending and self._holding:
            self.backpressure = True
            self._room.clear()
            await self._room.wait()
        self.backpressure = False

    def stop_holding(self) -> None:
        """Let :meth:`add` return at once from now on, even while commits fail (shutdown: the
        sources are stopped and what they sent must reach a last commit attempt)."""
        self._holding = False
        self._room.set()

    def status(self) -> StoreStatus:
        """Return the health of writes, for the snapshot."""
        return StoreStatus(
            pending_rows=self.pending,
            backpressure=self.backpressure,
            commit_failures=self.commit_failures,
            last_error=self.last_error,
        )

    def _commit_failed(self, exc: BaseException) -> None:
        self.commit_failures += 1
        why = str(exc) or type(exc).__name__
        if self.last_error is None:
            log.error("history commit failed (%s): rows are kept and retried", why)
        self.last_error = why

    def _committed(self) -> None:
        if self.last_error is not None:
            log.warning("history commits resumed after %d failed attempts", self.commit_failures)
        self.last_error = None
        self.commit_failures = 0

    def sources_finished(self) -> None:
        """Say that no more source events will come (a backfill's file is read to its end).

        A writer process then builds the customer index right after its next commit, beside the
        engine's last minutes of work, instead of after everything on close.
        """
        if self._proc is not None:
            self._index_soon = True
            self._wake.set()

    def add_transitions(self, transitions: Iterable[Transition]) -> None:
        """Queue state transitions for the next batch."""
        for t in transitions:
            self._transitions.append(
                (t.ts, t.step, t.channel, t.queue, t.from_state.value, t.to_state.value, t.reason, t.measure)
            )

    def add_minute(self, minute: float, rows: Iterable[tuple[str, str, str, State, dict[str, Any]]]) -> None:
        """Queue the per-minute figures of every series."""
        for step, channel, queue, state, figures in rows:
            self._snapshots.append((minute, step, channel, queue, state.value, encode_figures(figures)))

    def add_minute_encoded(self, minute: float, rows: Iterable[tuple[str, str, str, State, str]]) -> None:
        """:meth:`add_minute` with each row's figures encoded already (:func:`encode_figures`): a
        series' figures stay the same minute after minute while its windows do not change."""
        self._snapshots.extend(
            (minute, step, channel, queue, state.value, text) for step, channel, queue, state, text in rows
        )

    async def add_ack(self, ack: Ack) -> None:
        """Store an acknowledgement and commit it now."""
        await self.flush()
        async with self._lock:
            await self.db.execute(
                "INSERT INTO acks (ts, step, who, note, until) VALUES (?,?,?,?,?)",
                (ack.ts, ack.step, ack.who, ack.note, ack.until),
            )

    async def flush(self) -> None:
        """Commit everything pending in one transaction."""
        async with self._lock:
            if not (
                self._events
                or self._blobs
                or self._offsets
                or self._transitions
                or self._snapshots
                or self._index_soon
            ):
                return
            events, self._events = self._events, []
            blobs, self._blobs = self._blobs, []
            offsets, self._offsets = self._offsets, {}
            transitions, self._transitions = self._transitions, []
            snapshots, self._snapshots = self._snapshots, []
            if self._proc is not None:
                await self._flush_to_writer(blobs, events, offsets, transitions, snapshots)
                return
            if blobs:  # only a writer process takes them encoded
                events = [row for blob, _ in blobs for row in marshal.loads(blob)] + events
            db = self.db
            try:
                await db.execute("BEGIN")
                if events:
                    await db.executemany(INSERT_EVENT, events)
                if offsets:
                    now = time.time()
                    await db.executemany(
                        UPSERT_OFFSET, [(s, o.file_id, o.position, now) for s, o in offsets.items()]
                    )
                if transitions:
                    await db.executemany(INSERT_TRANSITION, transitions)
                if snapshots:
                    await db.executemany(UPSERT_SNAPSHOT, snapshots)
                await db.execute("COMMIT")
            except BaseException:
                # Keep the rows (and offsets) for the next attempt: nothing may be lost.
                self._events[:0] = events
                self._transitions[:0] = transitions
                self._snapshots[:0] = snapshots
                self._offsets = {**offsets, **self._offsets}
                with contextlib.suppress(Exception):
                    await db.execute("ROLLBACK")
                raise
            self.rows_written += len(events)
            self.flushes += 1
            self._committed()

    async def _flush_to_writer(
        self,
        blobs: list[tuple[bytes, int]],
        events: list[tuple[Any, ...]],
        offsets: dict[str, Offset],
        transitions: list[tuple[Any, ...]],
        snapshots: list[tuple[Any, ...]],
    ) -> None:
        """Commit one batch in the writer process (the caller holds the lock)."""
        proc = self._proc
        assert proc is not None
        now = time.time()
        index, self._index_soon = self._index_soon, False
        frame = (
            [blob for blob, _ in blobs],
            events,
            [(s, o.file_id, o.position, now) for s, o in offsets.items()],
            transitions,
            snapshots,
            index,
        )
        # Once sent, the batch commits or not whatever happens here: wait for the answer even when
        # cancelled, so the rows are kept for a retry only when they were not committed.
        task, cancelled = await outlast(asyncio.to_thread(proc.exchange, frame))
        try:
            reply = b"" if task.cancelled() else task.result()
        except (OSError, ValueError):  # the writer is gone
            reply = b""
        if reply != b"ok\n":
            self._blobs[:0] = blobs
            self._events[:0] = events
            self._transitions[:0] = transitions
            self._snapshots[:0] = snapshots
            self._offsets = {**offsets, **self._offsets}
            if not cancelled:
                why = reply.decode(errors="replace").strip() or "the writer process exited"
                raise StoreError(f"history commit failed: {why}", self.path)
        else:
            self.rows_written += len(events) + sum(n for _, n in blobs)
            self.flushes += 1
            self._committed()
        if cancelled:
            raise asyncio.CancelledError

    async def _flusher(self) -> None:
        while not self._closing:
            if self.last_error is None:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
                # lands as the wait ends, and the flusher would outlive its owner's cancel.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.flush_interval):
                        await self._wake.wait()
            else:
                # Commits fail: retry after a growing pause, whatever arrives meanwhile.
                delay = min(self.flush_interval * 2 ** min(self.commit_failures, 16), RETRY_MAX)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stop.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # keep running: the rows are kept and the next flush retries
                self._commit_failed(exc)
            self._room.set()

    async def purge(self, before: float) -> int:
        """Delete events, transitions and minute figures older than ``before``; return events deleted."""
        async with self._lock:
            db = self.db
            try:
                # BEGIN inside the try: cancelled while BEGIN is queued, the ROLLBACK still follows it.
                await db.execute("BEGIN")
                cur = await db.execute("DELETE FROM events WHERE ts < ?", (before,))
                deleted = cur.rowcount
                await db.execute("DELETE FROM transitions WHERE ts < ?", (before,))
                await db.execute("DELETE FROM snapshots WHERE minute < ?", (before,))
                await db.execute("DELETE FROM acks WHERE until < ?", (before,))
                await db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    await db.execute("ROLLBACK")
                raise
        return deleted
