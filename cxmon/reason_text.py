"""How a reason words a figure against a line: "wait p90 1m01s > 1m", "service level at 85%"."""

from __future__ import annotations

import functools

from cxmon.config import Threshold
from cxmon.measures import MEASURES, format_value

shown_limit = functools.lru_cache(maxsize=1024)(format_value)
"""format_value of a threshold's lines (warn, breach, clear): a few per config, shown in every reason."""


def label_of(th: Threshold) -> str:
    """The threshold's measure as people read it ("wait p90")."""
    return MEASURES[th.measure].label


def compared(measure: str, value: float, limit: float) -> str:
    """Return ``value`` with enough precision to tell it apart from ``limit`` as shown.

    ``service level 85% < warn 85%`` reads as a contradiction: 84.6 % is shown as ``84.6%`` instead. A
    value that no sensible precision separates from its limit comes back as ``"at"``, for "at 85%".
    """
    text = format_value(measure, value)
    if text != shown_limit(measure, limit):
        return text
    kind = MEASURES[measure].kind
    scale, unit = {"ratio": (100.0, "%"), "duration": (1.0, "s")}.get(kind, (1.0, ""))
    for digits in (1, 2, 3):
        text = f"{value * scale:.{digits}f}{unit}"
        if text != f"{limit * scale:.{digits}f}{unit}":
            return text
    return "at"


def versus(label: str, measure: str, value: float, op: str, limit: float, limit_text: str) -> str:
    """``"wait p90 1m01s > 1m"``, or ``"service level at 85%"`` when the two cannot be told apart."""
    text = compared(measure, value, limit)
    return f"{label} at {limit_text}" if text == "at" else f"{label} {text} {op} {limit_text}"
