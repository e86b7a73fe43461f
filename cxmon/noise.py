"""How far a measured figure strays by chance: whether a value past a limit is past it beyond its noise.

A share measured over a small window (service level over 40 calls, an abandon rate, CSAT over a
dozen surveys) is often past ``warn`` in a perfectly healthy queue. :func:`beyond_noise` asks the
question a floor manager means: would a queue truly *at* the limit produce a figure this bad with a
probability under ``1 − confidence``? Shares are counts out of a denominator (binomial, summed
exactly); a score is a mean of values on a bounded scale (the Chernoff–Hoeffding bound, which holds
whatever the scores' distribution); a percentile is an order statistic, judged by how many of the
window's values are past the limit (binomial: in a series whose percentile is truly at the limit,
each value is past it with the percentile's tail share). The trend's slope is tested against its
standard error from the fit's residuals (Student's t).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

from cxmon.measures import MEASURES

SCORE_RANGE = (1.0, 5.0)
"""The scale feedback scores are on (CSAT 1–5): what a score measure's bound is worked out over."""
_TAIL_EPS = 1e-13
"""Terms smaller than this share of the sum so far end a tail's summation."""


def binomial_tail(k: int, n: int, p: float) -> float:
    """Return P(X ≤ k) for X ~ Binomial(n, p), summed term by term (no normal approximation).

    The terms are summed from ``k`` away from the mode, where they fall geometrically, so the sum
    stops after a few dozen terms whatever ``n``; a ``k`` above the mean is 1 − the other tail.

    Args:
        k: the count (successes) seen.
        n: the trials.
        p: the probability of a success.

    Returns:
        The probability of ``k`` successes or fewer.
    """
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    if k + 1 > n * p:
        return max(0.0, 1.0 - _sum_away(k + 1, n, p, +1))
    return min(1.0, _sum_away(k, n, p, -1))


def _sum_away(start: int, n: int, p: float, step: int) -> float:
    """Sum the binomial pmf from ``start`` outwards (``step`` −1: down to 0; +1: up to ``n``)."""
    log_p, log_q = math.log(p), math.log1p(-p)
    lg_n = math.lgamma(n + 1)
    j = start
    term = math.exp(lg_n - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * log_p + (n - j) * log_q)
    total = 0.0
    ratio_up = p / (1.0 - p)
    while 0 <= j <= n:
        total += term
        if term <= _TAIL_EPS * total:
            break
        if step < 0:
            # pmf(j-1) = pmf(j) · j / (n-j+1) · q/p
            term *= j / ((n - j + 1) * ratio_up)
            j -= 1
        else:
            # pmf(j+1) = pmf(j) · (n-j) / (j+1) · p/q
            term *= (n - j) / (j + 1) * ratio_up
            j += 1
    return total


def kl_bernoulli(x: float, m: float) -> float:
    """Return the Kullback–Leibler divergence of Bernoulli(x) from Bernoulli(m) (natural log)."""
    out = 0.0
    if x > 0.0:
        out += x * math.log(x / m)
    if x < 1.0:
        out += (1.0 - x) * math.log((1.0 - x) / (1.0 - m))
    return out


def score_tail(mean: float, n: float, limit: float, lo: float, hi: float) -> float:
    """Bound P(mean of ``n`` scores ≤ ``mean``) when their true mean is ``limit``, scores in [lo, hi].

    The Chernoff–Hoeffding bound exp(−n·KL(x ‖ m)) on the scale mapped to [0, 1]: it holds for any
    distribution of the scores on that range (Hoeffding 1963, theorem 1), so it needs no variance.

    Returns:
        The bound (1 when ``mean`` is not below ``limit``).
    """
    span = hi - lo
    if span <= 0 or n <= 0:
        return 1.0
    x = min(1.0, max(0.0, (mean - lo) / span))
    m = min(1.0, max(0.0, (limit - lo) / span))
    if x >= m:
        return 1.0
    if m >= 1.0:
        return 0.0
    return math.exp(-n * kl_bernoulli(x, m))


