"""What is usual for one measure of one series at this hour of the week, as a snapshot carries it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class UsualFigure:
    """A ready hour-of-week baseline of one judged measure and window of a series.

    Exported as ``cxmon_baseline_<measure's gauge>{step, channel, queue, window, percentile}``: the
    median (``percentile="50"``) and the limit a worse-than-usual value is past (``percentile`` =
    100 × ``limit_quantile``).
    """

    step: str
    channel: str
    queue: str
    measure: str
    window: float
    median: float
    limit: float
    limit_quantile: float
    """0.95 for a measure judged "above" (bad when high), 0.05 for one judged "below"."""
    weeks: int
    """Weeks of history the figures come from."""
