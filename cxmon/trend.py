"""The straight-line trend of a threshold's measure: its slope, whether it stands out of its noise, and
when it can next change."""

from __future__ import annotations

import math
from collections import deque
from functools import lru_cache

from cxmon.config import Threshold
from cxmon.measures import MEASURES
from cxmon.noise import fit, slope_noise, t_quantile

TREND_SPAN = 300.0
"""Seconds of history the trend is fitted over."""
TREND_MIN_POINTS = 5
"""Fewest samples a slope is worked out from."""
TREND_MIN_SIGNIFICANT = 10
"""Fewest samples a trend must rest on to project a breach (with a confidence above 0)."""
TREND_SAMPLE = 10.0
"""Seconds between trend samples."""


def slope(samples: deque[tuple[float, float]], now: float) -> float | None:
    """Least-squares slope (units per second) of samples in the last TREND_SPAN seconds."""
    cutoff = now - TREND_SPAN
    pts = [p for p in samples if p[0] >= cutoff]
    n = len(pts)
    if n < TREND_MIN_POINTS or pts[-1][0] - pts[0][0] < 60.0:
        return None
    first = pts[0][1]
    if all(p[1] == first for p in pts):
        return 0.0  # flat, exactly (the sums below could leave a rounding residue)
    # One pass over the sums, with time measured from the first point (keeps them small).
    t0 = pts[0][0]
    st = sv = stt = stv = 0.0
    for t, v in pts:
        t -= t0
        st += t
        sv += v
        stt += t * t
        stv += t * v
    den = stt - st * st / n
    if den <= 0:
        return None
    return (stv - st * sv / n) / den


@lru_cache(maxsize=256)
def _critical(confidence: float, dof: int) -> float:
    return t_quantile(confidence, dof)


def towards_breach(
    samples: deque[tuple[float, float]],
    th: Threshold,
    value: float,
    now: float,
    horizon: float,
    confidence: float,
    n: float | None = None,
) -> float | None:
    """The trend's slope (units per second) when it projects a breach within ``horizon``, else None.

    With ``confidence`` above 0 the trend must rest on at least TREND_MIN_SIGNIFICANT samples and
    its slope must stand out of its noise: slope ÷ its standard error at least Student's t at that
    confidence (one-sided). The standard error is the fit's residuals', or for a share or score
    with its denominator ``n`` the one sampling alone gives it (:func:`cxmon.noise.slope_noise`)
    when that is larger: a rolling CSAT over a few dozen surveys wanders in steps that a line
    fits well.

    Args:
        samples: (time, value) trend samples of the threshold's measure.
        th: the threshold.
        value: the measure's value now.
        now: engine time.
        horizon: how far ahead a breach is looked for (``monitor.trend_horizon``).
        confidence: ``monitor.trend_confidence`` (0: every slope towards the breach projects).
        n: what ``value`` rests on (its denominator), when known.

    Returns:
        The slope, or None when the trend projects no breach within the horizon.
    """
    s = slope(samples, now)
    if s is None or s == 0:
        return None
    if not (th.worse(value + s * horizon, th.breach) and ((s > 0) == (th.direction == "above"))):
        return None
    if confidence <= 0:
        return s
    cutoff = now - TREND_SPAN
    pts = [p for p in samples if p[0] >= cutoff]
    if len(pts) < TREND_MIN_SIGNIFICANT:
        return None
    fitted = fit(pts)
    if fitted is None:
        return None
    se = fitted[1]
    if n is not None and MEASURES[th.measure].windowed:
        sampling = slope_noise(th.measure, value, n, th.window, pts[-1][0] - pts[0][0])
        if sampling is not None:
            se = max(se, sampling)
    return s if abs(fitted[0]) >= _critical(confidence, len(pts) - 2) * se else None


def trend_moves(samples: deque[tuple[float, float]], value: float, now: float) -> float:
    """When the trend of ``samples`` can next change while the value stays ``value``: never when
    every sample in its span already equals it (it stays flat); else at the next sample or when
    the oldest sample leaves the span, whichever comes first."""
    cutoff = now - TREND_SPAN
    oldest = math.inf
    flat = True
    for t, v in samples:
        if t >= cutoff:
            if v != value:
                flat = False
            if t < oldest:
                oldest = t
    if flat:
        return math.inf
    return min((now // TREND_SAMPLE + 1) * TREND_SAMPLE, oldest + TREND_SPAN)
