"""The dashboard's terminal going away: a hang-up is a request to stop, not an error or a hang."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any


class TerminalOut:
    """The dashboard's terminal stream, for whom a write to a terminal that hung up is the news that
    it did (``gone`` is called once, from whichever thread wrote) rather than an error that stops the
    dashboard's writer thread; every other attribute is the stream's own."""

    def __init__(self, stream: Any, gone: Callable[[], None]) -> None:
        self._stream = stream
        self._gone = gone
        self._told = False

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except OSError:
            self._hung_up()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError:
            self._hung_up()

    def _hung_up(self) -> None:
        if not self._told:
            self._told = True
            self._gone()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def detach_terminal(fds: tuple[int, ...] = (0, 1, 2)) -> None:
    """Point the descriptors ``fds`` (standard input, output and error by default) at /dev/null."""
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in fds:
            os.dup2(null, fd)
    finally:
        os.close(null)


def _terminals() -> tuple[int, ...]:
    """Which of standard input, output and error are a terminal now (a hung-up one may not say so)."""
    out = []
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            if os.isatty(fd):
                out.append(fd)
    return tuple(out)


@contextlib.contextmanager
def stop_on_hangup(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> Iterator[None]:
    """While inside, a hang-up of the terminal calls ``stop`` on ``loop`` once, after pointing
    those of standard input, output and error that were the terminal at /dev/null.

    A hang-up is SIGHUP (an SSH connection dropped, a terminal closed), or a write of the
    dashboard's (to ``sys.__stderr__``, as Textual writes) that finds the terminal gone: the
    terminal's session leader may keep SIGHUP from cxmon (``make`` ignores it), and then the first
    failed write is the only news. Without this, Textual's writer thread dies on that write, the
    next write waits for ever on its full queue, and the input thread spins on end-of-file.
    Whatever the dashboard writes while it closes goes to /dev/null.

    Args:
        loop: the running loop; ``stop`` is called in it.
        stop: what stops the program cleanly (as for SIGTERM).
    """
    stopped = False
    # Only what was a terminal is let go: a daemon's output redirected to a log file or the
    # journal (SIGHUP from a service manager or a postrotate script) keeps its shutdown lines.
    terminals = _terminals()

    def on_hangup() -> None:
        nonlocal stopped
        detach_terminal(terminals)
        if not stopped:
            stopped = True
            stop()

    def gone() -> None:
        loop.call_soon_threadsafe(on_hangup)

    terminal = sys.__stderr__
    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    sys.__stderr__ = TerminalOut(terminal, gone)  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        sys.__stderr__ = terminal  # type: ignore[misc]
        loop.remove_signal_handler(signal.SIGHUP)
