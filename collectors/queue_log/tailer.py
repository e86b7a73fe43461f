"""Follow a growing log file by byte offset: rotation by rename, copytruncate, partial and over-long lines."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CHUNK = 64 * 1024
HEAD = 4096
"""Bytes of the first line that go into a file's identity."""
MAX_LINE = 1024 * 1024
"""A line longer than this is skipped whole (never held in memory), so memory stays bounded."""
ROTATE_GRACE = 5.0
"""Seconds a file renamed away must have been quiet before the tailer leaves it for the new one."""


@dataclass(frozen=True, slots=True)
class Lines:
    """Complete lines read from the file."""

    data: bytes
    """Whole lines, each ending in a newline."""
    start: int
    end: int
    """Byte offset after the last line."""
    file_id: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """One line longer than ``max_line`` was passed over whole (it counts as one line)."""

    start: int
    end: int
    """Byte offset after the line's newline."""
    file_id: str

    @property
    def size(self) -> int:
        """Bytes of the line, without its newline."""
        return self.end - self.start - 1


@dataclass(frozen=True, slots=True)
class Switched:
    """The tailer moved to another file: line numbers restart, unless ``same_lines``."""

    why: str
    """``rotated`` (renamed away), ``truncated`` (copytruncate), ``replaced`` (rewritten in place),
    ``copied`` (the rest of the file is read from its rotated copy, which has the same lines)."""
    dropped: int
    """Bytes of an unfinished last line left behind in the old file."""
    unread: bool = False
    """The old content was cut off (copytruncate) and no rotated copy of it was found: whatever was
    written to it after our last read is lost."""

    @property
    def same_lines(self) -> bool:
        """True when the new file goes on with the same line numbers (a copy of the same log)."""
        return self.why == "copied"


IDLE = "idle"
"""Nothing new: at the end of the file and it was not rotated."""
MISSING = "missing"
"""The file does not exist (yet)."""
UNREADABLE = "unreadable"
"""The file exists but cannot be opened or read (permissions, a directory in its place…)."""
PARTIAL = "partial"
"""Bytes were read but no line is complete yet."""

Step = Lines | Skipped | Switched | str


def file_id_of(st: os.stat_result, head: bytes) -> str:
    """Return the identity of a file: ``dev:inode:`` plus a hash of its first line."""
    return f"{st.st_dev}:{st.st_ino}:{head_digest(head)}"


def head_digest(head: bytes) -> str:
    """Return the hash of a first line that ends a file identity."""
    return hashlib.sha1(head, usedforsecurity=False).hexdigest()[:16]


def _head(fd: int) -> bytes | None:
    """Return the first line (newline included, at most HEAD bytes), or None if not complete yet."""
    data = os.pread(fd, HEAD, 0)
    cut = data.find(b"\n")
    if cut >= 0:
        return data[: cut + 1]
    return data if len(data) >= HEAD else None


