"""Snapshot assembly: a tick's figures, verdicts and roll-ups become the published Snapshot.

Only what changed is built again: a series' figures object is rebuilt when the tick looked at it
(or once a minute, when every series' history moves on), and a step's headline and its contacts
affected are kept per series and combined, not worked out from every series of the step each tick.
Unchanged SeriesFigures are shared between snapshots (they are immutable).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from cxmon.config import Step
from cxmon.detector import Verdict, slope
from cxmon.measures import INSTANT, bad_direction, volume
from cxmon.snapshot import (
    RESOLUTION_BUCKETS,
    TOTALS,
    WAIT_BUCKETS,
    Histogram,
    SeriesFigures,
    SeriesKey,
    Snapshot,
    SourceStatus,
    State,
    StepStatus,
    Transition,
)
from cxmon.windows import Series

_Counted = tuple[tuple[int, ...], tuple[int, ...], float, tuple[int, ...], float]
"""A series' running counts at a moment: totals, wait histogram and sum, resolution histogram and sum."""

if TYPE_CHECKING:
    from cxmon.engine.tick import TickPath

HISTORY_POINTS = 60
HISTORY_MEASURES = ("wait_p90", "service_level", "offered", "abandoned", "escalations", "csat")
TREND_POINTS = 13
"""Headline samples (10 s apart) a step's trend arrow is fitted over: the last two minutes."""

Figures = MappingProxyType[str, float | None]
_Parts = tuple[MappingProxyType[str, int], Histogram, Histogram]


class Headline:
    """How a step's headline figure is read from one of its series (see :meth:`value`)."""

    def __init__(self, step: Step, shortest: float) -> None:
        """Read ``step.headline`` in the window of the step's threshold on it (else ``shortest``)."""
        self.measure = step.headline
        self.below = bad_direction(self.measure) == "below"
        self.window = shortest
        self.min_volume = 0
        for th in step.thresholds:
            if th.measure == self.measure:
                self.window, self.below, self.min_volume = th.window, th.direction == "below", th.min_volume
                break

    def value(self, windows: Mapping[float, Figures], instant: Figures) -> float | None:
        """The series' headline figure: None where it has too few contacts for the threshold."""
        measure = self.measure
        if measure in INSTANT:
            return instant.get(measure)
        wf = windows[self.window]
        v = wf.get(measure)
        if v is not None and self.min_volume and volume(measure, wf) < self.min_volume:
            return None
        return v


