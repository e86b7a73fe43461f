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


async def test_outlast_hands_back_the_ended_work_and_whether_the_caller_was_cancelled() -> None:
    """A caller cancelled while the work fails still gets the work back, with its error to read, and
    learns it was cancelled (a commit's failed answer is needed to keep the rows for a retry)."""
    from cxmon.shielded import outlast

    release = asyncio.Event()

    async def failing() -> bytes:
        await release.wait()
        raise OSError("the writer is gone")

    outcome: list[tuple[asyncio.Future[bytes], bool]] = []

    async def caller() -> None:
        outcome.append(await outlast(failing()))

    task = asyncio.create_task(caller())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0)
    release.set()
    await task
    [(work, cancelled)] = outcome
    assert cancelled and isinstance(work.exception(), OSError)
