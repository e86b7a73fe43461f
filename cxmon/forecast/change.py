"""A rise in a queue's arrival rate: told from Poisson noise against the usual rate, and the rate since.

Two questions, asked apart. Has the rate changed? For a candidate change point τ, the arrivals in the
hour before τ (or the two hours, where their rate is the higher) and those since are two Poisson
counts; the log-likelihood ratio of "a rate of its own since τ" against "one rate throughout" (the
two-sample Poisson generalised likelihood ratio) says how far the counts since τ are from what the
span before would give. The highest over the candidate
change points, past a threshold set for a rare false detection, is a rise. And if so, to what? The
rate since that change point: what the queue will face while it lasts (a bound on "how low could the
rate be" over a fixed span answers another question, and for a surge just past what the agents can
take it stays below the breach until the queue has broken).

A narrower question, for a queue whose breaking rate is known (the arrival rate at which its agents,
handle time and patience put a threshold at its breach): are the arrivals now at that rate rather
than the usual one? Against that one alternative the log-likelihood ratio of the arrivals since a
change point, n·log(λ*/λ₀) − (λ* − λ₀)·t, maximised over the change points, is Page's CUSUM, the
quickest test of a change to exactly that rate (Lorden): :func:`breaking`.

Given the queue's arrival profile (its usual shape of the day, :mod:`cxmon.forecast.profile`), both
tests count time in usual arrivals: a span's exposure (the shape's integral over it) stands for its
seconds, so the top of the day's swing is no rise and a surge in a lull is one.

Computed afresh from a series' sampled running totals at each forecast (one walk of the candidate change
points serves both tests): it keeps no state of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, cast

from cxmon.forecast.profile import Profile

SCORE = 14.0
"""Log-likelihood ratio a rise needs (``[forecast] rise_score``). Under one steady Poisson rate a
single candidate change point passes it about once in 10⁷ (the one-sided tail of √(2·SCORE)
standard errors), but arrivals are not that steady: they swing through the day and come in bursts,
and a forecast looks at a few dozen overlapping candidates every RECOMPUTE_EVERY. Lower thresholds
were measured on the simulator (see README, Warning lead benchmark): each step down warns surges
sooner and raises more false alarms."""
SHORTEST: Final = 300.0
"""Seconds since the change point a rise needs at least: a burst of a few minutes is no rise."""
LONGEST: Final = 1800.0
"""Seconds back the change point is looked for."""
EVERY: Final = 60.0
"""Seconds between candidate change points."""
BEFORE: Final = 3600.0
"""Seconds before the change point its usual rate is counted over..."""
BEFORE_LONG: Final = 7200.0
"""... or these, where that gives the higher rate: a lull in the hour before (a quarter of an hour at
a third of the rate happens by chance in a working day) would make the return to the usual rate
look like a rise, and two hours dilute it; a morning's climb makes the last hour the higher."""
LEAST_BEFORE: Final = 1800.0
"""... at least this much of it (a younger series has no usual rate to rise from)."""
BREAKING_SCORE = 10.0
"""Log-likelihood ratio the arrivals since a change point need, at the queue's breaking rate against
the usual one, before the forecast projects at the rate since (``[forecast] breaking_score``; 0: not
asked). Set on the warning-lead benchmark's quiet runs (README): 12 warns surges later, 8 raises
about twice the false alarms."""
BREAKING_TOLERANCE = 0.05
"""The usual rate the breaking rate is tested against is the one before the change point (see BEFORE), this
share higher (``[forecast] breaking_tolerance``): arrivals swing within an hour, and the top of a
swing after a lull is no change."""


@dataclass(frozen=True, slots=True)
class Rise:
    """Arrivals that rose above their usual rate at a change point."""

    since: float
    """Engine time of the change point."""
    rate: float
    """Arrivals per second since then."""
    usual: float
    """Arrivals per second over the span before it."""
    score: float
    """Log-likelihood ratio of the rise against one rate throughout."""
    count: int
    """Arrivals since the change point."""
    breaking: float = 0.0
    """The queue's breaking rate (arrivals per second) it was tested against (:func:`breaking`); 0
    for a rise found by :func:`rise`."""

    @property
    def factor(self) -> float:
        """The rate since the change point over the usual one."""
        return self.rate / self.usual if self.usual > 0 else math.inf


def score(after: float, t_after: float, before: float, t_before: float) -> float:
    """Log-likelihood ratio of two Poisson rates (``after`` arrivals in ``t_after`` seconds, ``before``
    in ``t_before``) against one rate for both; 0 unless the rate after is the higher.

    Args:
        after: arrivals counted since the change point.
        t_after: seconds since the change point.
        before: arrivals counted over the span before it.
        t_before: that span, seconds.
    """
    if t_after <= 0 or t_before <= 0 or after * t_before <= before * t_after:
        return 0.0
    total = after + before
    return (
        _xlogy(after, after / t_after)
        + _xlogy(before, before / t_before)
        - _xlogy(total, total / (t_after + t_before))
    )


