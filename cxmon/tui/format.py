"""Plain helpers the widgets share: state words, trend arrows, threshold judgements, time text."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from datetime import tzinfo

from cxmon.config import Config, Threshold
from cxmon.localtime import clock
from cxmon.measures import INSTANT, MEASURES, bad_direction, format_value
from cxmon.snapshot import SeriesFigures, State
from cxmon.units import format_duration, format_window

STATE_WORD: dict[State, str] = {
    State.OK: "✔ OK",
    State.WATCH: "▲ WATCH",
    State.POTHOLE: "✖ POTHOLE",
    State.STALE: "? STALE",
}
"""State told by a symbol and a word, so it reads without colour."""

MATRIX_MEASURES: tuple[str, ...] = (
    "service_level",
    "wait_p90",
    "waiting_now",
    "abandon_rate",
    "longest_wait_now",
    "escalations",
    "resolution_p50",
)
"""Columns of the step × channel matrix, most useful first: a narrow screen loses the last ones
off its right edge (← → scroll to them)."""

SHORT_TITLES: dict[str, str] = {
    "service_level": "SL",
    "wait_p90": "wait p90",
    "waiting_now": "waiting",
    "abandon_rate": "aband.",
    "longest_wait_now": "longest",
    "escalations": "esc.",
    "resolution_p50": "res. p50",
}
"""Matrix column titles on a narrow screen."""


SPARK_MEASURES: tuple[str, ...] = ("wait_p90", "service_level", "offered", "abandoned", "escalations")
"""Measures drawn as sparklines in the detail pane."""

FIGURE_MEASURES: tuple[str, ...] = (
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "service_level",
    "asa",
    "wait_p50",
    "wait_p90",
    "wait_p99",
    "abandon_rate",
    "resolution_p50",
    "resolution_p90",
    "escalations",
    "escalation_rate",
    "transfers",
    "reopen_rate",
    "csat",
    "next_reply_in_target",
)
"""Windowed measures listed in the detail pane's figures table."""

FIGURES_WHEN_PRESENT = frozenset({"next_reply_in_target"})
"""Figures listed only for a series that has them in some window (tickets answered more than once)."""


def figure_measures(series: SeriesFigures) -> tuple[str, ...]:
    """The measures of :data:`FIGURE_MEASURES` the detail pane lists for ``series``."""
    return tuple(
        m
        for m in FIGURE_MEASURES
        if m not in FIGURES_WHEN_PRESENT or any(f.get(m) is not None for f in series.windows.values())
    )


SPARK_BARS = "▁▂▃▄▅▆▇█"


def clock_text(ts: float, tz: tzinfo | None = None) -> str:
    """Format an epoch time as ``HH:MM:SS`` in ``tz`` (None: the machine's zone); "—" for no time."""
    return clock(ts, tz)


def abbreviate(label: str, width: int) -> str:
    """Shorten ``label`` to ``width`` characters: later words are cut first ("Pre-sale enq.")."""
    if len(label) <= width:
        return label
    words = label.split()
    while len(words) > 1 and len(" ".join(words)) > width:
        room = width - len(" ".join(words[:-1])) - 2  # a space and a full stop
        if room >= 3:
            return " ".join(words[:-1]) + " " + words[-1][:room] + "."
        words = words[:-1]
    text = " ".join(words)
    return text if len(text) <= width else text[: width - 1] + "."


def age_text(seconds: float | None) -> str:
    """Format a data age ("0.4s", "3m05s"), or "—" when unknown."""
    if seconds is None:
        return "—"
    return format_duration(max(0.0, seconds))


def low_is_bad(measure: str) -> bool:
    """Return whether a lower value of ``measure`` is worse (service level, CSAT…)."""
    return bad_direction(measure) == "below"


def trend_arrow(trend: float, measure: str) -> tuple[str, str]:
    """Return an arrow for a slope (units per minute) and whether that movement is "bad"/"good"/"flat".

    Args:
        trend: the slope of ``measure`` in units per minute.
        measure: the measure it belongs to (decides what counts as flat, and which way is bad).

    Returns:
        (arrow, verdict): arrow is ↑, ↓ or →; verdict is "bad", "good" or "flat".
    """
    kind = MEASURES[measure].kind if measure in MEASURES else "count"
    flat = {"ratio": 0.005, "duration": 1.0, "score": 0.02}.get(kind, 0.5)
    if abs(trend) < flat:
        return "→", "flat"
    rising = trend > 0
    bad = rising != low_is_bad(measure)
    return ("↑" if rising else "↓"), ("bad" if bad else "good")


def thresholds_for(config: Config, step: str, measure: str, channel: str) -> list[Threshold]:
    """Return the thresholds of ``step`` on ``measure`` that apply to series on ``channel``."""
    try:
        step_cfg = config.step(step)
    except KeyError:
        return []
    return [
        th for th in step_cfg.thresholds if th.measure == measure and fnmatch.fnmatchcase(channel, th.channel)
    ]


def judge(value: float | None, thresholds: Iterable[Threshold]) -> str:
    """Return "breach", "warn" or "ok" for ``value`` against ``thresholds`` ("ok" when None)."""
    if value is None:
        return "ok"
    verdict = "ok"
    for th in thresholds:
        if th.worse(value, th.breach) or value == th.breach:
            return "breach"
        if th.warn is not None and (th.worse(value, th.warn) or value == th.warn):
            verdict = "warn"
    return verdict


def threshold_text(thresholds: Sequence[Threshold], window: float | None = None) -> str:
    """Describe thresholds briefly: ``"warn 45s · breach 60s (voice)"``.

    Args:
        thresholds: the thresholds to describe.
        window: the window of the figure they are shown beside; a threshold that judges another
            window names its own (``"warn 70% · breach 55% (30m)"``).

    Returns:
        The thresholds, ``"; "`` between them.
    """
    parts = []
    for th in thresholds:
        text = f"breach {format_value(th.measure, th.breach)}"
        if th.warn is not None:
            text = f"warn {format_value(th.measure, th.warn)} · " + text
        notes = [th.channel] if th.channel != "*" else []
        if window is not None and th.window != window and th.measure not in INSTANT:
            notes.append(format_window(th.window))
        if notes:
            text += f" ({', '.join(notes)})"
        parts.append(text)
    return "; ".join(parts)


def series_label(series: SeriesFigures) -> str:
    """Return ``"voice/billing"`` for a series."""
    return f"{series.channel}/{series.queue}"


def sparkline(values: Sequence[float | None], *, top: float | None = None) -> str:
    """Draw values as block characters scaled to ``top`` (the largest value when None); gaps as spaces."""
    known = [v for v in values if v is not None]
    ceiling = max([*known, top or 0.0]) if known else (top or 0.0)
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        elif ceiling <= 0:
            out.append(SPARK_BARS[0])
        else:
            index = round(v / ceiling * (len(SPARK_BARS) - 1))
            out.append(SPARK_BARS[max(0, min(len(SPARK_BARS) - 1, index))])
    return "".join(out)
