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
import functools
import heapq
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from cxmon.config import Step
from cxmon.detector import TREND_SAMPLE, TREND_SPAN, Tails, Verdict
from cxmon.engine.assembly import Assembly
from cxmon.engine.forecast_sampling import EARLY, ForecastSampling
from cxmon.engine.minute_rows import MinuteRows
from cxmon.engine.window_figures import UNKNOWN, Figures, WindowFigureBook, percentile_tails
from cxmon.measures import MEASURES, volume_figures
from cxmon.snapshot import (
    SeriesKey,
    Snapshot,
    State,
    Transition,
)
from cxmon.windows import Series, _due, instant_measures

if TYPE_CHECKING:
    from cxmon.engine.core import Engine

NO_THRESHOLDS: Final = Verdict(State.OK, "no thresholds")


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
        self.judges_instant = frozenset(
            s.name for s in config.steps if any(not MEASURES[t.measure].windowed for t in s.thresholds)
        )
        """Steps with a threshold on a figure of "now"."""
        self.judged: dict[str, frozenset[float]] = {
            s.name: frozenset(t.window for t in s.thresholds if MEASURES[t.measure].windowed)
            for s in config.steps
        }
        """step → the windows its thresholds read."""
        self.book = WindowFigureBook(config, every)
        """Every series' figures per window."""
        self.windows = self.book.figures
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
        self._too_few_judged: set[SeriesKey] = set()
        """Series last judged with no forecast and every threshold on too few contacts (each rule
        then holds no value, no timer and no trend: judging them so again changes nothing)."""
        self._volume_plans: dict[SeriesKey, tuple[tuple[float, str, tuple[str, ...], int], ...]] = {}
        """series → (window, measure, the figures its volume adds up, min_volume) per threshold that
        judges it."""
        self._tails: dict[SeriesKey, Tails] = {}
        """series → how many of a window's values are past a line (a percentile's noise)."""
        self._stale: tuple[frozenset[str], bool] | None = None
        self._published = False
        """Whether the last tick published (a publishing tick after quiet ones looks at everything)."""
        self.rows = MinuteRows(engine, self.book, every)
        self.forecasts = ForecastSampling(engine, self.steps, every)
        self._last_tick: float | None = None
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

        self.forecasts.sample(now, publish, todo, self._forecast_changed)

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
                # No source has fed the step yet, so none is known not to: while any is silent
                # or down it may be the one, and unknown is never shown as OK.
                stale = bool(stale_names)
                quiet = sorted(stale_names)
            state, reason, transition = detector.roll_up(
                step, self.step_verdicts[name], stale, engine._stale_reason(quiet, now), now
            )
            self.step_rolled[name] = (state, reason)
            if transition is not None:
                transitions.append(transition)
                if state is State.OK:
                    engine._acks.pop(name, None)

        new_minute = self.rows.due(now)
        if new_minute:
            self.rows.write(now, self.verdicts, self.windows)
        engine._finish_tick(now, transitions)
        if not publish:
            return None
        if new_minute:
            assembly.record_history(now)
        return assembly.assemble(now, agg.series, transitions, sources or ())

    def quiet_until(self) -> float:
        """Engine time up to which ticks with no new events would change nothing: when the first
        ``for`` timer or trend of a rule comes due (inf: none). -inf while a tick can change
        something at any moment: events came since the last tick; a window holds contacts (its
        panes leave as time passes, its minute figures are written every minute); contacts wait or
        are open (waits grow, backlogs age, contacts time out as lost); or a verdict moves with
        every tick. Both tick paths answer alike: it reads the aggregator and the rules' states.
        A data-driven clock leaves out the ticks of a long gap up to it (EngineClock.catch_up).
        """
        agg = self.engine.aggregator
        if agg.touched:
            return -math.inf
        detector = self.engine.detector
        steps = self.steps
        at = math.inf
        for key, series in agg.series.items():
            if series.waiting or series.open:
                return -math.inf
            for window in series.windows:
                if window.panes:
                    return -math.inf
            step = steps.get(key[0])
            if step is not None:
                due, every = detector.due(key, step)
                if every:
                    return -math.inf
                if due < at:
                    at = due
        return at

    def _forecast_changed(self, key: SeriesKey, series: Series) -> None:
        """A publishing tick made the forecast of a series it does not look at otherwise."""
        self.assembly.changed(key, series, False)

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
        changed = self.book.update(key, series, self.book.needs(name, publish))
        judges_now = name in self.judges_instant
        instant: Mapping[str, float | None] = (
            self._measure_now(key, series, now) if publish or judges_now else MappingProxyType({})
        )
        raw = self.judged_verdicts.get(key)
        if step is None:
            raw = NO_THRESHOLDS
        elif raw is None or judge or judges_now or self.every or not changed.isdisjoint(self.judged[name]):
            detector = engine.detector
            forecast = self.forecasts.for_judging(key, series)
            too_few = not judges_now and forecast is None and self._too_few(key, step)
            if too_few and key in self._too_few_judged and not (raw is None or judge or self.every):
                # Every rule was judged on too few contacts, with no forecast, and still is: judging
                # again gives the same verdict and leaves every rule as it was (no timer, no trend).
                pass
            else:
                tails = self._tails.get(key)
                if tails is None:
                    tails = self._tails[key] = functools.partial(percentile_tails, series)
                raw = detector.judge_series(key, step, self.windows[key], instant, now, forecast, tails)
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
        self.rows.looked_at(key, bool(series.windows[0].panes))
        old = self.verdicts.get(key)
        self.verdicts[key] = verdict
        if step is None:
            return publish
        sources = self.step_sources[name]
        if not series.sources <= sources:
            sources |= series.sources
        self.step_verdicts[name][key] = verdict
        # The same object (a verdict that was not judged again) is equal without comparing fields.
        return publish or old is None or (old is not verdict and old != verdict)

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
            figures = windows.get(window) or UNKNOWN
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
