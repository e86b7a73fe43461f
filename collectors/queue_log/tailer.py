"""Follow a growing log file by byte offset: rotation by rename, copytruncate, partial lines."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

CHUNK = 64 * 1024
HEAD = 4096
"""Bytes of the first line that go into a file's identity."""
MAX_LINE = 1024 * 1024
"""A "line" longer than this without a newline is cut there, so memory stays bounded."""


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
class Switched:
    """The tailer moved to a new file (or the start of the same one): line numbers restart."""

    why: str
    """``rotated`` (renamed away), ``truncated`` (copytruncate), ``replaced`` (rewritten in place)."""
    dropped: int
    """Bytes of an unfinished last line left behind in the old file."""


IDLE = "idle"
"""Nothing new: at the end of the file and it was not rotated."""
MISSING = "missing"
"""The file does not exist (yet)."""
PARTIAL = "partial"
"""Bytes were read but no line is complete yet."""

Step = Lines | Switched | str


def file_id_of(st: os.stat_result, head: bytes) -> str:
    """Return the identity of a file: ``dev:inode:`` plus a hash of its first line."""
    digest = hashlib.sha1(head, usedforsecurity=False).hexdigest()[:16]
    return f"{st.st_dev}:{st.st_ino}:{digest}"


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
    """

    def __init__(self, path: str | os.PathLike[str], chunk: int = CHUNK) -> None:
        self.path = Path(path)
        self.chunk = chunk
        self.fd: int | None = None
        self.st: os.stat_result | None = None
        self.head: bytes | None = None
        self.file_id: str | None = None
        self.pos = 0
        self._partial = b""
        self.bytes_read = 0
        """Bytes handed out as lines since this tailer was made (for progress)."""

    # ------------------------------------------------------------------ opening

    def close(self) -> None:
        """Close the file."""
        if self.fd is not None:
            os.close(self.fd)
        self.fd = None

    def _open(self, path: Path) -> bool:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        self.close()
        self.fd = fd
        self.st = os.fstat(fd)
        self.head = _head(fd)
        self.file_id = file_id_of(self.st, self.head) if self.head is not None else None
        self.pos = 0
        self._partial = b""
        return True

    def open(self, resume_id: str | None = None, resume_pos: int = 0) -> tuple[bool, int]:
        """Open the file, looking for where a previous run stopped.

        Args:
            resume_id: the stored file identity, if any.
            resume_pos: the stored byte offset in that file.

        Returns:
            (found, pos): whether the stored identity was found (at the path, or renamed next to
            it by a rotation while we were down); ``pos`` is where to resume in the opened file
            (0 when not found). The caller replays bytes before ``pos`` without emitting them.
        """
        if resume_id is not None:
            for candidate in self._candidates():
                if not self._open(candidate):
                    continue
                if self.file_id == resume_id and self.st is not None and self.st.st_size >= resume_pos:
                    return True, resume_pos
            self.close()
        self._open(self.path)
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

    # ------------------------------------------------------------------ reading

    def step(self) -> Step:
        """Read one chunk and return what happened.

        Returns:
            :class:`Lines` with the complete lines read; :class:`Switched` when the file was
            rotated or truncated (reading restarts at 0 of the file now at the path); ``PARTIAL``
            when only part of a line came; ``IDLE`` at the end of the file; ``MISSING`` when
            there is no file to read.
        """
        if self.fd is None and not self._open(self.path):
            return MISSING
        assert self.fd is not None
        if self.head is not None:
            # Rewritten in place (copytruncate followed by fast growth): what follows our offset
            # belongs to another log. One small read per chunk keeps us from reading it as ours.
            got = os.pread(self.fd, len(self.head), 0)
            if got != self.head:
                return self._restart("replaced" if len(got) == len(self.head) else "truncated")
        read_at = self.pos + len(self._partial)
        data = os.pread(self.fd, self.chunk, read_at)
        if data:
            return self._take(data)
        return self._check_rotation()

    def _restart(self, why: str) -> Switched:
        dropped = len(self._partial)
        self._open(self.path)
        return Switched(why, dropped)

    def _take(self, data: bytes) -> Step:
        buf = self._partial + data if self._partial else data
        cut = buf.rfind(b"\n")
        if cut < 0:
            if len(buf) < MAX_LINE:
                self._partial = buf
                return PARTIAL
            cut = len(buf) - 1
        lines = buf[: cut + 1]
        self._partial = buf[cut + 1 :]
        start = self.pos
        self.pos += len(lines)
        self.bytes_read += len(lines)
        if self.file_id is None:
            assert self.fd is not None and self.st is not None
            self.head = _head(self.fd)
            self.file_id = file_id_of(self.st, self.head or lines[:HEAD])
        return Lines(lines, start, self.pos, self.file_id)

    def _check_rotation(self) -> Step:
        assert self.fd is not None and self.st is not None
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            # Renamed away and not recreated yet: keep reading the old file until a new one appears.
            return IDLE
        if (now.st_dev, now.st_ino) != (self.st.st_dev, self.st.st_ino):
            return self._restart("rotated")
        if os.fstat(self.fd).st_size < self.pos + len(self._partial):
            return self._restart("truncated")
        return IDLE

    @property
    def held(self) -> int:
        """Bytes of an unfinished last line held back."""
        return len(self._partial)
