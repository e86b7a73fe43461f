"""The tick: what changed since the last one is measured and judged again; the rest stands.

A tick moves time on, then looks only at the series something can have changed for:

- events came for it, or a pane with contents left one of its windows (the aggregator keeps
  the series it touched, and a heap of when each series' next pane leaves);
- a ``for`` timer or the trend of one of its thresholds comes due (:meth:`Detector.due`), or its
  verdict moves with every tick while it lasts (a pot hole's "for 3m05s");
- its figures of "now" move with the clock (contacts waiting: the longest wait grows) and a
  threshold judges them, or someone watches;
- the sources that feed it fell silent or spoke again (then every series is looked at).

Everything else keeps its figures and its verdict from the tick that last looked at it, which
is what recomputing it would give: the outcome (transitions, minute figures, snapshots) is the
same as recomputing every series at every tick, which ``every=True`` still does (the reference
the tests hold the change-driven path to). A quiet minute costs a look at a heap and a set.

Publishing (someone watches: a snapshot per tick) and not publishing (a backfill nobody watches:
transitions and minute figures only) are two modes of this one path.
"""

from __future__ import annotations

import fnmatch
import heapq
import math
import operator
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from cxmon import sketch
from cxmon.config import Step
from cxmon.detector import TREND_SAMPLE, TREND_SPAN, Verdict
from cxmon.engine.assembly import Assembly
from cxmon.forecast.result import Forecast
from cxmon.measures import MEASURES, volume_figures
from cxmon.snapshot import (
    SeriesKey,
    Snapshot,
    State,
    Transition,
)
from cxmon.store import encode_figures
from cxmon.windows import (
    RESOLUTION_QUANTILES,
    WAIT_QUANTILES,
    Pane,
    Series,
    Window,
    _due,
    instant_measures,
    window_measures,
)

if TYPE_CHECKING:
    from cxmon.engine.core import Engine

NO_THRESHOLDS = Verdict(State.OK, "no thresholds")
_UNKNOWN: Figures = MappingProxyType({})
"""Figures of a window that changed while no one needed them (worked out when someone does)."""
EARLY = 1e-6
"""Timers fire this much early: a look one tick too soon changes nothing, one too late would."""

Figures = MappingProxyType[str, float | None]
_Total = tuple[Pane, bool, bool]
"""A window's total as worked out in a pass, and whether it holds the wait and resolution sketches."""
WindowFigures = MappingProxyType[float, Figures]
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
_series_of_row = operator.itemgetter(0, 1, 2)