class Assembly:
    """Builds each tick's Snapshot from a :class:`TickPath`'s state, rebuilding only what changed."""

    def __init__(self, ticks: TickPath) -> None:
        """Assemble for ``ticks`` (its figures, verdicts and roll-ups)."""
        self.ticks = ticks
        self.shortest = ticks.shortest
        self.headlines = {name: Headline(step, self.shortest) for name, step in ticks.steps.items()}
        self.figures: dict[SeriesKey, SeriesFigures] = {}
        self._parts: dict[SeriesKey, _Parts] = {}
        self._order: list[SeriesKey] = []
        self._pos: dict[SeriesKey, int] = {}
        self._list: list[SeriesFigures] = []
        self._tuple: tuple[SeriesFigures, ...] = ()
        self._history: dict[SeriesKey, deque[tuple[float, Figures]]] = {}
        self._history_src: dict[SeriesKey, tuple[Figures, Figures]] = {}
        self._head_values: dict[str, dict[SeriesKey, float]] = {name: {} for name in ticks.steps}
        self._affected: dict[str, dict[SeriesKey, int]] = {name: {} for name in ticks.steps}
        self._step_samples: dict[str, tuple[str, deque[tuple[float, float]]]] = {}
        self._rebuild: set[SeriesKey] = set()
        self._rebuild_all = False
        self._counted: dict[SeriesKey, _Counted] = {}
        """series → its running counts when the engine began counting (see :meth:`count_from_now`)."""

    def changed(self, key: SeriesKey, series: Series, events: bool) -> None:
        """Note that the tick measured ``key`` again (``events``: its counts and histograms moved)."""
        self._rebuild.add(key)
        if events:
            self._parts.pop(key, None)
        name = key[0]
        headline = self.headlines.get(name)
        if headline is None:
            return
        ticks = self.ticks
        windows, instant = ticks.windows[key], ticks.instant[key]
        value = headline.value(windows, instant)
        values = self._head_values[name]
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
        self._affected[name][key] = int(
            (instant.get("waiting_now") or 0) + (windows[self.shortest].get("offered") or 0)
        )

    def record_history(self, now: float) -> None:
        """Add this minute's point (the shortest window's figures) to every series' history."""
        minute = float(int(now // 60) * 60)
        shortest = self.shortest
        for key, windows in self.ticks.windows.items():
            hist = self._history.get(key)
            if hist is None:
                hist = self._history[key] = deque(maxlen=HISTORY_POINTS)
            figures = windows[shortest]
            src = self._history_src.get(key)
            if src is None or src[0] is not figures:
                point = MappingProxyType({m: figures.get(m) for m in HISTORY_MEASURES})
                self._history_src[key] = (figures, point)
            else:
                point = src[1]
            hist.append((minute, point))
        self._rebuild_all = True

    def assemble(
        self,
        now: float,
        series: Mapping[SeriesKey, Series],
        transitions: list[Transition],
        sources: tuple[SourceStatus, ...],
    ) -> Snapshot:
        """Build and publish the Snapshot of the tick at ``now``."""
        ticks = self.ticks
        engine = ticks.engine
        if len(self._order) != len(series):
            self._order = sorted(series)
            self._pos = {k: i for i, k in enumerate(self._order)}
            self._list = [self.figures.get(k) or self._build(k, series[k]) for k in self._order]
        rebuild: Iterable[SeriesKey] = self._order if self._rebuild_all else self._rebuild
        if rebuild:
            slots, pos = self._list, self._pos
            for key in rebuild:
                slots[pos[key]] = self._build(key, series[key])
            self._tuple = tuple(slots)
        self._rebuild = set()
        self._rebuild_all = False

        steps: list[StepStatus] = []
        for step in engine.config.steps:
            name = step.name
            state, reason = ticks.step_rolled[name]
            ack = engine._acks.current(name, now)
            headline = self.headlines[name]
            values = self._head_values[name]
            value = (min(values.values()) if headline.below else max(values.values())) if values else None
            steps.append(
                StepStatus(
                    name=name,
                    label=step.label,
                    state=state,
                    reason=reason,
                    since=engine.detector.step_since.get(name, now),
                    moment_of_truth=step.moment_of_truth,
                    headline_measure=headline.measure,
                    headline_value=value,
                    trend=self._trend(name, headline.measure, value, now),
                    affected=sum(self._affected[name].values()),
                    ack=ack,
                    headline_window=0.0 if headline.measure in INSTANT else headline.window,
                )
            )
        return engine._snapshot(now, tuple(steps), self._tuple, sources, tuple(transitions))

    def count_from_now(self, series: Mapping[SeriesKey, Series]) -> None:
        """Export every series' counters (contacts, the wait and resolution histograms) from zero
        at this point: the history a warm start read back was counted by the run before, and a
        counter that began at its contacts would count them twice in a rate over the restart.
        The series' own running counts go on (the forecasts take rates from them)."""
        for key, s in series.items():
            self._counted[key] = (
                tuple(s.totals),
                tuple(s.wait_hist),
                s.wait_hist_sum,
                tuple(s.res_hist),
                s.res_hist_sum,
            )
        self._parts.clear()

    def _build(self, key: SeriesKey, series: Series) -> SeriesFigures:
        ticks = self.ticks
        parts = self._parts.get(key)
        if parts is None:
            totals, wait, wait_sum = series.totals, series.wait_hist, series.wait_hist_sum
            res, res_sum = series.res_hist, series.res_hist_sum
            counted = self._counted.get(key)
            if counted is not None:  # after a warm start: what was read back is not counted again
                totals = [a - b for a, b in zip(totals, counted[0], strict=True)]
                wait = [a - b for a, b in zip(wait, counted[1], strict=True)]
                res = [a - b for a, b in zip(res, counted[3], strict=True)]
                wait_sum, res_sum = wait_sum - counted[2], res_sum - counted[4]
            parts = self._parts[key] = (
                MappingProxyType(dict(zip(TOTALS, totals, strict=True))),
                Histogram(WAIT_BUCKETS, tuple(wait), wait_sum, sum(wait)),
                Histogram(RESOLUTION_BUCKETS, tuple(res), res_sum, sum(res)),
            )
        verdict: Verdict = ticks.verdicts[key]
        hist = self._history.get(key)
        built = self.figures[key] = SeriesFigures(
            step=key[0],
            channel=key[1],
            queue=key[2],
            windows=ticks.windows[key],
            instant=ticks.instant[key],
            totals=parts[0],
            wait_histogram=parts[1],
            resolution_histogram=parts[2],
            state=verdict.state,
            reason=verdict.reason,
            history=tuple(hist) if hist else (),
            forecast=ticks.engine.forecaster.forecast(key),
        )
        return built

    def _trend(self, step: str, measure: str, value: float | None, now: float) -> float:
        """Slope (units per minute) of the step's headline over the last TREND_POINTS samples.

        Samples are of one measure only: when the headline changes measure they start again, so the
        arrow never compares an abandon rate with a service level.
        """
        kept = self._step_samples.get(step)
        if kept is None or kept[0] != measure:
            kept = self._step_samples[step] = (measure, deque(maxlen=TREND_POINTS))
        samples = kept[1]
        if value is None:
            samples.clear()
            return 0.0
        if not samples or now - samples[-1][0] >= 10.0:
            samples.append((now, value))
        s = slope(samples, now)
        return 0.0 if s is None else s * 60.0


__all__ = ["HISTORY_MEASURES", "HISTORY_POINTS", "Assembly", "Headline", "State"]
