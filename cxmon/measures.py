"""The measures cxmon computes and the rules every consumer shares: kind, bad direction, how queues
combine, the service-level denominator and the volume a value rests on.

The aggregator, the detector, the engine's headline, the exporter, the alerting rules and the
dashboard all ask here, so a channel row on the screen, a merged Prometheus series and a threshold's
volume gate mean the same thing.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from cxmon.units import format_duration, parse_duration, parse_ratio

Kind = Literal["count", "duration", "ratio", "score"]


Direction = Literal["above", "below"]
Combine = Literal["sum", "worst", "weighted"]


@dataclass(frozen=True, slots=True)
class Measure:
    """A measure's name, what kind of number it is, whether it is windowed, and its rules."""

    name: str
    kind: Kind
    windowed: bool
    label: str
    """Short human label, e.g. "wait p90"."""
    bad: Direction = "above"
    """Which way is worse: "below" for service level, CSAT, agents (a threshold's default)."""
    combine: Combine = "sum"
    """How several queues' values make one (a channel row, a merged label set): counts add up;
    percentiles and the longest wait cannot be merged from values, so the worst one stands;
    ratios, means and scores are weighted by what they are over (:func:`denominator`)."""
    quantile: float | None = None
    """For a percentile, the quantile it is of its sketch (wait p90: 0.9), else None."""


_ALL = [
    Measure("offered", "count", True, "offered"),
    Measure("answered", "count", True, "answered"),
    Measure("abandoned", "count", True, "abandoned"),
    Measure("short_abandoned", "count", True, "short abandons"),
    Measure("lost", "count", True, "lost"),
    Measure("service_level", "ratio", True, "service level", "below", "weighted"),
    Measure("asa", "duration", True, "ASA", combine="weighted"),
    Measure("wait_p50", "duration", True, "wait p50", combine="worst", quantile=0.5),
    Measure("wait_p90", "duration", True, "wait p90", combine="worst", quantile=0.9),
    Measure("wait_p99", "duration", True, "wait p99", combine="worst", quantile=0.99),
    Measure("abandon_rate", "ratio", True, "abandon rate", combine="weighted"),
    Measure("resolution_p50", "duration", True, "resolution p50", combine="worst", quantile=0.5),
    Measure("resolution_p90", "duration", True, "resolution p90", combine="worst", quantile=0.9),
    Measure("escalations", "count", True, "escalations"),
    Measure("escalation_rate", "ratio", True, "escalation rate", combine="weighted"),
    Measure("transfers", "count", True, "transfers"),
    Measure("reopen_rate", "ratio", True, "reopen rate", combine="weighted"),
    Measure("csat", "score", True, "CSAT", "below", "weighted"),
    Measure("response_rate", "ratio", True, "response rate", "below", "weighted"),
    Measure("next_reply_in_target", "ratio", True, "next reply in target", "below", "weighted"),
    Measure("waiting_now", "count", False, "waiting now"),
    Measure("longest_wait_now", "duration", False, "longest wait", combine="worst"),
    Measure("agents_staffed", "count", False, "agents staffed", "below"),
    Measure("agents_available", "count", False, "agents available", "below"),
    Measure("occupancy", "ratio", False, "occupancy", combine="weighted"),
    Measure("backlog", "count", False, "backlog"),
    Measure("aged_backlog", "count", False, "aged backlog"),
]

MEASURES: dict[str, Measure] = {m.name: m for m in _ALL}
WINDOWED: tuple[str, ...] = tuple(m.name for m in _ALL if m.windowed)
INSTANT: tuple[str, ...] = tuple(m.name for m in _ALL if not m.windowed)

SERVICE_LEVEL_DENOMINATORS: dict[str, tuple[str, ...]] = {
    "excl_short_abandons": ("answered", "+abandoned", "-short_abandoned"),
    "incl_abandons": ("answered", "+abandoned"),
    "answered_only": ("answered",),
}
"""The service-level formulas vendors use (``monitor.service_level_formula``): the counts "answered
within T" is divided by, each added (+) or taken away (-). The one definition of the denominator."""
ABANDON_RATE_PARTS: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("abandoned", "-short_abandoned"),
    ("answered", "+abandoned", "-short_abandoned"),
)
"""The abandon rate's numerator and denominator, as counts added (+) or taken away (-)."""
_COUNT_WORDS = {"answered": "answered", "abandoned": "abandoned", "short_abandoned": "short abandons"}


def parts_text(parts: Sequence[str]) -> str:
    """Counts added (+) or taken away (-) in words: "answered + abandoned − short abandons"."""
    text = ""
    for part in parts:
        sign, name = (part[0], part[1:]) if part[0] in "+-" else ("+", part)
        text += (f" {'+' if sign == '+' else '−'} " if text else "") + _COUNT_WORDS.get(name, name)
    return text


def _coefficients(parts: Sequence[str]) -> tuple[int, int, int]:
    """How many times (answered, abandoned, short abandoned) each count in ``parts``."""
    signs = {(p[1:] if p[0] in "+-" else p): -1 if p[0] == "-" else 1 for p in parts}
    return signs.get("answered", 0), signs.get("abandoned", 0), signs.get("short_abandoned", 0)


