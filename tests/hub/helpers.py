"""Builders for the hub tests: snapshots of a given size, a feed to publish them, raw watchers."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from cxmon.hub.protocol import SUBPROTOCOL
from cxmon.snapshot import EMPTY_SNAPSHOT, Histogram, SeriesFigures, Snapshot, SourceStatus, State, StepStatus
from cxmon.tui.feed import MemoryFeed
from tests.helpers import REPO, one_step_config
from tests.helpers import free_port as free_port  # re-exported for the tests here


def snapshot(version: int, n_series: int = 6, *, seed: int = 0) -> Snapshot:
    """A snapshot of ``n_series`` series under one step ("help"), figures varying with ``seed``."""
    hist = Histogram(bounds=(5.0, 10.0), counts=(1, 2, 3), total=40.0, count=6)
    series = tuple(
        SeriesFigures(
            step="help",
            channel="voice",
            queue=f"q{i}",
            windows=MappingProxyType(
                {
                    w: MappingProxyType({"offered": float(i + seed), "wait_p90": 12.5 + i, "asa": None})
                    for w in (60.0, 300.0)
                }
            ),
            instant=MappingProxyType({"waiting_now": float(i % 3), "longest_wait_now": 4.0}),
            totals=MappingProxyType({"offered": 100 + i}),
            wait_histogram=hist,
            resolution_histogram=hist,
            state=State.OK,
            reason="",
        )
        for i in range(n_series)
    )
    step = StepStatus(
        name="help",
        label="help",
        state=State.OK,
        reason="",
        since=0.0,
        moment_of_truth=False,
        headline_measure="wait_p90",
        headline_value=12.5,
        trend=0.0,
        affected=3,
    )
    source = SourceStatus("sim", "simulator", True, False, 10, 0, 1000.0 + version, 5.0, 0.0)
    return dataclasses.replace(
        EMPTY_SNAPSHOT,
        version=version,
        ts=1000.0 + version,
        windows=(60.0, 300.0),
        steps=(step,),
        series=series,
        sources=(source,),
    )


def memory_feed(n_series: int = 6) -> MemoryFeed:
    """A feed over the one-step config, holding snapshot version 1."""
    return MemoryFeed(one_step_config(), snapshot(1, n_series))


async def raw_watcher(port: int, token: str | None = None, **kwargs: Any) -> ClientConnection:
    """A websocket connection to the hub on 127.0.0.1:``port`` that reads frames by hand.

    It sends no keepalive pings unless ``ping_interval`` is given: the test process runs the hub and
    every watcher in one loop, and on a busy machine a pong can take longer than the timeout to come
    back, which closes the connection in the middle of whatever the test is about."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs.setdefault("ping_interval", None)
    return await connect(
        f"ws://127.0.0.1:{port}",
        additional_headers=headers,
        subprotocols=[Subprotocol(SUBPROTOCOL)],
        max_size=None,
        **kwargs,
    )


async def frame(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    """The next frame, decoded."""
    value: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), timeout))
    return value


async def until(predicate: Any, *, tries: int = 400, step: float = 0.05) -> None:
    """Wait until ``predicate()`` holds (bounded: ``tries`` × ``step`` seconds), else fail."""
    for _ in range(tries):
        if predicate():
            return
        await asyncio.sleep(step)
    raise AssertionError("condition not reached")


def start_daemon(config: Path, db: Path) -> subprocess.Popen[bytes]:
    """``cxmon serve --config CONFIG --db DB`` in a child process."""
    return subprocess.Popen(
        [sys.executable, "-m", "cxmon", "serve", "--config", str(config), "--db", str(db)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