class TickPath:
    """The engine's one tick path, with what it keeps between ticks to look only at what changed."""

    def __init__(self, engine: Engine, every: bool = False) -> None:
        """Set up for ``engine``'s config.

        Args:
            engine: the engine whose aggregator, detector, sources and store the ticks use.
            every: look at every series at every tick (the reference for the change-driven path).
        """
        self.engine = engine
        self.every = every
        config = engine.config
        self.steps: dict[str, Step] = {s.name: s for s in config.steps}
        self.shortest = min(config.monitor.windows)
        self.formula = config.monitor.service_level_formula
        self.judges_instant = frozenset(
            s.name for s in config.steps if any(not MEASURES[t.measure].windowed for t in s.thresholds)
        )
        """Steps with a threshold on a figure of "now"."""
        self.judged: dict[str, frozenset[float]] = {
            s.name: frozenset(t.window for t in s.thresholds if MEASURES[t.measure].windowed)
            for s in config.steps
        }
        """step → the windows its thresholds read."""
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
        self._memos: dict[tuple[SeriesKey, float], tuple[sketch.Memo, sketch.Memo]] = {}
        """(series, window) → its last wait and resolution percentiles, for the same bins."""
        """(series, window) whose figures hold only the measures :attr:`needed` names."""
        self.windows: dict[SeriesKey, WindowFigures] = {}
        self.instant: dict[SeriesKey, Figures] = {}
        self.verdicts: dict[SeriesKey, Verdict] = {}
        self.judged_verdicts: dict[SeriesKey, Verdict] = {}
        """The detector's verdict per series (before the sources' silence overrides it)."""
        self.step_verdicts: dict[str, dict[SeriesKey, Verdict]] = {name: {} for name in self.steps}
        self.step_sources: dict[str, set[str]] = {name: set() for name in self.steps}
        self.step_rolled: dict[str, tuple[State, str]] = {}
        self._timers: list[tuple[float, int, SeriesKey]] = []
        self._timer_at: dict[SeriesKey, float] = {}
        self._seq = 0
        self._every_tick: set[SeriesKey] = set()
        """Series whose verdict moves with each tick while it lasts."""
        self._waiting: set[SeriesKey] = set()
        """Series with contacts waiting: their figures of "now" (the longest wait) move with each tick."""
        self._aged: list[tuple[float, int, SeriesKey]] = []
        self._aged_at: dict[SeriesKey, float] = {}
        """When a series' aged backlog next grows with the clock alone (heap, and per series)."""
        self._has_data: set[SeriesKey] = set()
        """Series whose shortest window holds contacts (they get a minute row every minute)."""
        self._since_minute: set[SeriesKey] = set()
        self._longer_windows: dict[str, tuple[float, ...]] = {}
        """step → the longer windows whose judged figures its minute rows carry."""
        self._too_few_judged: set[SeriesKey] = set()
        """Series last judged with no forecast and every threshold on too few contacts (each rule
        then holds no value, no timer and no trend: judging them so again changes nothing)."""
        self._volume_plans: dict[SeriesKey, tuple[tuple[float, str, tuple[str, ...], int], ...]] = {}
        """series → (window, measure, the figures its volume adds up, min_volume) per threshold that
        judges it."""
        self._rows: dict[SeriesKey, _RowMemo] = {}
        """series → what its last minute row was made from, and the row (see :data:`_RowMemo`)."""
        self._stale: tuple[frozenset[str], bool] | None = None
        self._published = False
        """Whether the last tick published (a publishing tick after quiet ones looks at everything)."""
        self.minute = -1
        self._last_tick: float | None = None
        self._forecast_heap: list[tuple[float, int, SeriesKey]] = []
        self._forecast_at: dict[SeriesKey, float] = {}
        """When each forecast series is next sampled (heap, and per series)."""
        self._forecast_seen = 0
        self._forecast_all: list[tuple[SeriesKey, Series, Step]] = []
        """Every forecast series, with its step."""
        self._forecast_last = math.inf
        """When the last of the forecast series is next due (then every one of them is)."""
        self._forecast_now: float | None = None
        self._sample_horizon = TREND_SPAN + 2 * max(TREND_SAMPLE, engine._tick_every)
        self.assembly = Assembly(self)

    # ------------------------------------------------------------------ the tick

    def run(self, now: float, publish: bool) -> Snapshot | None:
        """Tick at engine time ``now``: judge what changed, roll steps up, keep transitions and
        minute figures; with ``publish``, assemble and return the Snapshot (else None)."""
        engine = self.engine
        agg = engine.aggregator
        detector = engine.detector
        lost = agg.advance(now, only_due=not self.every)
        if lost and engine.store is not None:
            engine.store.add_nowait(lost)
        self._note_sample_tick(now)

        sources = engine._source_statuses(now) if publish else None
        stale_names, all_stale = engine._stale_sources(now)
        stale_key = (stale_names, all_stale)
        look_at_all = self.every or stale_key != self._stale or (publish and not self._published)
        self._stale = stale_key
        self._published = publish

        # Which series to look at, and which of them to judge whatever their windows did.
        touched = agg.take_touched()
        todo: dict[SeriesKey, Series]
        forced: set[SeriesKey] = set()
        if look_at_all:
            todo = dict(agg.series)
        else:
            todo = {s.key: s for s in touched}
            timers = self._timers
            detector = engine.detector
            while timers and timers[0][0] <= now:
                at, _, key = heapq.heappop(timers)
                if self._timer_at.get(key) == at:
                    del self._timer_at[key]
                    step = self.steps.get(key[0])
                    if (
                        key not in todo
                        and step is not None
                        and key[0] not in self.judges_instant
                        and detector.retrend(key, step, now)
                    ):
                        # Only the trend's time came, and it stays calm: the verdict stands.
                        due, every = detector.due(key, step)
                        self._schedule(key, due, every, now)
                        continue
                    todo[key] = agg.series[key]
                    forced.add(key)
            for key in self._every_tick:
                todo[key] = agg.series[key]
            forced |= self._every_tick
        moving: set[SeriesKey] = set()
        aged = self._aged
        while aged and aged[0][0] <= now:
            at, _, key = heapq.heappop(aged)
            if self._aged_at.get(key) == at:
                del self._aged_at[key]
                moving.add(key)
        if publish:
            moving |= self._waiting
            moving.difference_update(todo)
        else:
            moving.clear()

        self._sample_forecasts(now, publish, todo)

        changed_steps: set[str] = set()
        assembly = self.assembly
        touched_keys = {s.key for s in touched}
        for key, series in todo.items():
            if self._evaluate(
                key, series, now, stale_names, all_stale, publish, look_at_all or key in forced
            ):
                changed_steps.add(key[0])
            if not self.every:
                agg.schedule(series)
            if publish:
                assembly.changed(key, series, look_at_all or key in touched_keys)
        for key in moving:
            series = agg.series[key]
            self._measure_now(key, series, now)
            assembly.changed(key, series, False)

        # Steps, rolled up: those whose series' verdicts moved, and stale ones (their reason says
        # for how long).
        transitions: list[Transition] = []
        for step in engine.config.steps:
            name = step.name
            rolled = self.step_rolled.get(name)
            if not (look_at_all or name in changed_steps or rolled is None or rolled[0] is State.STALE):
                continue
            step_sources = self.step_sources[name]
            if step_sources:
                stale = step_sources <= stale_names
                quiet = sorted(step_sources & stale_names)
            else:
                stale = all_stale
                quiet = sorted(stale_names)
            state, reason, transition = detector.roll_up(
                step, self.step_verdicts[name], stale, engine._stale_reason(quiet, now), now
            )
            self.step_rolled[name] = (state, reason)
            if transition is not None:
                transitions.append(transition)
                if state is State.OK:
                    engine._acks.pop(name, None)

        new_minute = int(now // 60) != self.minute
        if new_minute:
            self._minute_rows(now)
        engine._finish_tick(now, transitions)
        if not publish:
            return None
        if new_minute:
            assembly.record_history(now)
        return assembly.assemble(now, agg.series, transitions, sources or ())

    def _sample_forecasts(self, now: float, publish: bool, todo: Mapping[SeriesKey, Series]) -> None:
        """Sample the forecast series whose sample or forecast comes due by ``now``.

        Forecasts follow time, not changes, and both tick paths sample them alike: a series is
        sampled at the first tick at or after the time :meth:`Forecaster.next_sample` gave (a heap
        holds those times), which is where sampling it at every tick would first change anything.
        """
        forecaster = self.engine.forecaster
        if not forecaster.options.enabled:
            return
        all_series = self.engine.aggregator.series
        if self.every:
            # The reference: every forecast series at every tick, each forecast worked out as it
            # comes due.
            for key, series in all_series.items():
                step = self.steps.get(key[0])
                if step is not None and forecaster.sample(key, step, series, now):
                    forecaster.forecast(key)
                    if publish and key not in todo:
                        self.assembly.changed(key, series, False)
            return
        heap, at_of = self._forecast_heap, self._forecast_at
        last, self._forecast_now = self._forecast_now, now
        if len(all_series) != self._forecast_seen or (last is not None and now < last):
            # New series (or time went back): every forecast series is looked at now.
            self._forecast_seen = len(all_series)
            self._forecast_all = [
                (key, series, self.steps[key[0]])
                for key, series in all_series.items()
                if key[0] in self.steps and forecaster.applies(key)
            ]
            for key, _, _ in self._forecast_all:
                if at_of.get(key) != -math.inf:
                    at_of[key] = -math.inf
                    self._seq += 1
                    heapq.heappush(heap, (-math.inf, self._seq, key))
            self._forecast_last = -math.inf if self._forecast_all else math.inf
        if not publish and self._forecast_last <= now:
            # Every forecast series is due (ticks as far apart as the samples, as a backfill's
            # are): sample them all without the heap; it is made again from the times when needed.
            sample, next_sample = forecaster.sample, forecaster.next_sample
            latest = -math.inf
            for key, series, step in self._forecast_all:
                sample(key, step, series, now)
                at = at_of[key] = next_sample(key) - EARLY
                if at > latest:
                    latest = at
            self._forecast_last = latest
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
            if forecaster.sample(key, self.steps[key[0]], series, now) and publish and key not in todo:
                self.assembly.changed(key, series, False)
            sampled.append(key)
        for key in sampled:
            at = forecaster.next_sample(key) - EARLY
            at_of[key] = at
            self._seq += 1
            heapq.heappush(heap, (at, self._seq, key))
            if at > self._forecast_last:
                self._forecast_last = at  # a series' times only grow (until time goes back)

    def _forecast(self, key: SeriesKey, series: Series) -> Forecast | None:
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

    def _note_sample_tick(self, now: float) -> None:
        """Keep the ticks that open a trend-sample slot (see :attr:`Detector.sample_ticks`)."""
        last = self._last_tick
        self._last_tick = now
        ticks = self.engine.detector.sample_ticks
        if last is not None and now // TREND_SAMPLE <= last // TREND_SAMPLE:
            return
        ticks.append(now)
        horizon = now - self._sample_horizon
        while ticks and ticks[0] < horizon:
            ticks.popleft()

    # ------------------------------------------------------------------ one series

    def _evaluate(
        self,
        key: SeriesKey,
        series: Series,
        now: float,
        stale_names: frozenset[str],
        all_stale: bool,
        publish: bool,
        judge: bool,
    ) -> bool:
        """Measure one series again, and judge it when a window its thresholds read changed (or
        ``judge``); return True when its step must be rolled up again."""
        engine = self.engine
        name = key[0]
        step = self.steps.get(name)
        needed = (
            None
            if publish
            else (self._needed_all if self.every else self.needed).get(name, self._shortest_only)
        )
        changed = self._windows_of(key, series, needed)
        judges_now = name in self.judges_instant
        instant: Mapping[str, float | None] = (
            self._measure_now(key, series, now) if publish or judges_now else MappingProxyType({})
        )
        raw = self.judged_verdicts.get(key)
        if step is None:
            raw = NO_THRESHOLDS
        elif raw is None or judge or judges_now or self.every or not changed.isdisjoint(self.judged[name]):
            detector = engine.detector
            forecast = self._forecast(key, series)
            too_few = not judges_now and forecast is None and self._too_few(key, step)
            if too_few and key in self._too_few_judged and not (raw is None or judge or self.every):
                # Every rule was judged on too few contacts, with no forecast, and still is: judging
                # again gives the same verdict and leaves every rule as it was (no timer, no trend).
                pass
            else:
                raw = detector.judge_series(key, step, self.windows[key], instant, now, forecast)
                due, every = detector.due(key, step)
                if judges_now:
                    if key in self._waiting:
                        every = True
                    due = min(due, self._aged_at.get(key, math.inf))
                self._schedule(key, due, every, now)
                if too_few:
                    self._too_few_judged.add(key)
                else:
                    self._too_few_judged.discard(key)
        self.judged_verdicts[key] = raw
        verdict = raw
        if (series.sources and series.sources <= stale_names) or (not series.sources and all_stale):
            verdict = Verdict(State.STALE, "source silent", raw.measure, raw.value)
        if series.windows[0].panes:
            self._has_data.add(key)
        else:
            self._has_data.discard(key)
        self._since_minute.add(key)
        old = self.verdicts.get(key)
        self.verdicts[key] = verdict
        if step is None:
            return publish
        sources = self.step_sources[name]
        if not series.sources <= sources:
            sources |= series.sources
        self.step_verdicts[name][key] = verdict
        return publish or old is None or old != verdict

    def _too_few(self, key: SeriesKey, step: Step) -> bool:
        """Whether every threshold that judges the series rests on too few contacts in its window
        (its figure is None or under its ``min_volume``): each would be judged "too few contacts"."""
        plan = self._volume_plans.get(key)
        if plan is None:
            plan = self._volume_plans[key] = tuple(
                (th.window, th.measure, volume_figures(th.measure), th.min_volume)
                for th in step.thresholds
                if th.channel == "*" or fnmatch.fnmatchcase(key[1], th.channel)
            )
        windows = self.windows[key]
        for window, measure, names, least in plan:
            figures = windows.get(window) or _UNKNOWN
            if figures.get(measure) is None:
                continue
            if not least or sum(figures.get(n) or 0.0 for n in names) >= least:
                return False
        return True

    def _schedule(self, key: SeriesKey, due: float, every: bool, now: float) -> None:
        """Look at a series again at ``due`` (if it comes; after ``now`` in any case), or at every
        tick."""
        if every:
            self._every_tick.add(key)
        else:
            self._every_tick.discard(key)
        if due != math.inf and not self.every:
            due = max(due - EARLY, math.nextafter(now, math.inf))
            if self._timer_at.get(key) != due:
                self._timer_at[key] = due
                self._seq += 1
                heapq.heappush(self._timers, (due, self._seq, key))
        else:
            self._timer_at.pop(key, None)

    def _windows_of(
        self, key: SeriesKey, series: Series, needed: Mapping[float, frozenset[str] | None] | None
    ) -> set[float]:
        """Bring the series' figures per window up to date: those of the windows that changed
        (of them, with ``needed``, only those it names, and of those only the measures it names;
        the rest is worked out when someone needs it, from the window as it is then). Return the
        lengths of the windows that changed."""
        cached = self.windows.get(key)
        partial = self._partial
        changed: set[float] = set()
        filled = False
        out: dict[float, Figures] = {}
        windows = series.windows
        # The total of the window before (the one the next nests in), as it is now, when this pass
        # has it, and which sketches it holds: the next window's total is its own part and that.
        inner: _Total | None = None
        for w, dirty in zip(windows, Window.take_dirty(windows), strict=True):
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
                    out[length] = _UNKNOWN
                    partial.discard((key, length))
            elif old is None or (want and (old is _UNKNOWN or (only is None and (key, length) in partial))):
                out[length], computed = self._figures(key, w, only if want else None, inner)
                filled = True
            else:
                out[length] = old
            inner = (w.own, True, True) if w.inner is None else computed
        if changed or filled:
            self.windows[key] = MappingProxyType(out)
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
        return MappingProxyType(figures), (total, wait, res)

    def _measure_now(self, key: SeriesKey, series: Series, now: float) -> Figures:
        """The series' figures of "now"; note when they next move with the clock alone."""
        figures = MappingProxyType(instant_measures(series, now))
        self.instant[key] = figures
        if series.waiting:
            self._waiting.add(key)  # the longest wait grows with every tick
        else:
            self._waiting.discard(key)
        at = math.inf
        if series.open:
            # The aged backlog grows when the next open contact reaches the age (in business
            # time when the step keeps a calendar).
            age = series.backlog_age
            calendar = series.step.calendar if series.step is not None else None
            if calendar is None:
                limit = now - age
                younger = [t + age for t in series.open.values() if t > limit]
            else:
                dues = (_due(calendar, t, age) for t in series.open.values())
                younger = [d for d in dues if d is not None and d > now]
            if younger:
                at = min(younger) - EARLY
        if at != self._aged_at.get(key, math.inf):
            if at == math.inf:
                del self._aged_at[key]
            else:
                self._aged_at[key] = at
                self._seq += 1
                heapq.heappush(self._aged, (at, self._seq, key))
        return figures

    # ------------------------------------------------------------------ minute figures

    def _minute_rows(self, now: float) -> None:
        """Store a row per series whose shortest window holds contacts, or whose row changed.

        A series with an empty shortest window and an unchanged state keeps its last row: it
        is not written again minute after minute.
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
        verdicts, all_windows, all_series = self.verdicts, self.windows, agg.series
        forecaster = engine.forecaster
        forecast_of = forecaster.forecast if self.every else forecaster.modelled  # as _forecast
        for key in keys:
            verdict = verdicts.get(key)
            if verdict is None:
                continue
            windows = all_windows[key]
            last = last_rows.get(key)
            forecast = forecast_of(key)
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
                longer = tuple(map(windows.get, lengths)) if lengths else ()
                if (
                    last is not None
                    and last[2] is source
                    and last[5] is forecast
                    and all(map(operator.is_, last[4], longer))
                ):
                    figures, text = last[3], last[6]  # the same figures as the last row's
                else:
                    figures = {m: v for m, v in source.items() if v is not None}
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
        if rows and baselines.learns(minute):
            for step, channel, queue, _, figures, _ in rows:
                baselines.add((step, channel, queue), minute, figures)
        engine.baseline_status = baselines.status(now)
