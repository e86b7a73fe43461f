"""One process at a time feeds a source into a database: a lock file per (database, source).

Each run loads a source's stored offset as it starts and commits its own offsets as it goes, so two
processes feeding the same source into the same history (two imports of one file, ``serve`` and an
import under its source's name) would both read from the same offset and store every event twice.
An engine with a store therefore takes, per source, an exclusive ``flock`` on a file beside the
database — ``<db>-<source>.lock``, as SQLite keeps its ``-wal`` and ``-shm`` there — before it
reads anything. ``flock`` rather than POSIX byte-range locks, and on a file of its own rather than
the database: closing any descriptor of a file drops every POSIX lock the process holds on it,
SQLite's own included. The kernel lets go of an ``flock`` when its last descriptor closes, so a
process killed with SIGKILL leaves no stale lock behind. The holder writes its pid into the file,
for the one line that tells a second process who holds it, and removes the file when it lets go.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from cxmon.errors import StartupError

_NAME_MAX = 120
"""Longest source part of a lock file's name; a longer one is cut and given a digest of the whole."""


def lock_path(db_path: str, source: str) -> Path | None:
    """The lock file of ``source`` in the database at ``db_path`` (None for an in-memory database).

    The database's path is resolved (a symbolic link, another spelling of the folder), so every
    process that opens the same file agrees on its lock. The source's name is percent-encoded: it
    becomes one safe file name, and two different names never share a lock.
    """
    if db_path in ("", ":memory:") or db_path.startswith("file:"):
        return None
    db = Path(os.path.realpath(Path(db_path).expanduser()))
    part = quote(source, safe="")
    if len(part) > _NAME_MAX:
        part = part[: _NAME_MAX - 17] + "-" + hashlib.sha256(source.encode()).hexdigest()[:16]
    return db.with_name(f"{db.name}-{part}.lock")


class SourceLocks:
    """The locks an engine holds on its sources in one database, from :meth:`take` to :meth:`release`."""

    def __init__(self, db_path: str) -> None:
        """Describe the locks of the database at ``db_path``; nothing is taken until :meth:`take`."""
        self.db_path = db_path
        self._held: list[tuple[Path, int]] = []

    @property
    def fds(self) -> tuple[int, ...]:
        """The descriptors of the locks held (a child that commits for the sources keeps them open)."""
        return tuple(fd for _, fd in self._held)

    def take(self, sources: Iterable[str]) -> None:
        """Take the lock of every source in ``sources``, or none of them.

        Raises:
            StartupError: another process feeds one of them into this database (naming the source,
                the database and the holder's pid), or a lock file cannot be made.
        """
        try:
            for name in dict.fromkeys(sources):
                path = lock_path(self.db_path, name)
                if path is not None:
                    self._held.append((path, self._take(path, name)))
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Let go of every lock held, removing its file."""
        held, self._held = self._held, []
        for path, fd in held:
            # Removed while still locked: a process that opened the file meanwhile finds, once it
            # has the lock, that the name no longer leads to it, and takes a new one (see _take).
            with contextlib.suppress(OSError):
                path.unlink()
            os.close(fd)

    def _take(self, path: Path, source: str) -> int:
        while True:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)  # as the store would on opening
                fd, writable = _open(path)
            except OSError as exc:
                why = (exc.strerror or str(exc)).lower()
                raise StartupError(
                    f"cannot make the lock file {path} of source {source} in {self.db_path}: {why}; "
                    "check the permissions of the database's folder"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                by = f"process {holder}" if holder else "another process"
                raise StartupError(
                    f"source {source} is already being fed into {self.db_path} by {by} (lock {path}); "
                    "one process at a time feeds a source into a database, or every event would be "
                    "stored twice: wait for that one to end, or stop it"
                ) from None
            except BaseException:
                os.close(fd)
                raise
            try:
                mine, there = os.fstat(fd), os.stat(path)
                same = (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)
            except FileNotFoundError:
                same = False
            if not same:  # the holder removed it as it let go: lock the file that is there now
                os.close(fd)
                continue
            if not writable:
                # Another user's, left by a process that was killed: locked, it can be replaced by
                # one of this process's own (whose pid a second process can then be told).
                try:
                    path.unlink()
                except OSError:
                    return fd
                os.close(fd)
                continue
            with contextlib.suppress(OSError):  # the pid only helps the message of a second process
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd


def _open(path: Path) -> tuple[int, bool]:
    """Open (or make) the lock file: its descriptor, and whether it could be opened to write. One
    this process's user may not write (left by another user's process that was killed) is opened
    to read: flock needs no more."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644), True
    except PermissionError:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC), False


def _holder(fd: int) -> int | None:
    """The pid the lock's holder wrote in its file, if it has yet."""
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None
