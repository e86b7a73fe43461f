"""ProcessSource: a finite source run in a child process, so parsing runs beside the engine.

A backfill is CPU-bound in one interpreter: reading and parsing a file, aggregating, and preparing
rows for the store all take turns with the GIL. ``ProcessSource`` moves the first and the last of
those to a child process. The child runs the wrapped source with a sink that encodes each batch as
store rows (marshal) and writes them to its stdout; the parent rebuilds the events for the
aggregator and hands the same encoded rows to the store, which passes them to its writer process
untouched. The engine still stores every batch, with the source's offset, in one transaction, so a
crash or restart behaves exactly as with the source in-process.

Frames on the child's stdout (8-byte big-endian lengths):

* ``B`` meta rows: a batch. ``meta`` is marshal of (offset or None, progress, status); ``rows`` is
  marshal of the batch's rows in the store's column order (:mod:`cxmon.rows`).
* ``S`` body: marshal of (progress, status), sent once the source has finished.
* ``E`` body: marshal of (where, message), a bad-input report.
* ``U`` body: marshal of a bool, the source going up or down.
"""

from __future__ import annotations

import asyncio
import contextlib
import marshal
import os
import pickle
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from collectors.base import Offset, RowSource, Sink
from cxmon.events import ContactEvent
from cxmon.rows import encode_rows, row_maker

_LEN = 8
_READ_LIMIT = 2**20
_PIPE_SIZE = 2**20
"""Bytes the pipe from the reader may hold (see _widen_pipe)."""


class ProcessSource:
    """Runs ``inner`` (a picklable finite source) in a child process and relays its batches.

    ``name``, ``type``, ``status`` and ``progress()`` mirror the wrapped source; ``status`` is the
    same dict object for the whole run, updated from the child after each batch.
    """

    def __init__(self, inner: Any) -> None:
        """Wrap ``inner``; nothing starts until :meth:`run`.

        Raises:
            TypeError: ``inner`` cannot be pickled (it cannot cross to a child process).
        """
        self._payload = pickle.dumps(inner)
        self.name: str = inner.name
        self.type: str = inner.type
        self.status: dict[str, Any] = getattr(inner, "status", None) or {}
        self._progress: tuple[int, int, int] = (0, 0, 0)
        self.pid: int | None = None
        """The child's process id while it runs (and after, for the record)."""

    @classmethod
    def wrap(cls, inner: Any) -> Any:
        """Return ``ProcessSource(inner)``, or ``inner`` itself when it cannot be pickled."""
        try:
            return cls(inner)
        except (TypeError, AttributeError, pickle.PicklingError):
            return inner

    def progress(self) -> tuple[int, int, int]:
        """(bytes done, bytes in all, lines) as the child last reported."""
        return self._progress

    async def run(self, sink: Sink) -> None:
        """Start the child, relay its frames to ``sink`` until it ends; kill it when cancelled.

        Raises:
            RuntimeError: the child failed (its traceback went to stderr).
        """
        saved = await sink.load_offset()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cxmon.ingest",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=_READ_LIMIT,
        )
        assert proc.stdin is not None and proc.stdout is not None
        self.pid = proc.pid
        try:
            start = pickle.dumps((self._payload, None if saved is None else (saved.file_id, saved.position)))
            proc.stdin.write(len(start).to_bytes(_LEN, "big") + start)
            await proc.stdin.drain()
            proc.stdin.close()
            await self._relay(proc.stdout, sink)
            returncode = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
            # wait() returns only once the child's output has reached its end. A relay stopped (an
            # import's Ctrl-C) while the pipe was full has left reading paused at the stream's
            # limit, so the end would never be read: read what the dead child left, and drop it
            # (it was never handed over, so the stored offset is before it).
            with contextlib.suppress(OSError):
                while await proc.stdout.read(_READ_LIMIT):
                    pass
            await proc.wait()
        if returncode != 0:
            raise RuntimeError(f"the {self.type} reader process exited with status {returncode}")

    async def _relay(self, out: asyncio.StreamReader, sink: Sink) -> None:
        read = out.readexactly
        while True:
            try:
                tag = await read(1)
            except asyncio.IncompleteReadError:
                return
            body = await read(int.from_bytes(await read(_LEN), "big"))
            if tag == b"B":
                meta, progress, status = marshal.loads(body)
                blob = await read(int.from_bytes(await read(_LEN), "big"))
                self._progress = progress
                self.status.update(status)
                rows = marshal.loads(blob)
                offset = None if meta is None else Offset(*meta)
                # The engine aggregates the rows as they are and stores ``blob`` untouched.
                await sink.emit_rows(rows, offset, blob)
            elif tag == b"S":
                self._progress, status = marshal.loads(body)
                self.status.update(status)
            elif tag == b"E":
                sink.error(*marshal.loads(body))
            elif tag == b"U":
                sink.set_up(marshal.loads(body))
            else:
                raise RuntimeError(f"unexpected frame {tag!r} from the reader process")