def chance_of(measure: str, direction: str, value: float, n: float, limit: float) -> float | None:
    """How likely a figure as bad as ``value`` is from a series truly at ``limit`` (None: no model).

    Args:
        measure: a share measure (``ratio`` kind: counts out of ``n``) or a score (a mean of ``n``).
        direction: which side of ``limit`` is bad ("above" or "below").
        value: the measured figure.
        n: what it is over (its denominator: contacts, surveys).
        limit: the limit it is compared with.

    Returns:
        The one-sided probability, or None for measures without a noise model (counts, durations)
        or without a denominator.
    """
    kind = MEASURES[measure].kind if measure in MEASURES else ""
    if n <= 0 or kind not in ("ratio", "score"):
        return None
    if kind == "score":
        lo, hi = SCORE_RANGE
        if direction == "above":
            return score_tail(hi + lo - value, n, hi + lo - limit, lo, hi)
        return score_tail(value, n, limit, lo, hi)
    trials = round(n)
    k = min(trials, max(0, round(value * n)))
    if direction == "above":
        return binomial_tail(trials - k, trials, 1.0 - limit)
    return binomial_tail(k, trials, limit)


def quantile_chance(quantile: float, direction: str, past: int, n: int) -> float:
    """How likely ``past`` or more of ``n`` values past a limit are, when the series' ``quantile``
    is truly at that limit.

    A wait p90 truly at 60 s means each wait is over 60 s with probability 0.1, so the number of
    the window's waits past it is Binomial(n, 0.1): two of 11 past it (a p90 just over the line)
    is what such a queue shows 30 % of the time, five of 15 about 1 % of the time.

    Args:
        quantile: the percentile's quantile (0.9 for a p90).
        direction: which side of the limit is bad ("above": values over it; "below": under it).
        past: how many of the values are past the limit on the bad side.
        n: how many values there are.

    Returns:
        The one-sided probability (1 with no values).
    """
    if n <= 0 or past <= 0:
        return 1.0
    tail = 1.0 - quantile if direction == "above" else quantile
    return 1.0 - binomial_tail(past - 1, n, tail)


def beyond_noise(
    measure: str, direction: str, value: float, n: float | None, limit: float, confidence: float
) -> bool:
    """Whether ``value`` is past ``limit`` beyond its noise at ``confidence``.

    True when a series truly at the limit would show a figure this bad with a probability under
    ``1 − confidence``; also True for measures without a noise model, without a denominator, or
    with ``confidence`` 0 (then a value past the limit is simply past it).
    """
    if confidence <= 0.0 or n is None:
        return True
    chance = chance_of(measure, direction, value, n, limit)
    return chance is None or chance < 1.0 - confidence


def standard_error(measure: str, value: float, n: float) -> float | None:
    """The sampling noise (standard error) of a share or score measured over ``n`` (None: no model).

    A share's is the binomial sqrt(p(1 − p)/n), with p taken as (k + 1)/(n + 2) so that 0 % or
    100 % over a few contacts is not called exact; a score's the largest any distribution on
    SCORE_RANGE with its mean can have (all scores at the ends of the scale), the same way.
    """
    kind = MEASURES[measure].kind if measure in MEASURES else ""
    if n <= 0 or kind not in ("ratio", "score"):
        return None
    lo, hi = SCORE_RANGE if kind == "score" else (0.0, 1.0)
    share = min(1.0, max(0.0, (value - lo) / (hi - lo)))
    smoothed = (share * n + 1.0) / (n + 2.0)
    return (hi - lo) * math.sqrt(smoothed * (1.0 - smoothed) / n)


def slope_noise(measure: str, value: float, n: float, window: float, span: float) -> float | None:
    """The standard error a trend's slope has from sampling alone, over ``span`` seconds of a
    rolling ``window`` (None: no model for the measure).

    Two values of a rolling window ``span`` apart share all but ``span`` of their contacts, so their
    difference has variance 2σ²·min(span, window)/window (σ: :func:`standard_error`): the value
    wanders like a random walk with that variance per ``span``, and the least-squares slope of a
    random walk over a span T has variance 6/5 of its variance per unit time over T. A line
    fitted through values that wander by chance has residuals that look small (each value is
    close to the one before), so the residuals alone would call a chance drift a trend.
    """
    se = standard_error(measure, value, n)
    if se is None or span <= 0 or window <= 0:
        return None
    per_second = 2.0 * se * se * min(span, window) / window / span
    return math.sqrt(1.2 * per_second / span)


