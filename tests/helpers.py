"""Small builders shared by the engine tests."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, NotRequired, TypedDict

import pytest

from collectors.base import Sink
from cxmon.config import Config, default_config_path, load, loads
from cxmon.events import ContactEvent

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
"""The public sample data (real Asterisk logs, helpdesk payloads), cloned beside the repository."""
SIM_START = "2026-01-05T08:00:00Z"
SIM_START_TS = 1767600000.0


class OnQueue(TypedDict):
    """ContactEvent's keywords for where events happen, shared by a test's events as ``**where``."""

    channel: str
    queue: str
    customer_id: NotRequired[str]


class OfContact(OnQueue):
    """The same, for events that are all one contact's."""

    contact_id: str


class EventExtras(TypedDict, total=False):
    """ContactEvent's optional keywords, for builders that pass them on (``**kw: Unpack[EventExtras]``)."""

    source: str
    customer_id: str | None
    wait: float | None
    duration: float | None
    reason: str | None
    score: float | None
    target: str | None
    agents_staffed: int | None
    agents_available: int | None
    contacts_waiting: int | None


def default_config() -> Config:
    """The shipped default configuration."""
    return load(default_config_path())


def sim_config(**options: Any) -> Config:
    """The default config with the simulator's options overridden (e.g. ``speed="max"``)."""
    config = default_config()
    collectors = tuple(
        dataclasses.replace(c, options={**c.options, "start": SIM_START, **options})
        if c.type == "simulator"
        else c
        for c in config.collectors
    )
    return dataclasses.replace(config, collectors=collectors)


ONE_STEP = """
[monitor]
windows = ["60s", "5m"]
panes = 6
short_abandon = "5s"
stale_after = "30s"
lost_after = "1h"

[journey]
queues = ["q1", "q2"]

[[journey.steps]]
name = "help"
service_level_target = "20s"
long_wait = "60s"
match = [{ channel = "voice", queue = "q*" }]
  [[journey.steps.thresholds]]
  measure = "wait_p90"
  window = "60s"
  warn = "30s"
  breach = "60s"
  clear = "45s"
  for = "30s"
"""


TWIN_THRESHOLDS = """
[monitor]
windows = ["5m"]

[journey]
channels = ["voice", "chat"]

[[journey.steps]]
name = "help"
match = [{ channel = "voice", queue = "billing" }, { channel = "chat", queue = "support" }]
  [[journey.steps.thresholds]]
  measure = "wait_p90"
  channel = "voice"
  breach = "60s"
  for = "1m"
  [[journey.steps.thresholds]]
  measure = "wait_p90"
  channel = "chat"
  breach = "120s"
  clear = "100s"
  for = "1m"
"""
"""A step with voice and chat wait p90 thresholds over one window: two alerts told apart by channel."""


class BatchFeed:
    """A finite source: the events in batches of 40, in time order (a backfill's feed)."""

    name = "feed"
    type = "test"

    def __init__(self, events: Sequence[ContactEvent]) -> None:
        self.events = events

    async def run(self, sink: Sink) -> None:
        sink.set_up(True)
        for i in range(0, len(self.events), 40):
            await sink.emit(self.events[i : i + 40])


def one_step_config(extra: str = "") -> Config:
    """A one-step config (voice queues q1, q2) for focused engine tests."""
    return loads(ONE_STEP + extra, "<one-step>")


def skip_unless_ci(msg: str) -> NoReturn:
    """Skip a test for what this machine lacks (``msg``); under CI (``CI`` set) fail instead.

    CI installs every package and clones the sample data the suite needs, so a skip there would
    hide a test that never ran.
    """
    if os.environ.get("CI"):
        pytest.fail(f"{msg}, and CI is set: under CI every test must run")
    pytest.skip(msg)


def require_binary(name: str) -> str:
    """Return the path of the program ``name`` (a Debian package the integration tests drive)."""
    path = shutil.which(name)
    if path is None:
        skip_unless_ci(f"{name} is not installed (Debian package; `make system-deps` installs it)")
    return path


_PORTS_GIVEN: set[int] = set()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (for servers that cannot take port 0).

    Never the same port twice in one run: the kernel picks a free port at random, and two asked for
    in a row (a hub's and a web server's) now and then come back the same.
    """
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port


def shared_data(*parts: str) -> Path:
    """Return a file of the shared sample data (see SHARED_DATA)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        skip_unless_ci(f"sample data {path} is missing (clone shared/ beside the repo)")
    return path


class HandFed:
    """A source a test feeds by hand, through the engine's own batch path (``_process``)."""

    type = "test"
    name = "feed"

    async def run(self, sink: object) -> None:  # pragma: no cover - never started
        raise AssertionError("fed by hand")


def only_pid(pattern: str) -> int:
    """The pid of the one process whose command line matches ``pattern`` (``pgrep -f``)."""
    found = subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True, text=True)
    pids = [int(p) for p in found.stdout.split()]
    assert len(pids) == 1, found
    return pids[0]