def _xlogy(x: float, y: float) -> float:
    return x * math.log(y) if x > 0 else 0.0


Point = Sequence[float]
"""A sample of running totals: its time first, then the counts, ints (see cxmon.forecast.live.Sample):
compiled, :func:`candidates` reads the arrivals' count as an int and refuses a float."""


Row = tuple[float, ...]
"""A sample as :func:`candidates` reads it: a tuple, its time first."""


Span = tuple[float, float, float, float, float]
"""A candidate change point: (its time, arrivals since, seconds since, arrivals over the span before
it, that span's seconds), or with a profile the spans' exposures in place of their seconds."""


def candidates(
    samples: Sequence[Point], now: float, count: int, column: int, profile: Profile | None = None
) -> list[Span]:
    """Each candidate change point, newest first, with the spans after and before it (:data:`Span`);
    with a ``profile`` the spans' exposures (their seconds weighted by the usual shape of the day)
    stand in place of their seconds.

    Candidates are the newest samples at least SHORTEST, SHORTEST + EVERY, … LONGEST seconds before
    ``now``, each with the BEFORE seconds before it (at least LEAST_BEFORE of history), or the
    BEFORE_LONG seconds where their rate is the higher (with a profile, the BEFORE_LONG seconds
    where there are that many). :func:`rise` and :func:`breaking` both read them: worked out once,
    they can be given to both (their ``spans``).

    Args:
        samples: running totals in time order, each with its time at index 0.
        now: engine time of ``count``.
        count: the running count of arrivals at ``now``.
        column: where each sample holds that running count (an int).
        profile: the queue's usual shape of the day, if it has one.
    """
    found: list[Span] = []
    if not samples:
        return found
    # Read by index, a list's items are had directly (any other sequence by the generic protocol),
    # and a tuple's too: compiled, a Sequence's item is looked up through the generic protocol
    # with its index boxed, most of the walk's work. Samples are tuples (cxmon.forecast.live.Sample).
    rows: list[Row] = cast("list[Row]", samples if isinstance(samples, list) else list(samples))
    first = rows[0][0]
    if now - first < LEAST_BEFORE + SHORTEST:
        return found
    e_now = 0.0 if profile is None else profile.exposure(now)
    # Both ends move back in time from one candidate to the next: walk them, no search per candidate.
    i = upto(rows, now - SHORTEST) - 1
    j = k = -1
    lag = SHORTEST
    while lag <= LONGEST and i >= 0:
        due = now - lag
        while i > 0 and rows[i][0] > due:
            i -= 1
        at = rows[i]
        start = at[0]
        if start > due or start - first < LEAST_BEFORE:
            return found
        lag = now - start + EVERY
        j = _back_to(rows, j, start - BEFORE)
        base = rows[j]
        # The running counts are ints: read as such (compiled, an int read as a float is converted
        # through the generic protocol) and subtracted exactly, as their floats were.
        arrived = cast("tuple[int, ...]", at)[column]
        before = float(arrived - cast("tuple[int, ...]", base)[column])
        k = _back_to(rows, k, start - BEFORE_LONG)
        base_long = rows[k]
        if profile is None:
            t_after = now - start
            t_before = start - base[0]
            t_long = start - base_long[0]
        else:
            e_start = profile.exposure(start)
            t_after = e_now - e_start
            t_before = e_start - profile.exposure(base[0])
            t_long = e_start - profile.exposure(base_long[0])
        # Against a profile, the swing and the morning's climb are in the shape: the two hours are
        # the surer measure of the level, lull or not.
        before_long = float(arrived - cast("tuple[int, ...]", base_long)[column])
        if t_long > t_before and (profile is not None or before_long * t_before > before * t_long):
            before, t_before = before_long, t_long
        if t_before > 0:
            found.append((start, float(count - arrived), t_after, before, t_before))
    return found


def upto(rows: list[Row], when: float) -> int:
    """How many of ``rows`` (in time order) are at or before ``when``: ``bisect_right`` by their
    time, written out (compiled, a search with a key function calls the key and compares through
    the generic protocol at every step)."""
    low, high = 0, len(rows)
    while low < high:
        middle = (low + high) // 2
        if when < rows[middle][0]:
            high = middle
        else:
            low = middle + 1
    return low


def _back_to(rows: list[Row], index: int, when: float) -> int:
    """The newest sample at or before ``when`` (else the oldest), walking back from ``index``, or
    searched for where ``index`` is -1 (the first candidate)."""
    if index < 0:
        return max(0, upto(rows, when) - 1)
    while index > 0 and rows[index][0] > when:
        index -= 1
    return index


