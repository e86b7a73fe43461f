"""finish(): work that must run to its end when the task awaiting it is cancelled meanwhile."""

from __future__ import annotations

import asyncio

import pytest

from cxmon.shielded import finish


async def test_a_cancelled_caller_waits_for_the_work_then_is_cancelled() -> None:
    """The work runs to its end (every step taken) although its caller is cancelled twice while it
    runs; the caller then ends cancelled, not with the work's result."""
    steps: list[int] = []
    release = asyncio.Event()

    async def work() -> str:
        for i in range(3):
            steps.append(i)
            await release.wait()
        return "done"

    caller = asyncio.create_task(finish(work()))
    await asyncio.sleep(0)
    caller.cancel()
    await asyncio.sleep(0)
    caller.cancel()
    await asyncio.sleep(0)
    assert not caller.done()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert steps == [0, 1, 2]


async def test_uncancelled_it_returns_the_result_and_raises_the_error() -> None:
    """Not cancelled, finish() is the work itself: its result, or its exception."""

    async def ok() -> int:
        await asyncio.sleep(0)
        return 7

    async def bad() -> int:
        await asyncio.sleep(0)
        raise ValueError("disk full")

    assert await finish(ok()) == 7
    with pytest.raises(ValueError, match="disk full"):
        await finish(bad())


async def test_work_cancelled_itself_ends_the_caller_at_once() -> None:
    """When the work's own task is cancelled (the loop shutting down cancels every task), the caller
    does not wait for ever: the cancellation reaches it."""
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    caller = asyncio.create_task(finish(forever()))
    await started.wait()
    [work] = [t for t in asyncio.all_tasks() if t is not caller and t is not asyncio.current_task()]
    caller.cancel()
    await asyncio.sleep(0)
    work.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(caller, 30)