class _ChildSink:
    """The sink the wrapped source talks to in the child: every call becomes a frame on stdout."""

    def __init__(self, source: Any, saved: Offset | None, writer: asyncio.StreamWriter) -> None:
        self.source = source
        self.saved = saved
        self.writer = writer
        self._progress = getattr(source, "progress", None)

    def _frame(self, tag: bytes, body: bytes) -> None:
        self.writer.write(tag + len(body).to_bytes(_LEN, "big") + body)

    def _state(self) -> tuple[tuple[int, int, int], dict[str, Any]]:
        progress = self._progress() if self._progress is not None else (0, 0, 0)
        return tuple(progress), dict(getattr(self.source, "status", None) or {})

    def finish(self) -> None:
        """Report the source's final progress and status (after its last batch)."""
        self._frame(b"S", marshal.dumps(self._state()))

    async def emit(self, events: Sequence[ContactEvent], offset: Offset | None = None) -> None:
        if not events and offset is None:
            return
        meta = marshal.dumps((None if offset is None else (offset.file_id, offset.position), *self._state()))
        rows = marshal.dumps(encode_rows(events, self.source.name))
        self._frame(b"B", meta)
        self.writer.write(len(rows).to_bytes(_LEN, "big") + rows)
        await self.writer.drain()

    def error(self, where: str, msg: str) -> None:
        self._frame(b"E", marshal.dumps((where, msg)))

    def set_up(self, up: bool) -> None:
        self._frame(b"U", marshal.dumps(bool(up)))

    async def load_offset(self) -> Offset | None:
        return self.saved


def _widen_pipe(fd: int) -> None:
    """Let the pipe on ``fd`` hold a whole batch (Linux; elsewhere, or when refused, a no-op).

    With the default 64 KiB, the reader cannot hand over its next batch (a few hundred KiB) while
    the engine works on the last one: it parses, then waits for the engine to come round and read,
    and the engine waits in turn for the rest of the batch (a tenth of a backfill's time).
    """
    try:
        import fcntl
    except ImportError:  # not a POSIX system
        return
    setsz = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsz is None:
        return
    try:
        limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    except (OSError, ValueError):
        limit = _PIPE_SIZE
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, setsz, min(_PIPE_SIZE, limit))


async def _child() -> None:
    loop = asyncio.get_running_loop()
    head = sys.stdin.buffer.read(_LEN)
    payload, saved = pickle.loads(sys.stdin.buffer.read(int.from_bytes(head, "big")))
    source = pickle.loads(payload)
    _widen_pipe(sys.stdout.fileno())
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, sys.stdout.buffer)
    # No buffering beyond the pipe's own: drain() then returns only once everything written has
    # gone into the pipe, which is what the last frame needs before the process exits.
    transport.set_write_buffer_limits(0)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    if isinstance(source, RowSource):
        # Its output only becomes rows here: build the rows directly, without the events.
        source.make_rows(row_maker(source.name))
    sink = _ChildSink(source, None if saved is None else Offset(*saved), writer)
    try:
        await source.run(sink)
    finally:
        sink.finish()
        await writer.drain()
    writer.close()


def main() -> None:
    """Entry point of the child: the parent decides when it stops (it is killed on cancel)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        asyncio.run(_child())
    except (BrokenPipeError, ConnectionResetError):
        # The parent left at once (a second Ctrl-C): nobody reads the rest, and nothing is lost by
        # stopping, since the next import reads again from the last committed offset.
        os._exit(0)


if __name__ == "__main__":
    main()
