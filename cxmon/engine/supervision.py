"""Source supervision: each source runs to its end; a live one that dies is started again after a backoff."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from collectors.base import Source
from cxmon.engine.health import SourceHealth
from cxmon.engine.sinks import SourceSink
from cxmon.errors import CxmonError

log = logging.getLogger("cxmon.engine.core")

RESTART_BACKOFF = (1.0, 30.0)
"""First and longest wait before a live source that died is started again (doubling, with jitter)."""


async def supervise(
    source: Source,
    sink: SourceSink,
    health: SourceHealth,
    *,
    restart: bool,
    settle: Callable[[], Awaitable[None]],
) -> None:
    """Run ``source`` to its end.

    A live source that dies is started again after a backoff (doubling, with jitter), shown down
    meanwhile; a backfill's source that dies is marked failed, so the run that needed it cannot end
    as a success.

    Args:
        source: the source to run.
        sink: the sink it hands its batches to.
        health: its running health figures (down, failed, restarts, finished).
        restart: start it again when it dies (else mark it failed).
        settle: waits until what the source handed over is processed and stored, so a restarted
            source resumes after its last batch, not before it.
    """
    backoff = RESTART_BACKOFF[0]
    try:
        while True:
            try:
                await source.run(sink)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                sink.error(source.name, f"source stopped: {_why(exc)}")
                # A file or a socket that cannot be had is the operator's to fix, and its message
                # says what it is; only a fault of cxmon's own needs the traceback.
                told = isinstance(exc, OSError | CxmonError)
                log.error("source %s failed: %s", source.name, _why(exc), exc_info=None if told else exc)
                health.say_up(False, 0.0)
                if not restart:
                    health.failed = True
                    return
            # A source that reads a file or a socket resumes from its stored offset or
            # reconnects; one that cannot will fail again and wait longer.
            health.restarts += 1
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            await settle()
            backoff = min(backoff * 2.0, RESTART_BACKOFF[1])
    finally:
        health.up = False
        health.finished = True


def _why(exc: Exception) -> str:
    """Say why a source stopped: an OSError by its reason and file (``No such file or directory:
    calls.csv``), anything else as its repr."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return repr(exc)
