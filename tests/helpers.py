"""Small builders shared by the engine tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from cxmon.config import Config, default_config_path, load, loads

REPO = Path(__file__).resolve().parents[1]
SIM_START = "2026-01-05T08:00:00Z"
SIM_START_TS = 1767600000.0


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


def one_step_config(extra: str = "") -> Config:
    """A one-step config (voice queues q1, q2) for focused engine tests."""
    return loads(ONE_STEP + extra, "<one-step>")
