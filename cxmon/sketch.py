"""A mergeable, subtractable quantile sketch with bounded relative error (DDSketch's log mapping).

Values are binned by ``ceil(log_gamma(x))``; the value reported for a bin is within ``alpha`` (relative)
of every value in it. Bins hold counts, so sketches merge by adding counts and a rolling window can
take an expired pane back out by subtracting them. Memory is bounded by the number of bins, which
depends on the range of values (about 920 bins from 1 ms to 1 year at 1 %), never on how many values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Final

ALPHA: Final = 0.01
"""Relative accuracy of every quantile."""
GAMMA: Final = (1 + ALPHA) / (1 - ALPHA)
LOG_GAMMA: Final = math.log(GAMMA)
MIN_VALUE: Final = 1e-3
"""Values below this (waits of under a millisecond) are counted in the zero bin and reported as 0."""
ZERO: Final = -(2**31)
"""Key of the zero bin; sorts before every other key."""


def bin_of(value: float) -> int:
    """Return the bin key for ``value`` (≥ 0)."""
    if value < MIN_VALUE:
        return ZERO
    return math.ceil(math.log(value) / LOG_GAMMA)


def value_of(key: int) -> float:
    """Return the value reported for bin ``key``: within ALPHA of anything in the bin."""
    value = _VALUES.get(key)
    if value is None:
        value = 0.0 if key == ZERO else 2.0 * GAMMA**key / (GAMMA + 1.0)
        if len(_VALUES) < _VALUES_KEPT:
            _VALUES[key] = value
    return value


_VALUES: Final[dict[int, float]] = {}
"""Bin key → its value, as :func:`value_of` worked it out (every percentile of every window
reads a few): the few thousand bins of any range of values seen in practice."""
_VALUES_KEPT: Final = 10_000


def quantiles(bins: dict[int, int], qs: Iterable[float]) -> list[float | None]:
    """Return the values at quantiles ``qs`` (each 0 ≤ q ≤ 1) of a bin → count mapping.

    The rank convention is the element at index ``floor(q * (n - 1))`` of the sorted values, so a
    reference computed from the raw values is ``sorted(v)[int(q * (len(v) - 1))]``.

    Args:
        bins: bin key → count (every count positive, as add and merge_into keep them).
        qs: quantiles, in increasing order.

    Returns:
        One value per quantile, or None for every quantile when the sketch is empty.
    """
    # The keys as the objects the dict holds: compiled, an int key would be unboxed and boxed
    # again for every lookup below.
    keys: list[Any] = sorted(bins)
    if not keys:
        return [None for _ in qs]
    n = sum(bins.values())
    # The element of rank r sits in the first bin whose cumulative count exceeds r; the ranks
    # grow with the quantiles, so one walk up the bins finds them all.
    out: list[float | None] = []
    last = len(keys) - 1
    i = 0
    cum = bins[keys[0]]
    for q in qs:
        rank = int(q * (n - 1))
        while cum <= rank and i < last:
            i += 1
            cum += bins[keys[i]]
        out.append(value_of(keys[i]))
    return out


class Memo:
    """The last quantiles worked out for one sketch (a window's), given again while its bins are
    the same: a window's figures are worked out again after every change, and most changes (a
    pane of arrivals leaving it) leave its waits as they were."""

    __slots__ = ("_bins", "_qs", "_values")

    def __init__(self) -> None:
        self._bins: dict[int, int] | None = None
        self._qs: tuple[float, ...] = ()
        self._values: list[float | None] = []

    def quantiles(
        self, bins: dict[int, int], qs: tuple[float, ...], kept: bool = False
    ) -> list[float | None]:
        """:func:`quantiles` of ``bins`` (the list returned must not be changed); ``kept``: nobody
        changes ``bins`` afterwards (a total made for this reading), so it is kept as it is."""
        if qs == self._qs and bins == self._bins:
            return self._values
        self._bins, self._qs = bins if kept else dict(bins), qs
        self._values = quantiles(bins, qs)
        return self._values


def add(bins: dict[int, int], value: float, count: int = 1) -> None:
    """Count ``value`` in ``bins``."""
    key = bin_of(value)
    bins[key] = bins.get(key, 0) + count


def merge_into(target: dict[int, int], other: Mapping[int, int], sign: int = 1) -> None:
    """Add (``sign`` = 1) or subtract (``sign`` = -1) ``other``'s counts into ``target``."""
    for key, count in other.items():
        left = target.get(key, 0) + sign * count
        if left:
            target[key] = left
        else:
            target.pop(key, None)
