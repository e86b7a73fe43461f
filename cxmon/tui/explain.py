"""Why a figure has its colour: the formula, the counts behind it, the window and the threshold."""

from __future__ import annotations

from cxmon.config import Config, Threshold
from cxmon.measures import (
    ABANDON_RATE_PARTS,
    MEASURES,
    SERVICE_LEVEL_DENOMINATORS,
    denominator,
    format_value,
    parts_text,
    volume_figures,
)
from cxmon.snapshot import SeriesFigures
from cxmon.tui.format import judge, thresholds_for
from cxmon.units import format_duration, format_window

EXPLAINED: tuple[str, ...] = ("service_level", "abandon_rate")
"""Measures worked out from counts, shown with their arithmetic."""

_VERDICT_WORD = {"breach": "✖ past breach", "warn": "▲ past warn", "ok": "✔ within bounds"}


def service_level_formula(formula: str, target: float | None = None) -> str:
    """``"answered within 20s ÷ (answered + abandoned − short abandons)"`` for a formula name."""
    within = f"answered within {format_duration(target)}" if target is not None else "answered within T"
    parts = _sl_parts(formula)
    words = parts_text(parts)
    return f"{within} ÷ ({words})" if len(parts) > 1 else f"{within} ÷ {words}"


def _sl_parts(formula: str) -> tuple[str, ...]:
    """The counts the service level of ``formula`` is over (an unknown name: the default's)."""
    return SERVICE_LEVEL_DENOMINATORS.get(formula) or SERVICE_LEVEL_DENOMINATORS["excl_short_abandons"]


def _sum_text(parts: tuple[str, ...], counts: dict[str, int]) -> tuple[str, int]:
    """``"25 + 8 − 1"`` and its total, for parts like ("answered", "+abandoned", "-short_abandoned")."""
    text, total = "", 0
    for part in parts:
        sign, name = (part[0], part[1:]) if part[0] in "+-" else ("+", part)
        value = counts[name]
        total += value if sign == "+" else -value
        text += (f" {'+' if sign == '+' else '−'} " if text else "") + str(value)
    return text, total


def _counts(series: SeriesFigures, window: float) -> dict[str, int] | None:
    figures = series.windows.get(window)
    if figures is None:
        return None
    out = {}
    for name in ("offered", "answered", "abandoned", "short_abandoned"):
        value = figures.get(name)
        out[name] = int(value) if value is not None else 0
    return out


def arithmetic(series: SeriesFigures, measure: str, window: float, formula: str) -> str:
    """The measure worked out from the window's counts: ``"= 10 ÷ (25 + 8 − 1) = 10 ÷ 32 = 31%"``.

    "Answered within T" is not kept as a figure of its own; it is the service level times its
    denominator, which is a whole number of contacts.
    """
    counts = _counts(series, window)
    value = series.value(measure, window) if window in series.windows else None
    if counts is None or value is None:
        return "= — (no contacts left the queue in this window)"
    # The total is the one every consumer divides by (cxmon.measures); the parts are for reading.
    den = round(denominator(measure, series.windows[window], formula))
    if measure == "service_level":
        parts = _sl_parts(formula)
        den_text, _ = _sum_text(parts, counts)
        within = round(value * den)
        shown = f"({den_text})" if len(parts) > 1 else den_text
        return f"= {within} ÷ {shown} = {within} ÷ {den} = {format_value(measure, value)}"
    numerator, over = ABANDON_RATE_PARTS
    den_text, _ = _sum_text(over, counts)
    num_text, num = _sum_text(numerator, counts)
    return f"= ({num_text}) ÷ ({den_text}) = {num} ÷ {den} = {format_value(measure, value)}"


_VOLUME_NOUNS = {
    "feedback": ("survey answer", "survey answers"),
    "surveys": ("survey sent", "surveys sent"),
    "next_replies": ("next reply", "next replies"),
    "resolved": ("resolved contact", "resolved contacts"),
}
"""What a threshold's ``min_volume`` counts, by the figure it sums (the rest count contacts)."""


def threshold_words(th: Threshold) -> str:
    """``"pot hole below 80% for 2m (warn below 85%, clears back past 83%, judged only with at least
    10 contacts)"``."""
    side = "above" if th.direction == "above" else "below"
    extra = []
    if th.warn is not None:
        extra.append(f"warn {side} {format_value(th.measure, th.warn)}")
    extra.append(f"clears back past {format_value(th.measure, th.clear)}")
    if th.min_volume:
        # A gate, not a count of what the figure rests on now: "judged from 5 contacts" read as if
        # five had been seen.
        one, many = _VOLUME_NOUNS.get(volume_figures(th.measure)[0], ("contact", "contacts"))
        extra.append(f"judged only with at least {th.min_volume} {one if th.min_volume == 1 else many}")
    where = f" on {th.channel}" if th.channel != "*" else ""
    lasting = f" for {format_duration(th.for_)}" if th.for_ > 0 else ""
    return f"pot hole {side} {format_value(th.measure, th.breach)}{lasting}{where} ({', '.join(extra)})"


def explain(series: SeriesFigures, config: Config, formula: str) -> list[str]:
    """Lines explaining each figure the step's thresholds judge on this series, worst first.

    Args:
        series: the series drilled into.
        config: for the step's thresholds and service-level target.
        formula: the service-level formula in use (``Snapshot.service_level_formula``).

    Returns:
        For each judged measure: what it is over its window (the formula for service level and
        abandon rate, with the counts behind it), then the threshold and the verdict.
    """
    try:
        step = config.step(series.step)
    except KeyError:
        return []
    judged: list[tuple[int, list[str]]] = []
    rank = {"breach": 0, "warn": 1, "ok": 2}
    for th in step.thresholds:
        if th not in thresholds_for(config, series.step, th.measure, series.channel):
            continue
        label = MEASURES[th.measure].label
        windowed = MEASURES[th.measure].windowed
        value = series.value(th.measure, th.window)
        verdict = judge(value, [th])
        over = f" over {format_window(th.window)}" if windowed else " now"
        if th.measure == "service_level":
            head = f"{label}{over} = {service_level_formula(formula, step.service_level_target)}"
            lines = [head, " " * (len(label + over) + 1) + arithmetic(series, th.measure, th.window, formula)]
        elif th.measure == "abandon_rate":
            numerator, over_what = ABANDON_RATE_PARTS
            head = f"{label}{over} = ({parts_text(numerator)}) ÷ ({parts_text(over_what)})"
            lines = [head, " " * (len(label + over) + 1) + arithmetic(series, th.measure, th.window, formula)]
        else:
            lines = [f"{label}{over} = {format_value(th.measure, value)}"]
        lines.append(f"  {_VERDICT_WORD[verdict]}: {threshold_words(th)}")
        judged.append((rank[verdict], lines))
    judged.sort(key=lambda item: item[0])
    return [line for _, lines in judged for line in lines]


def exits_note(series: SeriesFigures) -> str:
    """Why answered + abandoned can exceed offered, when it does in some window ("" otherwise)."""
    for window in sorted(series.windows):
        figures = series.windows[window]
        offered = int(figures.get("offered") or 0)
        left = int((figures.get("answered") or 0) + (figures.get("abandoned") or 0))
        if left > offered:
            return (
                f"In {format_window(window)}, {left} left the queue (answered + abandoned) but "
                f"{offered} arrived (offered): offered counts arrivals in the window, answered and "
                f"abandoned count exits, "
                f"so contacts that arrived before the window are counted when they leave in it."
            )
    return ""
