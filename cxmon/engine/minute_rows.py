"""Minute figures: a row per series each minute its shortest window holds contacts or its row changed."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from cxmon.engine.window_figures import Figures, WindowFigureBook, WindowFigures
from cxmon.forecast.result import Forecast
from cxmon.snapshot import SeriesKey, State
from cxmon.store import encode_figures

if TYPE_CHECKING:
    from cxmon.detector import Verdict
    from cxmon.engine.core import Engine

_RowMemo = tuple[
    State,
    WindowFigures,
    Figures,
    dict[str, float | None],
    tuple[Figures | None, ...],
    Forecast | None,
    str | None,
]
"""(state, the series' window figures, its shortest window's, the row's figures, the longer
windows' figures and the forecast they came from, the figures encoded when they were stored)."""
_series_of_row: Final = operator.itemgetter(0, 1, 2)


def _known(figures: Mapping[str, object]) -> dict[str, Any]:
    """The figures that have a value (a row leaves out those with none). The values are taken as
    objects: compiled, a float would be unboxed and boxed again on its way into the row."""
    out: dict[str, Any] = {}
    for name, value in figures.items():
        if value is not None:
            out[name] = value
    return out


def _same(a: tuple[Figures | None, ...], b: tuple[Figures | None, ...]) -> bool:
    """Whether the two hold the same objects, place by place (as far as the shorter goes)."""
    return all(a[i] is b[i] for i in range(min(len(a), len(b))))  # compiled to a loop


def _known_of(figures: dict[str, float | None]) -> dict[str, Any]:
    """:func:`_known` of the dict a window's figures show: copied whole, then the figures with no
    value taken out (the same figures in the same order, for a fraction of the work)."""
    out: dict[str, Any] = figures.copy()
    for name in [name for name, value in figures.items() if value is None]:
        del out[name]
    return out


class MinuteRows:
    """Writes each minute's rows to the store and offers them to the baselines.

    A series with an empty shortest window and an unchanged state keeps its last row: it is not
    written again minute after minute. The tick notes which series it looked at
    (:meth:`looked_at`); the reference (``every``) writes a row for every series it knows.
    """

    def __init__(self, engine: Engine, book: WindowFigureBook, every: bool) -> None:
        """Set up for ``engine``'s store, baselines and forecaster.

        Args:
            engine: the engine whose aggregator, store, baselines and forecaster the rows read.
            book: the series' window figures (the shortest window's are the row's).
            every: write a row for every series at every minute's first tick (the reference).
        """
        self.engine = engine
        self.book = book
        self.shortest = book.shortest
        self.every = every
        self.minute = -1
        """The minute (engine time ÷ 60) the last rows were written for."""
        self._has_data: set[SeriesKey] = set()
        """Series whose shortest window holds contacts (they get a minute row every minute)."""
        self._since_minute: set[SeriesKey] = set()
        """Series looked at since the last rows (their row may have changed)."""
        self._longer_windows: dict[str, tuple[float, ...]] = {}
        """step → the longer windows whose judged figures its minute rows carry."""
        self._rows: dict[SeriesKey, _RowMemo] = {}
        """series → what its last minute row was made from, and the row (see :data:`_RowMemo`)."""

    def looked_at(self, key: SeriesKey, has_data: bool) -> None:
        """Note that a tick looked at the series, and whether its shortest window holds contacts."""
        if has_data:
            self._has_data.add(key)
        else:
            self._has_data.discard(key)
        self._since_minute.add(key)

    def due(self, now: float) -> bool:
        """Whether ``now`` is in a minute the rows were not yet written for."""
        return int(now // 60) != self.minute

    def write(
        self,
        now: float,
        verdicts: dict[SeriesKey, Verdict],
        all_windows: dict[SeriesKey, WindowFigures],
    ) -> None:
        """Store a row per series whose shortest window holds contacts, or whose row changed.

        Args:
            now: engine time of the tick (in the minute the rows are for).
            verdicts: each series' verdict as the tick left it.
            all_windows: each series' figures per window as the tick left them.
        """
        engine = self.engine
        agg = engine.aggregator
        self.minute = int(now // 60)
        keys = agg.series.keys() if self.every else self._has_data | self._since_minute
        self._since_minute = set()
        rows = []
        shortest = self.shortest
        last_rows = self._rows
        baselines = engine.detector.baselines
        longer_of = self._longer_windows
        all_series = agg.series
        forecaster = engine.forecaster
        every = self.every
        shortest_raw = self.book.shortest_raw
        book_shown = self.book.shown
        for key in keys:
            verdict = verdicts.get(key)
            if verdict is None:
                continue
            windows = all_windows[key]
            last = last_rows.get(key)
            # As the tick judges: the reference works every forecast out, the change-driven path
            # reads the ones worked out already.
            forecast = forecaster.forecast(key) if every else forecaster.modelled(key)
            if last is not None and last[1] is windows and last[5] is forecast:
                # No window of the series changed since its last row: the same figures.
                source, figures, longer, text = last[2], last[3], last[4], last[6]
            else:
                source = windows[shortest]
                # The longer windows' judged figures go with them (as "wait_p90@15m", for the
                # baselines).
                lengths = longer_of.get(key[0])
                if lengths is None:
                    lengths = longer_of[key[0]] = tuple(w.window for w in baselines.longer(key[0]))
                if lengths:
                    shown = book_shown[key]  # the dict ``windows`` shows
                    longer = tuple([shown.get(length) for length in lengths])
                else:
                    longer = ()
                if last is not None and last[2] is source and last[5] is forecast and _same(last[4], longer):
                    figures, text = last[3], last[6]  # the same figures as the last row's
                else:
                    raw = shortest_raw.get(key)
                    # The dict the view shows, when the book still has it (the same figures).
                    figures = _known_of(raw[1]) if raw is not None and raw[0] is source else _known(source)
                    if longer:
                        figures.update(baselines.stored_figures(key[0], windows))
                    if forecast is not None:
                        figures.update(forecast.minute_figures())
                    text = None
            state = verdict.state
            if all_series[key].windows[0].panes or last is None or last[0] is not state or last[3] != figures:
                if text is None:
                    text = encode_figures(figures)
                rows.append((*key, state, figures, text))
            last_rows[key] = (state, windows, source, figures, longer, forecast, text)
        minute = self.minute * 60.0
        if rows and engine.store is not None:
            rows.sort(key=_series_of_row)
            engine.store.add_minute_encoded(minute, [(*r[:4], r[5]) for r in rows])
        if rows and baselines.learns(minute) and not engine.warming:  # learned when they were stored
            for step, channel, queue, _, figures, _ in rows:
                baselines.add((step, channel, queue), minute, figures)
        engine.baseline_status = baselines.status(now)