_AB_COEFFICIENTS = _coefficients(ABANDON_RATE_PARTS[1])
_SL_COEFFICIENTS = {name: _coefficients(parts) for name, parts in SERVICE_LEVEL_DENOMINATORS.items()}
SERVICE_LEVEL_FORMULAS: dict[str, str] = {
    name: f"answered within T ÷ ({parts_text(parts)})"
    if len(parts) > 1
    else f"answered within T ÷ {parts_text(parts)}"
    for name, parts in SERVICE_LEVEL_DENOMINATORS.items()
}
"""The service-level formulas by name, as shown to people."""


def bad_direction(measure: str) -> Direction:
    """Return which way ``measure`` gets worse ("above" for names that are not measures)."""
    m = MEASURES.get(measure)
    return "above" if m is None else m.bad


def service_level_denominator(formula: str, answered: float, abandoned: float, short: float) -> float:
    """Return what "answered within T" is divided by under ``formula`` (an unknown name: the default)."""
    a, b, c = _SL_COEFFICIENTS.get(formula) or _SL_COEFFICIENTS["excl_short_abandons"]
    return a * answered + b * abandoned + c * short


def abandon_rate_denominator(answered: float, abandoned: float, short: float) -> float:
    """Return what the abandoned contacts (short ones excepted) are divided by in the abandon rate."""
    a, b, c = _AB_COEFFICIENTS
    return a * answered + b * abandoned + c * short


def _count(figures: Mapping[str, float | None], name: str) -> float:
    """``figures[name]``, 0 when missing or None (a function, not a closure made at every call)."""
    # ``in`` then ``[]``: ``get`` on a read-only view (what the tick judges) is two method calls.
    return (figures[name] or 0.0) if name in figures else 0.0


def denominator(measure: str, figures: Mapping[str, float | None], formula: str) -> float:
    """Return what a ratio, mean or score of ``figures`` is over: its weight when queues combine."""

    if measure == "service_level":
        return service_level_denominator(
            formula,
            _count(figures, "answered"),
            _count(figures, "abandoned"),
            _count(figures, "short_abandoned"),
        )
    if measure == "abandon_rate":
        return abandon_rate_denominator(
            _count(figures, "answered"), _count(figures, "abandoned"), _count(figures, "short_abandoned")
        )
    if measure in ("asa", "escalation_rate"):
        return _count(figures, "answered")
    if measure == "reopen_rate":
        return _count(figures, "resolved")
    if measure == "csat":
        return _count(figures, "feedback")
    if measure == "response_rate":
        return _count(figures, "surveys")
    if measure == "next_reply_in_target":
        return _count(figures, "next_replies")
    if measure == "occupancy":
        return _count(figures, "agents_staffed")
    return _count(figures, "offered")


@functools.cache  # read at every judgement, and the same for a measure whenever it is asked
def volume_figures(measure: str) -> tuple[str, ...]:
    """Return the figures whose sum is the number of contacts a value of ``measure`` rests on (a
    threshold's ``min_volume`` gate): the feedback responses for CSAT, the surveys sent for the
    response rate, the resolved contacts for
    resolution times and the reopen rate, the offered ones for counts, else those that left the
    queue (answered + abandoned)."""
    if measure == "csat":
        return ("feedback",)
    if measure == "response_rate":
        return ("surveys",)
    if measure == "next_reply_in_target":
        return ("next_replies",)
    if measure.startswith("resolution") or measure == "reopen_rate":
        return ("resolved",)
    if measure in ("offered", "escalations", "transfers", "lost"):
        return ("offered",)
    return ("answered", "abandoned")


def volume(measure: str, figures: Mapping[str, float | None]) -> float:
    """Return the number of contacts the value of ``measure`` in ``figures`` rests on."""
    # A loop of floats, not ``sum`` of ``get``: read at every judgement.
    total = 0.0
    for name in volume_figures(measure):
        total += _count(figures, name)
    return total


def combine(measure: str, members: Sequence[Mapping[str, float | None]], formula: str) -> float | None:
    """Combine the value of ``measure`` over several queues' figures into one (None without data).

    Counts add up, percentiles and the longest wait take the worst queue, ratios, means and scores
    are weighted by their :func:`denominator` (an even mean when no queue has any weight). Figure
    names that are not measures (``resolved``, ``feedback``, ``surveys``: volumes) add up.
    """
    present = [(v, f) for f in members if (v := f.get(measure)) is not None]
    if not present:
        return None
    m = MEASURES.get(measure)
    how = "sum" if m is None else m.combine
    if how == "sum":
        return float(sum(v for v, _ in present))
    if how == "worst":
        values = [v for v, _ in present]
        return max(values) if bad_direction(measure) == "above" else min(values)
    weights = [(v, denominator(measure, f, formula)) for v, f in present]
    total = sum(w for _, w in weights)
    if total > 0:
        return sum(v * w for v, w in weights) / total
    return sum(v for v, _ in weights) / len(weights)


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
