"""The dashboard on a fixed picture: a seeded simulator run through the real Engine, and a frozen clock.

Used by the snapshot tests (``snap_compare``), ``docs/dashboard.svg`` and the benchmark; run it with
``textual run tests/snapshot_app.py`` to look at it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import threading
from pathlib import Path
from typing import TypedDict, Unpack

from cxmon.config import Config, default_config_path, loads
from cxmon.engine import Engine
from cxmon.snapshot import Snapshot
from cxmon.tui.app import CxmonApp
from cxmon.tui.feed import MemoryFeed

SEED = 7
START = "2026-01-05T08:00:00Z"
MINUTES = 12.0
"""Simulated minutes: long enough for the scripted billing incident to open a pot hole."""


def sim_config_text(
    *,
    speed: str | float = '"max"',
    start: str = START,
    seed: int = SEED,
    monitor: str = "",
    simulator: str = "",
) -> str:
    """Return config/default.toml with the simulator's speed, start and seed fixed.

    Args:
        speed: a TOML value: a number of simulated seconds per second, or ``'"max"'``.
        start: simulated start time (ISO 8601).
        seed: the simulator's seed.
        monitor: TOML lines added to the ``[monitor]`` table (keys it does not set yet).
        simulator: TOML lines added to the simulator's ``[[collectors]]`` table.
    """
    text = default_config_path().read_text(encoding="utf-8")
    text = text.replace("speed = 10 ", f'speed = {speed}\nstart = "{start}"\n{simulator}\n', 1)
    text = text.replace("seed = 7\n", f"seed = {seed}\n", 1)
    # Tests run several dashboards at once: let the OS pick the metrics port.
    text = text.replace('listen = "127.0.0.1:9464"', 'listen = "127.0.0.1:0"', 1)
    if monitor:
        text = text.replace("[monitor]\n", f"[monitor]\n{monitor}\n", 1)
    return text


class SimOptions(TypedDict, total=False):
    """:func:`sim_config_text`'s keyword arguments."""

    speed: str | float
    start: str
    seed: int
    monitor: str
    simulator: str


def sim_config(**options: Unpack[SimOptions]) -> Config:
    """Return the validated config of :func:`sim_config_text` (the same arguments)."""
    return loads(sim_config_text(**options), "<snapshot app>")


def freeze(snapshot: Snapshot) -> Snapshot:
    """Replace the wall-clock rates (events/s) with rates over simulated time, so the picture is fixed."""
    span = MINUTES * 60.0
    sources = tuple(
        dataclasses.replace(s, events_per_second=s.events_total / span, errors_per_second=0.0)
        for s in snapshot.sources
    )
    return dataclasses.replace(snapshot, sources=sources, events_per_second=snapshot.events_total / span)


async def simulated_feed(minutes: float = MINUTES, db_path: str | None = None) -> MemoryFeed:
    """Run the seeded simulator through the Engine and return a feed holding the final snapshot."""
    config = sim_config()
    engine = Engine(config, db_path=db_path, store=db_path is not None)
    async with engine:
        await engine.run(duration=minutes * 60.0)
        # The picture as of the last tick the data drove (closing the engine ticks once more).
        latest = engine.latest
        leaders = await engine.customer_leaders(20)
        paths = {cid: await engine.customer_path(cid) for cid, _ in leaders[:3]}
    return MemoryFeed(config, freeze(latest), leaders=leaders, paths=paths)


def _build_feed() -> MemoryFeed:
    # snap_compare imports this module from a test, which may already run inside an event loop.
    out: list[MemoryFeed] = []
    thread = threading.Thread(target=lambda: out.append(asyncio.run(simulated_feed())))
    thread.start()
    thread.join()
    return out[0]


def build_app() -> CxmonApp:
    """The dashboard over the fixed feed: times in UTC, a wall clock that never moves, no refresh limit."""
    return CxmonApp(_build_feed(), timezone="UTC", refresh_interval=0.0, clock=lambda: 0.0)


# snap_compare and `textual run` load this file with runpy (``__name__`` "<run_path>"); tests that
# import it for the helpers above do not pay for the simulation.
if __name__ == "<run_path>" or (__name__ == "__main__" and sys.argv[1:2] != ["--screenshot"]):
    app = build_app()


async def _save_screenshot(path: str, size: tuple[int, int] = (160, 48)) -> None:
    """Write the dashboard as an SVG (Textual's own export): ``docs/dashboard.svg``."""
    shot = build_app()
    async with shot.run_test(size=size) as pilot:
        for _ in range(100):
            if shot.snapshot.version:
                break
            await pilot.pause(0.02)
        await pilot.pause(0.2)
        target = Path(path)
        shot.save_screenshot(filename=target.name, path=str(target.parent))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--screenshot"]:
        asyncio.run(_save_screenshot(sys.argv[2] if len(sys.argv) > 2 else "docs/dashboard.svg"))
    else:
        app.run()
