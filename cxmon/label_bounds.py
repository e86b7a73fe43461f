"""Label bounding: step, channel, queue and collector values kept to config's set plus ``other``.

Series that end up with the same bounded labels are merged into one exported row, so a flood of new
queue names cannot grow the number of series.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from cxmon.config import OTHER, Config, known_labels
from cxmon.measures import combine
from cxmon.snapshot import Histogram, SeriesFigures, Snapshot


class LabelBounds:
    """Maps step, channel, queue and collector values onto the bounded set from config plus ``other``."""

    def __init__(self, config: Config) -> None:
        channels, queues = known_labels(config)
        self.steps = frozenset(s.name for s in config.steps) | {OTHER}
        self.channels = channels
        self.queues = queues
        self.collectors = frozenset(c.name for c in config.collectors) | {OTHER}

    def step(self, value: str) -> str:
        """Return ``value`` if config knows the step, else ``other``."""
        return value if value in self.steps else OTHER

    def series(self, s: SeriesFigures) -> tuple[str, str, str]:
        """Return the bounded (step, channel, queue) labels of a series."""
        return (
            s.step if s.step in self.steps else OTHER,
            s.channel if s.channel in self.channels else OTHER,
            s.queue if s.queue in self.queues else OTHER,
        )

    def collector(self, value: str) -> str:
        """Return ``value`` if config names that collector, else ``other``."""
        return value if value in self.collectors else OTHER


def _merge_figures(items: list[Mapping[str, float | None]], formula: str) -> dict[str, float | None]:
    """Merge the figures of series that share bounded labels, each by its measure's rule
    (:func:`cxmon.measures.combine`: counts add up, ratios are weighted, percentiles take the worst)."""
    names = {n for f in items for n in f}
    return {name: combine(name, items, formula) for name in names}


def _merge_hist(hists: list[Histogram]) -> Histogram:
    first = hists[0]
    counts = [0] * len(first.counts)
    for h in hists:
        for i, c in enumerate(h.counts):
            counts[i] += c
    return Histogram(
        bounds=first.bounds,
        counts=tuple(counts),
        total=sum(h.total for h in hists),
        count=sum(h.count for h in hists),
    )


@dataclass(frozen=True, slots=True)
class Row:
    """One exported series: bounded labels and its (possibly merged) figures."""

    labels: tuple[str, str, str]
    windows: Mapping[float, Mapping[str, float | None]]
    instant: Mapping[str, float | None]
    totals: Mapping[str, int]
    wait: Histogram
    resolution: Histogram


def bounded_rows(snapshot: Snapshot, bounds: LabelBounds) -> Iterator[Row]:
    """Yield one row per bounded label set, merging the series that share one.

    Rows are made one at a time, and only merged groups are collected: at thousands of series a
    render keeps few long-lived objects, so it does not set off full garbage collections.
    """
    keys = [bounds.series(s) for s in snapshot.series]
    seen: set[tuple[str, str, str]] = set()
    shared: dict[tuple[str, str, str], list[SeriesFigures]] = {}
    for key in keys:
        if key in seen:
            shared[key] = []
        seen.add(key)
    for key, s in zip(keys, snapshot.series, strict=True):
        group = shared.get(key)
        if group is None:
            yield Row(key, s.windows, s.instant, s.totals, s.wait_histogram, s.resolution_histogram)
        else:
            group.append(s)
    formula = snapshot.service_level_formula
    for labels, members in shared.items():
        windows = {
            w: _merge_figures([m.windows[w] for m in members if w in m.windows], formula)
            for w in sorted({w for m in members for w in m.windows})
        }
        totals: dict[str, int] = {}
        for m in members:
            for k, v in m.totals.items():
                totals[k] = totals.get(k, 0) + v
        yield Row(
            labels,
            windows,
            _merge_figures([m.instant for m in members], formula),
            totals,
            _merge_hist([m.wait_histogram for m in members]),
            _merge_hist([m.resolution_histogram for m in members]),
        )
