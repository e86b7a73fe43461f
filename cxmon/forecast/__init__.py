"""Forecasts: Erlang C/A staffing figures, time to breach and hour-of-week baselines."""

from __future__ import annotations

from cxmon.forecast.erlang_a import erlang_a
from cxmon.forecast.erlang_c import erlang_b, erlang_c, erlang_c_wait
from cxmon.forecast.figures import QueueFigures, Workload
from cxmon.forecast.staffing import agents_needed, evaluate

__all__ = [
    "QueueFigures",
    "Workload",
    "agents_needed",
    "erlang_a",
    "erlang_b",
    "erlang_c",
    "erlang_c_wait",
    "evaluate",
]