def t_quantile(q: float, dof: int) -> float:
    """Return the ``q`` quantile of Student's t with ``dof`` degrees of freedom.

    Cornish–Fisher expansion in 1/dof around the normal quantile (Abramowitz & Stegun 26.7.5);
    within 0.01 of the tables from 3 degrees of freedom up at the 80–99 % quantiles.
    """
    z = NormalDist().inv_cdf(q)
    if dof <= 0:
        return math.inf
    g1 = (z**3 + z) / 4.0
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96.0
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384.0
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160.0
    return z + g1 / dof + g2 / dof**2 + g3 / dof**3 + g4 / dof**4


def fit(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """Least-squares slope of ``points`` and its standard error from the fit's residuals.

    Returns:
        (slope, standard error), or None with fewer than 3 points or no spread in time. A line
        through every point has a standard error of 0.
    """
    n = len(points)
    if n < 3:
        return None
    t0 = points[0][0]
    mt = sum(t - t0 for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    sxx = sxy = syy = 0.0
    for t, v in points:
        dt, dv = t - t0 - mt, v - mv
        sxx += dt * dt
        sxy += dt * dv
        syy += dv * dv
    if sxx <= 0:
        return None
    s = sxy / sxx
    ssr = max(0.0, syy - s * sxy)
    return s, math.sqrt(ssr / (n - 2) / sxx)


def window_breach_outlook(
    share: float, outcomes: float, dispersion: float, line: float, direction: str, window: float
) -> tuple[float, float]:
    """How likely a sliding window's share is to be past ``line``: at any one moment, and how fast
    the chance that it has been grows with the time looked ahead (per second).

    The contacts to come meet the mark each with probability ``share`` (the model's); a window of
    ``window`` seconds counts ``outcomes`` of them, and its share strays about ``share`` with the
    variance ``dispersion`` · share · (1 − share) ÷ outcomes (waits are correlated, so a window holds
    fewer independent outcomes than contacts). Taken as a Gaussian process whose correlation falls
    as 1 − lag ÷ window (a moving window's), the chance that it is past the line at some moment in
    [0, h] is about Φ̄(u) + (h ÷ window) · u · φ(u), u the line's distance in standard errors: the
    chance at the start, and the first crossings after it (Pickands' constant for this correlation
    is 1). :func:`window_breach_chance` sums them; the tests hold it to a brute-force simulation of a
    window of clustered Poisson outcomes. With a few outcomes a window and a chance of a few per
    cent it runs low (the share's tail is skewed there, not Gaussian).

    Args:
        share: the model's share of contacts on the good side (answered within target for a
            service level; abandoning for an abandon rate).
        outcomes: the contacts a window counts (its expected denominator).
        dispersion: the share's variance over the binomial one.
        line: the breach.
        direction: "below" (bad when the share is low) or "above".
        window: the window's length, seconds.

    Returns:
        (the chance at any one moment, its growth per second): (1, 0) when ``share`` itself is past
        the line, (0, 0) when ``outcomes`` is not above 0 or ``share`` is certain.
    """
    if outcomes <= 0.0:
        return 0.0, 0.0
    bad = share < line if direction == "below" else share > line
    if bad or share == line:
        return 1.0, 0.0
    if not 0.0 < share < 1.0:
        return 0.0, 0.0
    u = abs(share - line) / math.sqrt(dispersion * share * (1.0 - share) / outcomes)
    return _NORMAL.cdf(-u), u * _NORMAL.pdf(u) / window


def window_breach_chance(start: float, growth: float, horizon: float) -> float:
    """The chance of a breach at some moment within ``horizon`` seconds, from
    :func:`window_breach_outlook`'s (``start``, ``growth``): at most 1."""
    return min(1.0, start + growth * max(0.0, horizon))


def chance_reached(start: float, growth: float, level: float) -> float | None:
    """How far ahead (seconds) :func:`window_breach_chance` reaches ``level``: 0 when it does at the
    start; None when it never does."""
    if start >= level:
        return 0.0
    if growth <= 0.0:
        return None
    return (level - start) / growth


_NORMAL = NormalDist()