def rise(
    samples: Sequence[Point],
    now: float,
    count: int,
    column: int,
    threshold: float = SCORE,
    profile: Profile | None = None,
    spans: Sequence[Span] | None = None,
) -> Rise | None:
    """The rise of the arrivals in ``samples`` (in time order) that stands out most, or None.

    Each candidate change point (see :func:`candidates`) is scored against the span before it
    (:func:`score`).

    Args:
        samples: running totals in time order, each with its time at index 0.
        now: engine time of ``count``.
        count: the running count of arrivals at ``now``.
        column: where each sample holds that running count.
        threshold: the log-likelihood ratio a rise needs.
        profile: the queue's usual shape of the day (:mod:`cxmon.forecast.profile`): spans are
            weighed by it, and the rates of the rise are the ones it expects at ``now``.
        spans: :func:`candidates` of these arguments, where they were worked out already.
    """
    best: Rise | None = None
    best_score = threshold
    shape = 1.0 if profile is None else profile.weight(now)
    if spans is None:
        spans = candidates(samples, now, count, column, profile)
    for start, after, t_after, before, t_before in spans:
        # The score is at most the one-sample ratio against the rate before, which is at most
        # (after − expected)² ÷ 2·expected: most candidates fall short of that, with no logarithm.
        expected = before * t_after / t_before
        if after <= expected:
            continue
        gap = after - expected
        if expected > 0 and gap * gap < 2.0 * expected * best_score:
            continue
        s = score(after, t_after, before, t_before)
        if s >= best_score:
            best_score = s
            best = Rise(start, after / t_after * shape, before / t_before * shape, s, int(after))
    return best


def breaking_score(after: float, t_after: float, usual: float, breaking: float) -> float:
    """Log-likelihood ratio of ``after`` arrivals in ``t_after`` seconds at the ``breaking`` rate
    against the ``usual`` one (both per second, breaking above usual).

    Args:
        after: arrivals counted since the change point.
        t_after: seconds since the change point.
        usual: the rate of no change.
        breaking: the rate tested for.
    """
    return after * math.log(breaking / usual) - (breaking - usual) * t_after


def breaking(
    samples: Sequence[Point],
    now: float,
    count: int,
    column: int,
    breaking_rate: Callable[[], float | None],
    threshold: float,
    tolerance: float = BREAKING_TOLERANCE,
    profile: Profile | None = None,
    spans: Sequence[Span] | None = None,
) -> Rise | None:
    """The change point since which the arrivals in ``samples`` run at the queue's breaking rate
    rather than the usual one with the surest evidence, or None.

    For each candidate change point (see :func:`candidates`) the usual rate is the one over the
    span before it, ``tolerance`` higher, and its score is :func:`breaking_score`. The
    rate since the best one may be a little under the breaking rate (the evidence says it is
    nearer that than the usual one): it is what the forecast projects at, and the chance of a
    breach there (:attr:`cxmon.forecast.breach.Projection.chance`) says what it risks. The
    breaking rate is asked for (``breaking_rate()``, a search of the queueing model) only when some
    candidate could pass: the score is at most the one-sample likelihood ratio at the rate since,
    which is at most (after − expected)² ÷ 2·expected.

    Args:
        samples: running totals in time order, each with its time at index 0.
        now: engine time of ``count``.
        count: the running count of arrivals at ``now``.
        column: where each sample holds that running count.
        breaking_rate: gives the lowest arrival rate (per second) at which the queue breaches, or
            None when no rate does; called at most once.
        threshold: the log-likelihood ratio the arrivals since the change point need.
        tolerance: how much above the hour's rate the usual one is taken to be.
        profile: the queue's usual shape of the day: spans are weighed by it (see :func:`rise`),
            and the breaking rate is taken as the level the shape reaches it at ``now``.
        spans: :func:`candidates` of these arguments, where they were worked out already.
    """
    if threshold <= 0:
        return None
    best: Rise | None = None
    best_score = threshold
    known: float | None = None
    shape = 1.0 if profile is None else profile.weight(now)
    if spans is None:
        spans = candidates(samples, now, count, column, profile)
    for start, after, t_after, before, t_before in spans:
        usual = (1.0 + tolerance) * before / t_before
        expected = usual * t_after
        if after <= expected:
            continue
        gap = after - expected
        if expected > 0 and gap * gap < 2.0 * expected * best_score:
            continue
        if known is None:
            known = breaking_rate()
            if known is None:
                return None
        level = known / shape
        if level <= usual or usual <= 0:
            continue
        s = breaking_score(after, t_after, usual, level)
        if s >= best_score:
            best_score = s
            best = Rise(start, after / t_after * shape, before / t_before * shape, s, int(after), known)
    return best
