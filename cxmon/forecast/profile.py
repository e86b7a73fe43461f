"""Arrival profiles: the usual shape of a queue's arrivals over the day, learned from the stored events.

Arrivals swing through the day (a busy morning, a lull at lunch, a peak on the hour). Judged against
a flat usual rate, the top of a swing looks like a surge and the start of a real surge in a lull looks
like nothing; judged against the day's shape, only what departs from the shape stands out. The shape is
what a workforce-management forecast gives per interval: here it is learned from the history cxmon
stored, per queue (channel and queue), as the mean arrivals in each interval of the day (UTC) over the
days of the last ``profile_days`` that had arrivals in that queue, smoothed over the neighbouring
intervals that had arrivals and scaled to a mean of 1 over the day. A queue gets a profile once
``profile_min_days`` such days are stored, with MIN_PER_INTERVAL arrivals per interval (cold start,
or a queue of a few contacts an hour: none, and the rise tests judge against a flat rate, as without
history).

The rise tests (:mod:`cxmon.forecast.change`) then count time in "usual arrivals": the exposure of a
span is the integral of the shape over it, so a rate measured over a span is a *level* (the rate at a
shape of 1), and a level times the shape at a moment is the rate expected then.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

DAY = 86400.0
MIN_PER_INTERVAL = 50.0
"""Arrivals a queue's history needs per interval (on average over the intervals that had any) before
it has a profile: with fewer, each interval's weight is mostly Poisson noise (a tenth or more of it),
and a queue fed a few calls an hour (an escalation desk) would be judged against that noise."""
FLOOR = 0.05
"""The lowest weight of an interval, as a share of the day's mean: an interval that had no arrivals in
the history may have some now, and a weight of 0 would make one arrival an infinite rise."""


@dataclass(frozen=True, slots=True)
class Profile:
    """One queue's arrival shape over the day: a weight per interval, mean 1."""

    interval: float
    """Seconds per interval (a divisor of a day)."""
    weights: tuple[float, ...]
    """Weight of each interval of the day from 00:00 UTC: its usual arrival rate over the day's mean."""
    days: int
    """Days of history it was learned from."""
    cumulative: tuple[float, ...]
    """Exposure from 00:00 to the start of each interval (and to the end of the day, last)."""

    @classmethod
    def of(cls, interval: float, weights: tuple[float, ...], days: int) -> Profile:
        """A profile of ``weights`` (one per interval of the day), with its running exposure."""
        total = 0.0
        cumulative = [0.0]
        for w in weights:
            total += w * interval
            cumulative.append(total)
        return cls(interval, weights, days, tuple(cumulative))

    def weight(self, t: float) -> float:
        """The shape at engine time ``t`` (seconds since the epoch)."""
        return self.weights[int((t % DAY) // self.interval)]

    def exposure(self, t: float) -> float:
        """The shape's integral from the epoch to ``t``: a span's exposure is the difference at its ends."""
        days, into = divmod(t, DAY)
        k = int(into // self.interval)
        return days * self.cumulative[-1] + self.cumulative[k] + self.weights[k] * (into - k * self.interval)


def learn(
    counts: Mapping[int, Mapping[int, int]], interval: float, min_days: int
) -> tuple[tuple[float, ...], int] | None:
    """The weights of one queue's profile from its arrivals per day and interval, or None (too few days).

    Args:
        counts: day number → interval of the day → arrivals (days without arrivals left out).
        interval: seconds per interval.
        min_days: days with arrivals needed.

    Returns:
        The weights (mean 1 over the day) and the days they rest on; None with fewer than
        ``min_days`` days or MIN_PER_INTERVAL arrivals per interval.
    """
    days = len(counts)
    if days < min_days:
        return None
    n = round(DAY / interval)
    sums = [0.0] * n
    for slots in counts.values():
        for k, c in slots.items():
            sums[k] += c
    open_intervals = sum(1 for x in sums if x > 0)
    if not open_intervals or sum(sums) / open_intervals < MIN_PER_INTERVAL:
        return None
    # Each interval with its neighbours (¼, ½, ¼, around the day): a day's worth of history puts
    # few arrivals in one short interval, and a shape changes little from one to the next. A
    # neighbour without arrivals is left out: the first interval after the doors open is as busy
    # as the next, not half as busy as the closed one before it.
    smooth = [0.0] * n
    for k in range(n):
        if sums[k] > 0:
            total, weight = 0.5 * sums[k], 0.5
            for j in (k - 1, (k + 1) % n):
                if sums[j] > 0:
                    total += 0.25 * sums[j]
                    weight += 0.25
            smooth[k] = total / weight
    mean = sum(smooth) / n
    if mean <= 0:
        return None
    floor = FLOOR * mean
    weights = [max(s, floor) for s in smooth]
    scale = n / sum(weights)
    return tuple(w * scale for w in weights), days


def load(
    db_path: str, interval: float, days: int, min_days: int, before: float | None = None
) -> dict[tuple[str, str], Profile]:
    """Learn every queue's profile from the arrivals stored over the last ``days`` days (of the newest
    stored arrival, or before ``before``). Runs in a thread at start (sqlite3, read only).

    Args:
        db_path: the store.
        interval: seconds per interval of the day.
        days: days of history learned from.
        min_days: days with arrivals a queue needs before it has a profile.
        before: learn only from arrivals before this engine time.

    Returns:
        (channel, queue) → profile, for the queues with enough history.
    """
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error:
        return {}
    try:
        limit = math.inf if before is None else before
        newest = con.execute(
            "SELECT max(ts) FROM events WHERE kind = 'arrived' AND ts < ?", (limit,)
        ).fetchone()[0]
        if newest is None:
            return {}
        since = (newest // DAY + 1 - days) * DAY
        per_queue: dict[tuple[str, str], dict[int, dict[int, int]]] = {}
        rows = con.execute(
            "SELECT channel, queue, CAST(ts / ? AS INTEGER) AS day,"
            " CAST((ts - CAST(ts / ? AS INTEGER) * ?) / ? AS INTEGER) AS slot, count(*)"
            " FROM events WHERE kind = 'arrived' AND ts >= ? AND ts < ?"
            " GROUP BY channel, queue, day, slot",
            (DAY, DAY, DAY, interval, since, limit),
        )
        last = round(DAY / interval) - 1
        for channel, queue, day, slot, count in rows:
            slots = per_queue.setdefault((channel, queue), {}).setdefault(day, {})
            slots[min(slot, last)] = count
    except sqlite3.Error:
        return {}
    finally:
        con.close()
    out: dict[tuple[str, str], Profile] = {}
    for key, counts in per_queue.items():
        learned = learn(counts, interval, min_days)
        if learned is not None:
            out[key] = Profile.of(interval, *learned)
    return out
