"""Fixtures and helpers of the dashboard tests: the real Engine on the seeded simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from cxmon.engine import Engine
from tests.snapshot_app import MINUTES, sim_config

SIZE = (120, 40)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    """The real Engine after a seeded simulator run ("max" speed) into a database under tmp_path."""
    async with Engine(sim_config(), db_path=str(tmp_path / "cxmon.db")) as eng:
        await eng.run(duration=MINUTES * 60.0)
        yield eng


@pytest.fixture
async def live_engine(tmp_path: Path) -> AsyncIterator[Engine]:
    """The real Engine on the simulator paced at 10 simulated minutes per second, running."""
    async with Engine(sim_config(speed="600"), db_path=str(tmp_path / "live.db")) as eng:
        runner = asyncio.create_task(eng.run())
        yield eng
        eng.stop()
        await runner


async def settle(pilot: Pilot[int], until: Callable[[], bool], *, tries: int = 200) -> None:
    """Let the app process messages until ``until()`` holds (bounded by a number of turns, not by time)."""
    for _ in range(tries):
        if until():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition not reached")
