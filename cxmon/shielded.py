"""Awaiting work that must run to its end even when the task awaiting it is cancelled meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def finish(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to its end and return its result; a cancellation of the caller meanwhile is
    passed on only once it has ended (a store's last commit, a connection's close).

    If ``work`` itself is cancelled (the loop shutting down cancels every task), that cancellation
    is raised at once.

    Raises:
        asyncio.CancelledError: the caller was cancelled while ``work`` ran (after it ended), or
            ``work`` was.
    """
    task = asyncio.ensure_future(work)
    interrupted = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                raise
            interrupted = True
    if interrupted:
        raise asyncio.CancelledError
    return result
