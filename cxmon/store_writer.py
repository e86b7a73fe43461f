"""The store's writer process: commits batches of rows in a child process, beside the engine.

For backfills (``Store(writer="process")``): sqlite3 takes the GIL back after every row, so a writer
thread runs in turn with the parser instead of beside it. The parent (:class:`WriterProcess`)
sends length-prefixed marshal frames of (encoded event batches, rows, offsets, transitions,
minute figures, build-index flag) on the child's stdin; the child (:func:`main`, run as
``python -m cxmon.store_writer DB``) commits each frame in one transaction and answers one line:
``ok``, or ``error …``. Only the schema's statements and apsw, so it starts in a few milliseconds.

The child writes through apsw, not the standard library's sqlite3: apsw binds a row's parameters
with less work around each SQLite call and brings a current SQLite, and the same commits take
1.2–1.4× less CPU (bench/store_writer.py). The file is the same SQLite database the rest of cxmon
opens with sqlite3 and aiosqlite.
"""

from __future__ import annotations

import marshal
import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import apsw

from cxmon.store_schema import (
    CUSTOMER_INDEX,
    INDEX_BUILD,
    INSERT_EVENT,
    INSERT_TRANSITION,
    UPSERT_OFFSET,
    UPSERT_SNAPSHOT,
)

Frame = tuple[list[bytes], list[Any], list[Any], list[Any], list[Any], bool]
"""(marshalled row batches, rows, offset rows, transition rows, minute rows, build the index)."""


class WriterProcess:
    """The parent's end: starts the child, sends it frames and reads its answers."""

    def __init__(self, path: str, keep_fds: tuple[int, ...] = ()) -> None:
        """Start the writer process on the database at ``path``; it inherits ``keep_fds`` (and
        leaves them alone), so what they hold (the sources' locks) lasts as long as it does."""
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "cxmon.store_writer", path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            pass_fds=keep_fds,
        )

    @property
    def returncode(self) -> int | None:
        """The child's exit status once it has ended (0: it committed all it was sent), else None."""
        return self._proc.returncode

    def exchange(self, frame: Frame) -> bytes:
        """Send one frame and return the child's answer line (blocking: run it in a thread, so the
        transfer does not wait for the loop to come round). ``b""`` means the child is gone.

        Raises:
            OSError, ValueError: the pipe to the child is closed.
        """
        assert self._proc.stdin is not None and self._proc.stdout is not None
        payload = marshal.dumps(frame)
        self._proc.stdin.write(len(payload).to_bytes(8, "big") + payload)
        self._proc.stdin.flush()
        return self._proc.stdout.readline()

    def close(self) -> None:
        """Close the child's stdin (it stops after the frame in hand) and wait for it (blocking)."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.close()
        self._proc.wait()
        self._proc.stdout.close()


class Connection(Protocol):
    """What committing a frame needs of a connection (apsw's here; sqlite3's in bench/store_writer.py)."""

    def execute(self, statement: str, /) -> object:
        """Run one statement."""

    def executemany(self, statement: str, rows: Iterable[Any], /) -> object:
        """Run one statement once for each row."""


def commit_frame(conn: Connection, frame: Frame) -> None:
    """Commit one frame's rows in one transaction (a failure leaves it open: the caller rolls back)."""
    blobs, events, offsets, transitions, snapshots, _index = frame
    conn.execute("BEGIN")
    for blob in blobs:
        conn.executemany(INSERT_EVENT, marshal.loads(blob))
    conn.executemany(INSERT_EVENT, events)
    conn.executemany(UPSERT_OFFSET, offsets)
    conn.executemany(INSERT_TRANSITION, transitions)
    conn.executemany(UPSERT_SNAPSHOT, snapshots)
    conn.execute("COMMIT")


def _build_index(conn: apsw.Connection) -> None:
    # The source has finished: build the customer index while the engine works through what it
    # still has queued (the few rows after it go into the index one by one).
    import apsw

    try:
        for pragma in INDEX_BUILD:
            conn.execute(pragma)
        conn.execute(CUSTOMER_INDEX)
    except apsw.Error:
        pass  # the parent builds it on close in any case
    conn.execute("PRAGMA threads=0")
    conn.execute("PRAGMA cache_size=-65536")


def connect(path: str) -> apsw.Connection:
    """Open the database at ``path`` for the writer process.

    apsw is imported here, not with the module: the engine's side (:class:`WriterProcess`, which
    :mod:`cxmon.store` imports) never loads it.
    """
    import apsw

    # One connection in one thread: SQLite's locks around every call and its allocation statistics
    # are work for nothing here. The settings apply only before SQLite starts, hence the restart.
    apsw.shutdown()
    apsw.config(apsw.SQLITE_CONFIG_MULTITHREAD)
    apsw.config(apsw.SQLITE_CONFIG_MEMSTATUS, 0)
    apsw.initialize()
    conn = apsw.Connection(path)
    conn.execute("PRAGMA journal_mode=WAL").fetchall()
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA cache_size=-65536")  # 64 MB: the customer index is written all over
    return conn


def main(argv: list[str] | None = None) -> None:
    """Commit the frames read on stdin into the database named in ``argv`` until stdin closes."""
    path = (argv if argv is not None else sys.argv[1:])[0]
    # Ctrl-C (and a service manager's SIGTERM) reach the whole process group: the parent stops this
    # process by closing stdin once it has flushed, so neither may cut the last commit short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    conn = connect(path)
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = inp.read(8)
        if len(head) < 8:
            break
        size = int.from_bytes(head, "big")
        body = inp.read(size)
        if len(body) < size:
            break  # the parent left in the middle of a frame (stopped at once): nothing to commit
        frame: Frame = marshal.loads(body)
        try:
            commit_frame(conn, frame)
            answer = b"ok\n"
        except Exception as exc:  # a full disk, a locked database: the parent keeps the rows
            if not conn.get_autocommit():
                conn.execute("ROLLBACK")
            answer = ("error " + repr(exc).replace("\n", " ") + "\n").encode()
        try:
            out.write(answer)
            out.flush()
        except BrokenPipeError:
            # The parent is gone: what was committed stays, and there is nobody to tell (the
            # interpreter's own last flush of stdout would only complain that it cannot).
            conn.close()
            os._exit(0)
        if frame[5]:
            _build_index(conn)
    conn.close()


if __name__ == "__main__":
    main()