class FileTailer:
    """Reads a file chunk by chunk from a byte offset; every method is blocking (run it in a thread).

    ``pos`` is always just after the last complete line handed out, which is what an
    :class:`~collectors.base.Offset` stores; an unfinished last line is held back until its newline.

    Rotation:
        * by rename (logrotate ``create``): once the path names another file and the old one is
          read to its end, the old one is still read until it has been quiet (no write, by its
          modification time) for ``grace`` seconds, since the writer keeps writing to it until
          it reopens its log; then the tailer moves to the new file.
        * by copy and truncate: when the file shrinks (or its first line changes), the rest of
          the old content is read from the rotated copy beside it (the file whose first line is
          ours, e.g. ``queue_log.1``), from the same offset; then the new content from 0.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        chunk: int = CHUNK,
        *,
        max_line: int = MAX_LINE,
        grace: float = ROTATE_GRACE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Create a tailer; nothing is opened until :meth:`open` or :meth:`step`.

        Args:
            path: the file to follow.
            chunk: bytes per read (at most ``max_line``).
            max_line: longest line handed out; a longer one is skipped whole.
            grace: seconds a file renamed away must be quiet before it is left.
            clock: the wall clock (epoch seconds) files' modification times are compared with.
        """
        if chunk > max_line:
            raise ValueError("chunk must not exceed max_line")
        self.path = Path(path)
        self.chunk = chunk
        self.max_line = max_line
        self.grace = grace
        self.clock = clock
        self.fd: int | None = None
        self.st: os.stat_result | None = None
        self.name = str(self.path)
        """The file open now: the path, or a rotated copy being finished."""
        self.head: bytes | None = None
        self.file_id: str | None = None
        self.pos = 0
        self._partial = b""
        self._skip_at: int | None = None
        """Read position inside a line over ``max_line`` being passed over."""
        self._static = False
        """The open file is a rotated copy nobody writes to: no grace before leaving it."""
        self.path_state = IDLE
        """What the path itself looked like last time: IDLE (a file), MISSING or UNREADABLE."""
        self.problem = ""
        """Why the path was MISSING or UNREADABLE, for a report."""
        self.bytes_read = 0
        """Bytes handed out as lines since this tailer was made (for progress)."""

    # ------------------------------------------------------------------ opening

    def close(self) -> None:
        """Close the file."""
        if self.fd is not None:
            os.close(self.fd)
        self.fd = None

    def _open(self, path: Path) -> str | None:
        """Open ``path`` at offset 0; return None, or MISSING / UNREADABLE (the old file stays open)."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            self.problem = "file not found"
            return MISSING
        except OSError as exc:
            self.problem = f"cannot open: {exc.strerror or exc}"
            return UNREADABLE
        try:
            st = os.fstat(fd)
            head = _head(fd)
        except OSError as exc:
            os.close(fd)
            self.problem = f"cannot read: {exc.strerror or exc}"
            return UNREADABLE
        self.close()
        self.fd, self.st, self.head = fd, st, head
        self.file_id = file_id_of(st, head) if head is not None else None
        self.name = str(path)
        self.pos = 0
        self._partial = b""
        self._skip_at = None
        self._static = False
        return None

    def open(self, resume_id: str | None = None, resume_pos: int = 0) -> tuple[bool, int]:
        """Open the file, looking for where a previous run stopped.

        The stored identity is looked for at the path and in the files beside it (renamed there by
        a rotation while we were down); failing that, a file beside it with the same first line
        and at least ``resume_pos`` bytes is the copy a copytruncate made while we were down, and
        reading goes on there.

        Args:
            resume_id: the stored file identity, if any.
            resume_pos: the stored byte offset in that file.

        Returns:
            (found, pos): whether the stored file was found; ``pos`` is where to resume in the
            opened file (0 when not found). The caller replays bytes before ``pos`` without
            emitting them.
        """
        if resume_id is not None:
            digest = resume_id.rsplit(":", 1)[-1]
            copies: list[Path] = []
            for candidate in self._candidates():
                if self._open(candidate) is not None or self.st is None or self.st.st_size < resume_pos:
                    continue
                if self.file_id == resume_id:
                    return True, resume_pos
                if candidate != self.path and self.head is not None and head_digest(self.head) == digest:
                    copies.append(candidate)
            for candidate in copies:
                if self._open(candidate) is None:
                    self._static = True
                    return True, resume_pos
            self.close()
        self.path_state = self._open(self.path) or IDLE
        return False, 0

    def _candidates(self) -> list[Path]:
        """The path itself, then files beside it (rotated copies such as queue_log.1)."""
        out = [self.path]
        try:
            siblings = sorted(
                p
                for p in self.path.parent.iterdir()
                if p.name.startswith(self.path.name) and p != self.path and p.is_file()
            )
        except OSError:
            siblings = []
        return out + siblings

    def size(self) -> int:
        """Size of the open file (0 if none)."""
        return os.fstat(self.fd).st_size if self.fd is not None else 0

    def modified(self) -> float | None:
        """Modification time of the open file (epoch seconds), or None when none is open."""
        if self.fd is None:
            return None
        try:
            return os.fstat(self.fd).st_mtime
        except OSError:
            return None

    # ------------------------------------------------------------------ reading

    def step(self) -> Step:
        """Read one chunk and return what happened.

        Returns:
            :class:`Lines` with the complete lines read; :class:`Skipped` for a line over
            ``max_line``; :class:`Switched` when reading moves to another file; ``PARTIAL`` when
            only part of a line came; ``IDLE`` at the end of the file; ``MISSING`` or
            ``UNREADABLE`` when there is no file to read (``problem`` says why).
        """
        if self.fd is None:
            state = self._open(self.path)
            if state is not None:
                self.path_state = state
                return state
            self.path_state = IDLE
        assert self.fd is not None
        try:
            if self.head is not None:
                # Rewritten in place (copytruncate followed by fast growth): what follows our offset
                # belongs to another log. One small read per chunk keeps us from reading it as ours.
                got = os.pread(self.fd, len(self.head), 0)
                if got != self.head:
                    return self._cut("replaced" if len(got) == len(self.head) else "truncated")
            read_at = self._read_to
            data = os.pread(self.fd, self.chunk, read_at)
        except OSError as exc:
            self.close()
            self.problem = f"cannot read: {exc.strerror or exc}"
            self.path_state = UNREADABLE
            return UNREADABLE
        if data:
            return self._take(data, read_at)
        return self._check_rotation()

    def _restart(self, why: str, unread: bool = False) -> Step:
        dropped = len(self._partial)
        state = self._open(self.path)
        if state is not None:
            # Nothing at the path to move to: forget the old file, report the path's state.
            self.close()
            self.path_state = state
        return Switched(why, dropped, unread)

    def _cut(self, why: str) -> Step:
        """The open file no longer holds what we read (copytruncate): go on in its copy, if any."""
        if self.head is None:
            return self._restart(why)  # not even a first line was read: nothing to look for
        read_to = self._read_to
        for candidate in self._candidates()[1:]:
            try:
                fd = os.open(candidate, os.O_RDONLY)
            except OSError:
                continue
            try:
                same = os.pread(fd, len(self.head), 0) == self.head
                size = os.fstat(fd).st_size
            except OSError:
                same, size = False, 0
            if not same:
                os.close(fd)
                continue
            if size <= read_to:
                os.close(fd)  # everything it holds was read already
                return self._restart(why)
            # The copy holds our bytes and the rest: keep the offset and the unfinished line.
            self.close()
            self.fd, self.st, self.name, self._static = fd, os.fstat(fd), str(candidate), True
            assert self.st is not None
            self.file_id = file_id_of(self.st, self.head)
            return Switched("copied", 0)
        return self._restart(why, unread=True)

    def _take(self, data: bytes, read_at: int) -> Step:
        assert self.file_id is not None or self._skip_at is None
        if self._skip_at is not None:
            cut = data.find(b"\n")
            if cut < 0:
                self._skip_at = read_at + len(data)
                return PARTIAL
            return self._skipped(read_at + cut + 1)
        buf = self._partial + data if self._partial else data
        cut = buf.rfind(b"\n")
        if cut < 0:
            if len(buf) <= self.max_line:
                self._partial = buf
                return PARTIAL
            # Pass the line over as it comes; nothing of it is kept.
            self._partial = b""
            self._skip_at = self.pos + len(buf)
            self._ensure_id(buf)
            return PARTIAL
        if len(buf) > self.max_line:
            first = buf.find(b"\n")
            if first > self.max_line:
                self._ensure_id(buf)
                return self._skipped(self.pos + first + 1)
        lines = buf[: cut + 1]
        self._partial = buf[cut + 1 :]
        start = self.pos
        self.pos += len(lines)
        self.bytes_read += len(lines)
        self._ensure_id(lines)
        assert self.file_id is not None
        return Lines(lines, start, self.pos, self.file_id)

    def _ensure_id(self, first: bytes) -> None:
        """Give the file its identity once its first line is there."""
        if self.file_id is None:
            assert self.fd is not None and self.st is not None
            self.head = _head(self.fd)
            self.file_id = file_id_of(self.st, self.head or first[:HEAD])

    def _skipped(self, end: int) -> Skipped:
        assert self.file_id is not None
        start = self.pos
        self.pos = end
        self._partial = b""
        self._skip_at = None
        return Skipped(start, end, self.file_id)

    def _check_rotation(self) -> Step:
        assert self.fd is not None and self.st is not None
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            # Renamed away and not recreated yet: keep reading the old file until a new one appears.
            self.path_state, self.problem = MISSING, "file not found"
            return IDLE
        except OSError as exc:
            self.path_state, self.problem = UNREADABLE, f"cannot stat: {exc.strerror or exc}"
            return IDLE
        self.path_state = IDLE
        if (now.st_dev, now.st_ino) != (self.st.st_dev, self.st.st_ino):
            if self._static or self._quiet_for(self.grace):
                return self._restart("rotated")
            return IDLE  # the writer may not have reopened its log yet
        if os.fstat(self.fd).st_size < self._read_to:
            return self._cut("truncated")
        return IDLE

    def _quiet_for(self, seconds: float) -> bool:
        modified = self.modified()
        return modified is None or self.clock() - modified >= seconds

    @property
    def _read_to(self) -> int:
        """Bytes of the open file read so far."""
        return self._skip_at if self._skip_at is not None else self.pos + len(self._partial)

    @property
    def held(self) -> int:
        """Bytes of an unfinished last line held back (or being passed over)."""
        if self._skip_at is not None:
            return self._skip_at - self.pos
        return len(self._partial)
