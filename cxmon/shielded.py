"""Awaiting work that must run to its end even when the task awaiting it is cancelled meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def outlast(work: Awaitable[T]) -> tuple[asyncio.Future[T], bool]:
    """Wait for ``work`` to end (done, failed, or cancelled itself), whatever cancels the caller
    meanwhile.

    Returns:
        The ended work (its result or exception is read from it) and whether the caller was
        cancelled while it ran: the caller passes that cancellation on once it has used the result
        (a commit's answer, a connection closed).
    """
    task = asyncio.ensure_future(work)
    interrupted = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                interrupted = True
        except Exception:  # the work's own failure: the caller reads it from the task
            pass
    return task, interrupted


async def finish(work: Awaitable[T]) -> T:
    """Run ``work`` to its end and return its result; a cancellation of the caller meanwhile is
    passed on only once it has ended (a store's last commit, a connection's close).

    If ``work`` itself is cancelled (the loop shutting down cancels every task), that cancellation
    is raised at once.

    Raises:
        asyncio.CancelledError: the caller was cancelled while ``work`` ran (after it ended), or
            ``work`` was.
    """
    task, interrupted = await outlast(work)
    if interrupted:
        raise asyncio.CancelledError
    return task.result()
