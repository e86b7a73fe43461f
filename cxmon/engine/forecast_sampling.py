"""When each forecast series is sampled: at the first tick at or after the time its forecaster gave."""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from cxmon.config import Step
from cxmon.forecast.result import Forecast
from cxmon.snapshot import SeriesKey
from cxmon.windows import Series

if TYPE_CHECKING:
    from cxmon.engine.core import Engine

EARLY: Final = 1e-6
"""Timers fire this much early: a look one tick too soon changes nothing, one too late would."""


class ForecastSampling:
    """Samples the forecast series as their samples and forecasts come due, and hands the detector
    the forecasts it judges with.

    Forecasts follow time, not changes, and both tick paths sample them alike: a series is sampled
    at the first tick at or after the time :meth:`Forecaster.next_sample` gave (a heap holds those
    times), which is where sampling it at every tick would first change anything.
    """

    def __init__(self, engine: Engine, steps: Mapping[str, Step], every: bool) -> None:
        """Set up for ``engine``'s forecaster and aggregator.

        Args:
            engine: the engine whose forecaster and series are sampled.
            steps: the journey's steps by name.
            every: sample every forecast series at every tick (the reference).
        """
        self.engine = engine
        self.steps = steps
        self.every = every
        self._heap: list[tuple[float, int, SeriesKey]] = []
        self._at: dict[SeriesKey, float] = {}
        """When each forecast series is next sampled (heap, and per series)."""
        self._seq = 0
        self._seen = 0
        self._all: list[tuple[SeriesKey, Series, Step]] = []
        """Every forecast series, with its step."""
        self._last = math.inf
        """When the last of the forecast series is next due (then every one of them is)."""
        self._now: float | None = None

    def sample(
        self,
        now: float,
        publish: bool,
        todo: Mapping[SeriesKey, Series],
        changed: Callable[[SeriesKey, Series], None],
    ) -> None:
        """Sample the forecast series whose sample or forecast comes due by ``now``.

        Args:
            now: engine time of the tick.
            publish: the tick publishes a snapshot (then ``changed`` hears of each new forecast).
            todo: the series the tick looks at anyway.
            changed: called with a series, not in ``todo``, whose forecast a publishing tick made.
        """
        forecaster = self.engine.forecaster
        if not forecaster.options.enabled:
            return
        all_series = self.engine.aggregator.series
        steps = self.steps
        if self.every:
            # The reference: every forecast series at every tick, each forecast worked out as it
            # comes due.
            for key, series in all_series.items():
                step = steps.get(key[0])
                if step is not None and forecaster.sample(key, step, series, now):
                    forecaster.forecast(key)
                    if publish and key not in todo:
                        changed(key, series)
            return
        heap, at_of = self._heap, self._at
        last, self._now = self._now, now
        if len(all_series) != self._seen or (last is not None and now < last):
            # New series (or time went back): every forecast series is looked at now.
            self._seen = len(all_series)
            self._all = [
                (key, series, steps[key[0]])
                for key, series in all_series.items()
                if key[0] in steps and forecaster.applies(key)
            ]
            for key, _, _ in self._all:
                if at_of.get(key) != -math.inf:
                    at_of[key] = -math.inf
                    self._seq += 1
                    heapq.heappush(heap, (-math.inf, self._seq, key))
            self._last = -math.inf if self._all else math.inf
        if not publish and self._last <= now:
            # Every forecast series is due (ticks as far apart as the samples, as a backfill's
            # are): sample them all without the heap; it is made again from the times when needed.
            # (Methods called on the forecaster, not bound to locals: compiled, that is a direct
            # call where a bound method would go through Python's calling convention.)
            latest = -math.inf
            for key, series, step in self._all:
                forecaster.sample(key, step, series, now)
                at = at_of[key] = forecaster.next_sample(key) - EARLY
                if at > latest:
                    latest = at
            self._last = latest
            heap.clear()
            return
        if not heap and at_of:
            # Sampled without the heap since it was last used: make it again (the order between
            # equal times only orders the snapshot's notes of change, which it does not depend on).
            for key, at in at_of.items():
                self._seq += 1
                heap.append((at, self._seq, key))
            heapq.heapify(heap)
        sampled = []
        while heap and heap[0][0] <= now:
            at, _, key = heapq.heappop(heap)
            if at_of.get(key) != at:
                continue
            series = all_series[key]
            if forecaster.sample(key, steps[key[0]], series, now) and publish and key not in todo:
                changed(key, series)
            sampled.append(key)
        for key in sampled:
            at = forecaster.next_sample(key) - EARLY
            at_of[key] = at
            self._seq += 1
            heapq.heappush(heap, (at, self._seq, key))
            if at > self._last:
                self._last = at  # a series' times only grow (until time goes back)

    def for_judging(self, key: SeriesKey, series: Series) -> Forecast | None:
        """The series' forecast for judging: worked out only where it can carry figures (the
        reference works every one out).

        A forecast without projections whose series knows no agents (no staffing figures, none in
        ``[forecast] agents``) is no forecast to the detector: the next one cannot carry projections
        either until a staffing event, and that event has the series looked at again. Judged with
        it, every rule the model covers would await the next forecast and be judged again every
        RECOMPUTE_EVERY, with nothing to change its verdict.
        """
        forecaster = self.engine.forecaster
        if self.every:
            return forecaster.forecast(key)
        forecast = forecaster.modelled(key)
        if (
            forecast is not None
            and not forecast.projections
            and series.agents_staffed is None
            and key[2] not in forecaster.options.agents
        ):
            return None
        return forecast
