"""The warning lead benchmark's reference (the model at the simulator's true arrival rates) against the
brute-force M/M/N+M chain, at the simulator's own queue parameters read from the default config."""

from __future__ import annotations

import importlib.util
import math
import sys
import tomllib
from types import ModuleType

import pytest

from tests.forecast.reference import reference
from tests.helpers import REPO

MINUTES = {"m": 60.0, "s": 1.0}


def leadtime() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_leadtime", REPO / "bench" / "leadtime.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def seconds(text: str) -> float:
    return float(text[:-1]) * MINUTES[text[-1]]


@pytest.mark.parametrize("queue", ["sales", "billing", "tech"])
@pytest.mark.parametrize(("factor", "phase"), [(1.0, 0.0), (1.5, 0.25), (1.9, 0.75)])
def test_the_true_rate_service_level_is_the_chains(queue: str, factor: float, phase: float) -> None:
    """At the queue's rate (its hourly swing at ``phase`` of the hour, times ``factor``), agents, mean
    handle time and patience, the benchmark's service level is the birth-death chain's."""
    bench = leadtime()
    config = bench.load(bench.default_config_path())
    raw = tomllib.loads((REPO / "config" / "default.toml").read_text())
    [q] = [q for q in raw["collectors"][0]["queues"] if q["name"] == queue]
    rate = q["arrivals_per_hour"] / 3600.0 * (1.0 + 0.15 * math.sin(2.0 * math.pi * phase)) * factor
    expected = reference(rate, seconds(q["handle_mean"]), seconds(q["patience_mean"]), q["agents"], 20.0)
    service_level, chance = bench.true_outlook(config, queue, factor, phase * 3600.0)
    assert service_level == pytest.approx(expected.service_level, abs=1e-6)
    assert 0.0 <= chance <= 1.0
