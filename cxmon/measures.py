"""The measures cxmon computes, with their kind (how values are parsed and shown)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from cxmon.units import format_duration, parse_duration, parse_ratio

Kind = Literal["count", "duration", "ratio", "score"]


@dataclass(frozen=True, slots=True)
class Measure:
    """A measure's name, what kind of number it is, and whether it is windowed."""

    name: str
    kind: Kind
    windowed: bool
    label: str
    """Short human label, e.g. "wait p90"."""


_ALL = [
    Measure("offered", "count", True, "offered"),
    Measure("answered", "count", True, "answered"),
    Measure("abandoned", "count", True, "abandoned"),
    Measure("short_abandoned", "count", True, "short abandons"),
    Measure("lost", "count", True, "lost"),
    Measure("service_level", "ratio", True, "service level"),
    Measure("asa", "duration", True, "ASA"),
    Measure("wait_p50", "duration", True, "wait p50"),
    Measure("wait_p90", "duration", True, "wait p90"),
    Measure("wait_p99", "duration", True, "wait p99"),
    Measure("abandon_rate", "ratio", True, "abandon rate"),
    Measure("resolution_p50", "duration", True, "resolution p50"),
    Measure("resolution_p90", "duration", True, "resolution p90"),
    Measure("escalations", "count", True, "escalations"),
    Measure("escalation_rate", "ratio", True, "escalation rate"),
    Measure("transfers", "count", True, "transfers"),
    Measure("reopen_rate", "ratio", True, "reopen rate"),
    Measure("csat", "score", True, "CSAT"),
    Measure("response_rate", "ratio", True, "response rate"),
    Measure("waiting_now", "count", False, "waiting now"),
    Measure("longest_wait_now", "duration", False, "longest wait"),
    Measure("agents_staffed", "count", False, "agents staffed"),
    Measure("agents_available", "count", False, "agents available"),
    Measure("occupancy", "ratio", False, "occupancy"),
    Measure("backlog", "count", False, "backlog"),
    Measure("aged_backlog", "count", False, "aged backlog"),
]

MEASURES: dict[str, Measure] = {m.name: m for m in _ALL}
WINDOWED: tuple[str, ...] = tuple(m.name for m in _ALL if m.windowed)
INSTANT: tuple[str, ...] = tuple(m.name for m in _ALL if not m.windowed)


def parse_value(measure: str, value: object) -> float:
    """Parse a threshold value for ``measure`` (a duration, ratio, count or score).

    Raises:
        ValueError: with a message naming what was expected.
    """
    kind = MEASURES[measure].kind
    try:
        if kind == "duration":
            return parse_duration(value)
        if kind == "ratio":
            return parse_ratio(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(value)
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(value)
        return number
    except (ValueError, OverflowError):
        expected = {
            "duration": 'a duration like "90s"',
            "ratio": 'a ratio like 0.8 or "80%"',
            "count": "a number",
            "score": "a number",
        }[kind]
        raise ValueError(f"expected {expected}, got {value!r}") from None


def format_value(measure: str, value: float | None) -> str:
    """Format a measure's value for people ("42s", "81%", "12", "4.2")."""
    if value is None:
        return "—"
    kind = MEASURES[measure].kind
    if kind == "duration":
        return format_duration(value)
    if kind == "ratio":
        return f"{value * 100:.0f}%"
    if kind == "score":
        return f"{value:.2f}"
    return f"{value:.0f}"
