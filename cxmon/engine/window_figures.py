"""A series' figures per window, worked out again only for the windows that changed.

In a tick that publishes nothing (a backfill), only what is read is worked out: every figure of
the shortest window (the minute rows) and, of the longer windows, the measures a threshold reads.
The rest is worked out when someone needs it, from the window as it is then.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from cxmon import sketch
from cxmon.config import Config
from cxmon.measures import MEASURES
from cxmon.snapshot import SeriesKey
from cxmon.windows import RESOLUTION_QUANTILES, WAIT_QUANTILES, Pane, Series, Window, window_measures

Figures = MappingProxyType[str, float | None]
WindowFigures = MappingProxyType[float, Figures]
UNKNOWN: Final[Figures] = MappingProxyType({})
"""Figures of a window that changed while no one needed them (worked out when someone does)."""
_Total = tuple[Pane, bool, bool]
"""A window's total as worked out in a pass, and whether it holds the wait and resolution sketches."""
Needed = dict[float, frozenset[str] | None]
"""window → the measures of it to work out (None: all)."""


def percentile_tails(
    series: Series, length: float, measure: str, line: float, direction: str
) -> tuple[int, int]:
    """How many of the values a percentile of the series' window is taken over are past ``line``
    on the ``direction`` side, and how many there are (a percentile's noise is judged from them).

    Values are counted as the sketch reports them (each bin at the value its percentiles give), so
    a percentile past the line always has values past it.

    Args:
        series: the series.
        length: the window's length, seconds.
        measure: a wait or resolution percentile.
        line: the limit.
        direction: "above" (values over the line count) or "below" (values under it).
    """
    window = next(w for w in series.windows if w.length == length)
    wait = measure in WAIT_QUANTILES
    total = window.total_for(wait, not wait)
    bins = total.wait if wait else total.res
    count = past = 0
    above = direction == "above"
    for key, k in bins.items():
        count += k
        value = sketch.value_of(key)
        if (value > line) if above else (value < line):
            past += k
    return past, count


class WindowFigureBook:
    """Every series' figures per window, as the ticks last brought them up to date."""

    def __init__(self, config: Config, every: bool) -> None:
        """Set up for ``config``'s steps and windows.

        Args:
            config: the validated configuration (steps, thresholds, windows, service-level formula).
            every: work every figure out afresh each time (the reference for the change-driven path).
        """
        self.every = every
        self.shortest = min(config.monitor.windows)
        self.formula = config.monitor.service_level_formula
        self.figures: dict[SeriesKey, WindowFigures] = {}
        """series → its figures per window."""
        self.shown: dict[SeriesKey, dict[float, Figures]] = {}
        """series → the dict its :attr:`figures` view shows (compiled code reads a dict directly,
        a read-only view through Python's protocol); not to be changed."""
        self.needed: dict[str, dict[float, frozenset[str] | None]] = {}
        """step → the windows whose figures a tick that publishes nothing needs → the measures it
        needs of them (None: all): all of the shortest (the minute figures), and of the other
        judged windows the measures their thresholds read (a percentile no threshold reads is
        left out)."""
        for s in config.steps:
            needs: dict[float, frozenset[str] | None] = {self.shortest: None}
            for th in s.thresholds:
                if MEASURES[th.measure].windowed and th.window != self.shortest:
                    needs[th.window] = (needs.get(th.window) or frozenset()) | {th.measure}
            self.needed[s.name] = needs
        self._needed_all = {name: dict.fromkeys(needs) for name, needs in self.needed.items()}
        """The reference's: the same windows, every measure of them (a window's running sums are
        brought up to date when it is read, so both read the same windows at the same ticks)."""
        self._shortest_only: dict[float, frozenset[str] | None] = {self.shortest: None}
        self._partial: set[tuple[SeriesKey, float]] = set()
        """(series, window) whose figures hold only the measures :attr:`needed` names."""
        self._memos: dict[tuple[SeriesKey, float], tuple[sketch.Memo, sketch.Memo]] = {}
        """(series, window) → its last wait and resolution percentiles, for the same bins."""
        self.shortest_raw: dict[SeriesKey, tuple[Figures, dict[str, float | None]]] = {}
        """series → its shortest window's figures as last worked out, and the dict they show (the
        minute rows read it where compiled code would read the read-only view slowly)."""

    def needs(self, step: str, publish: bool) -> Needed | None:
        """What a tick needs of a series of ``step``: everything when it publishes (None)."""
        if publish:
            return None
        return (self._needed_all if self.every else self.needed).get(step, self._shortest_only)

    def update(self, key: SeriesKey, series: Series, needed: Needed | None) -> set[float]:
        """Bring the series' figures per window up to date: those of the windows that changed
        (of them, with ``needed``, only those it names, and of those only the measures it names;
        the rest is worked out when someone needs it, from the window as it is then). Return the
        lengths of the windows that changed."""
        cached = self.shown.get(key)
        partial = self._partial
        changed: set[float] = set()
        filled = False
        out: dict[float, Figures] = {}
        windows = series.windows
        # The total of the window before (the one the next nests in), as it is now, when this pass
        # has it, and which sketches it holds: the next window's total is its own part and that.
        inner: _Total | None = None
        dirties = Window.take_dirty(windows)
        for i, w in enumerate(windows):
            dirty = dirties[i]
            length = w.length
            old = cached.get(length) if cached is not None else None
            want = needed is None or length in needed
            only = None if needed is None else needed.get(length)
            if w.inner is None:
                inner = None
            computed: _Total | None = None
            if dirty:
                changed.add(length)
                if want:
                    out[length], computed = self._figures(key, w, only, inner)
                else:
                    out[length] = UNKNOWN
                    partial.discard((key, length))
            elif old is None or (want and (old is UNKNOWN or (only is None and (key, length) in partial))):
                out[length], computed = self._figures(key, w, only if want else None, inner)
                filled = True
            else:
                out[length] = old
            inner = (w.own, True, True) if w.inner is None else computed
        if changed or filled:
            self.figures[key] = MappingProxyType(out)
            self.shown[key] = out
        return changed

    def _figures(
        self, key: SeriesKey, window: Window, only: frozenset[str] | None, inner: _Total | None
    ) -> tuple[Figures, _Total]:
        """The window's figures: all of them, or (``only``) those it names and every count; and
        the total they come from. ``inner`` is the inner window's total, when the caller has it.
        """
        length = window.length
        memo = None
        if not self.every:  # the reference works every percentile out afresh
            memo = self._memos.get((key, length))
            if memo is None:
                memo = self._memos[(key, length)] = (sketch.Memo(), sketch.Memo())
        if only is None:
            self._partial.discard((key, length))
            wait = res = True
        else:
            self._partial.add((key, length))
            wait, res = not only.isdisjoint(WAIT_QUANTILES), not only.isdisjoint(RESOLUTION_QUANTILES)
        part = None
        if inner is not None and window.inner is not None:
            part = inner[0] if (inner[1] or not wait) and (inner[2] or not res) else None
        total = window.total_for(wait, res, part)
        figures = window_measures(total, self.formula, only, memo, window.inner is not None)
        shown = MappingProxyType(figures)
        if length == self.shortest:
            self.shortest_raw[key] = (shown, figures)
        return shown, (total, wait, res)
