"""The live staffing forecast of one queue: arrival rate, handle time, patience and agents → Erlang C/A.

Estimates come from the series' running totals, sampled as the engine ticks, so the forecaster needs
no events of its own: the arrival rate over ``arrival_span``, the handle time (mean of resolved
contacts' handle times) and the patience (abandons ÷ total time spent waiting: the exponential
patience's maximum-likelihood estimate) over ``handle_span``; agents from staffing events, else the
``[forecast] agents`` table.

Over 500 lines for a reason: the forecaster is one compiled class, whose sampling and forecasts
share the track each series keeps between ticks, and what a forecast defers (``_steady``) is kept
beside it so that it is compiled with it (a projection's parts are worked out when first read).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol, cast

from cxmon import noise
from cxmon.config import Config, Step, Threshold
from cxmon.forecast import change, transient
from cxmon.forecast.breach import Projection, Steady
from cxmon.forecast.figures import Workload
from cxmon.forecast.profile import Profile
from cxmon.forecast.result import Forecast
from cxmon.forecast.threshold_agents import (
    QUANTILES,
    ForAll,
    breaking_rate,
    clear_of,
    evaluate,
    fewest,
    guess,
    last_needed_all,
    needed_search,
    projector,
)
from cxmon.localtime import when, zone
from cxmon.measures import MEASURES, service_level_denominator
from cxmon.snapshot import TOTALS
from cxmon.windows import Series

SAMPLE_EVERY = 10.0
"""Seconds of engine time between samples of a series' running totals."""
RECOMPUTE_EVERY = 10.0
"""Seconds of engine time between model evaluations of a series."""
MIN_SPAN = 60.0
"""A rate needs at least this much history."""
MIN_HANDLED = 5
"""Resolved contacts with a handle time before the handle time is trusted."""
WARM_UP = 600.0
"""Seconds of history before the first forecast: the first contacts to finish after a start are the
short ones, so a younger handle-time estimate runs low."""
SURE = 2.5
"""The confident arrival rate is the usual one (over USUAL_SPAN, less a standard error), or higher
where a shorter span shows it surely: the highest of (count − SURE·√count) / span over the spans
SCAN × arrival_span. A burst of a few contacts is Poisson noise, not a pot hole on its way, while a
surge that lasts shows in the span that matches it; once it surely rose above the usual rate
(:mod:`cxmon.forecast.change`), the confident rate is the rate since it rose."""
SCAN = (1.0, 2.0, 4.0)
USUAL_SPAN = 3600.0
"""Seconds the usual arrival rate is counted over: a whole hour, so a queue that loses agents in a
lull is judged by the hour's load, not by the lull's."""
DISPERSION = 6.0
"""Variance of a window's share (service level, abandon rate) over the binomial one: contacts in a
busy period wait together, so a window holds fewer independent outcomes than contacts."""
CHANCE_DISPERSION = 2.5
"""Variance of a 5-minute window's service level over the binomial one, in the chance of a breach
within the horizon (:attr:`cxmon.forecast.breach.Projection.risk`). Discrete-event runs of
M/M/N+M queues (tests/forecast/test_chance.py) put the chance that a 5-minute window of 15–20
calls dips under 80 % within 10 minutes at 13 % with 22 agents, where the estimate gives 12 %; it
is no single figure (closer to 1.4 one agent fewer, where the estimate says twice the chance), so
the estimate is good to about a factor of two and the level it is asked at is set on the quiet
runs of the benchmark (README, Warning lead benchmark)."""

_OFFERED: Final = TOTALS.index("offered")
_ANSWERED: Final = TOTALS.index("answered")
_ABANDONED: Final = TOTALS.index("abandoned")
_SHORT: Final = TOTALS.index("short_abandoned")
MODELLED = ("service_level", "asa", "abandon_rate", *QUANTILES)
"""Measures the queueing model projects (the others keep the trend)."""


class Counts(Protocol):
    """The running totals of a series the forecast reads (cxmon.windows.Series has them)."""

    totals: list[int]
    wait_hist_sum: float
    res_hist: list[int]
    res_hist_sum: float
    agents_staffed: int | None
    waiting: dict[str, float]


Sample = tuple[float, int, int, float, int, float, int, int]
"""(time, offered, abandoned, wait sum, handled, handle time sum, answered, short abandoned): a
series' running totals."""


class _Due:
    """What a forecast that came due is worked out from, kept until someone reads it (a native
    class: one is made at every sample of a backfill, most never read)."""

    __slots__ = ("now", "point", "samples", "staffed", "step", "waiting")

    def __init__(
        self,
        step: Step,
        staffed: int | None,
        waiting: tuple[float, ...],
        point: Sample,
        samples: list[Sample],
        now: float,
    ) -> None:
        self.step = step
        self.staffed = staffed
        self.waiting = waiting
        """Arrival times of the contacts in queue."""
        self.point = point
        self.samples = samples
        """The series' samples as they were (the forecaster's own, until they next change)."""
        self.now = now


@dataclass(slots=True)
class _Track:
    samples: list[Sample]
    """A list, not a deque: the rise tests walk it by index (:func:`cxmon.forecast.change.candidates`)."""
    forecast: Forecast | None = None
    computed: float = -math.inf
    due: _Due | None = None
    """A forecast that came due and has not been read yet (see :meth:`Forecaster.forecast`)."""
    modelled: list[Threshold] = field(default_factory=list)
    """The thresholds of :attr:`modelled_for` the model projects for the series' channel ..."""
    modelled_for: Step | None = None
    """... worked out once for the step (a config's steps do not change)."""


class Forecaster:
    """Keeps every forecast series' samples and its latest forecast.

    A forecast comes due every RECOMPUTE_EVERY (:meth:`sample`) and is worked out when it is first
    read (:meth:`forecast`), from the totals as they were when it came due: one nobody reads
    before the next comes due (a backfill's minute with no staffing figures) costs nothing.
    """

    def __init__(self, config: Config) -> None:
        """Build a forecaster for the config's ``[forecast]`` table."""
        self.options = config.forecast
        self.short_abandon = config.monitor.short_abandon
        self.formula = config.monitor.service_level_formula
        self.span = max(
            self.options.arrival_span * max(SCAN),
            self.options.handle_span,
            USUAL_SPAN,
            change.LONGEST + change.BEFORE_LONG,
        )
        self.tz = zone(config.display_timezone)
        self.horizon = config.monitor.trend_horizon
        """How far ahead a projection's chance of a breach looks (the detector's horizon)."""
        self._tracks: dict[tuple[str, str, str], _Track] = {}
        self.latest: dict[tuple[str, str, str], Forecast] = {}
        """The forecasts worked out so far (read :meth:`forecast` for the one due now)."""
        self.profiles: Mapping[tuple[str, str], Profile] = {}
        """(channel, queue) → the usual shape of its arrivals over the day, learned from the stored
        history (:class:`cxmon.engine.profiles.ProfileLearner`): the rise tests judge against it."""

    def applies(self, key: tuple[str, str, str]) -> bool:
        """Whether the series' channel is forecast."""
        return self.options.enabled and key[1] in self.options.channels

    def observe(self, key: tuple[str, str, str], step: Step, counts: Counts, now: float) -> Forecast | None:
        """Sample a series' totals and return its forecast (recomputed at most every RECOMPUTE_EVERY).

        Args:
            key: (step, channel, queue).
            step: the series' step (target and thresholds).
            counts: its running totals and staffing.
            now: engine time.
        """
        self.sample(key, step, counts, now)
        return self.forecast(key)

    def sample(self, key: tuple[str, str, str], step: Step, counts: Counts, now: float) -> bool:
        """Sample a series' totals (every SAMPLE_EVERY); return True when its forecast comes due
        (every RECOMPUTE_EVERY): :meth:`forecast` then works it out from the totals as they are now.

        Args:
            key: (step, channel, queue).
            step: the series' step (target and thresholds).
            counts: its running totals and staffing.
            now: engine time.
        """
        if not self.applies(key):
            return False
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = _Track([])
        samples = track.samples
        due = track.computed == -math.inf or now - track.computed >= RECOMPUTE_EVERY
        pending = track.due
        if pending is not None and pending.samples is samples and not due:
            # A forecast that came due and was not read holds the samples, which change now.
            pending.samples = list(samples)
        # The samples' times read from tuples of floats: compiled, a Sample read from the list is
        # unpacked whole, its eight fields checked, to read one.
        times = cast("list[change.Row]", samples)
        if samples and now < times[-1][0]:
            samples.clear()  # time went back (a new replay): start again
        taken = not samples or now - times[-1][0] >= SAMPLE_EVERY
        totals, wait_sum, handled, handle_sum = _running(counts)
        point = (
            now,
            totals[_OFFERED],
            totals[_ABANDONED],
            wait_sum,
            handled,
            handle_sum,
            totals[_ANSWERED],
            totals[_SHORT],
        )
        if taken:
            samples.append(point)
            old = 0
            while len(samples) - old > 2 and times[old + 1][0] <= now - self.span:
                old += 1
            if old:
                del samples[:old]
        if not due:
            return False
        track.computed = now
        track.due = _Due(step, counts.agents_staffed, tuple(counts.waiting.values()), point, samples, now)
        return True

    def next_sample(self, key: tuple[str, str, str]) -> float:
        """Engine time before which :meth:`sample` changes nothing for ``key`` (unless time goes
        back); -inf when it must be called at the next tick."""
        track = self._tracks.get(key)
        if track is None or not track.samples or track.computed == -math.inf:
            return -math.inf
        return min(track.samples[-1][0] + SAMPLE_EVERY, track.computed + RECOMPUTE_EVERY)

    def forecast(self, key: tuple[str, str, str]) -> Forecast | None:
        """The series' forecast as of when it last came due (None: not a forecast series)."""
        track = self._tracks.get(key)
        if track is None:
            return None
        due = track.due
        if due is not None:
            track.due = None
            track.forecast = self.latest[key] = self._compute(key, due)
        return track.forecast

    def modelled(self, key: tuple[str, str, str]) -> Forecast | None:
        """The series' forecast where it may carry the model's figures and projections; None,
        without working it out, where no agents are known (from staffing events or config): such
        a forecast has neither."""
        track = self._tracks.get(key)
        if track is None:
            return None
        due = track.due
        if due is not None and due.staffed is None and key[2] not in self.options.agents:
            return None
        return self.forecast(key)

    def _since(self, samples: Sequence[Sample], now: float, span: float) -> Sample | None:
        """The newest sample at least ``span`` old at ``now``, else the oldest (samples are in
        time order)."""
        if not samples:
            return None
        rows = samples if isinstance(samples, list) else list(samples)
        i = change.upto(cast("list[change.Row]", rows), now - span)
        return samples[i - 1] if i else samples[0]

    def _outcomes(self, samples: Sequence[Sample], point: Sample, now: float, window: float) -> float:
        """The contacts a service-level window of ``window`` seconds counts now (its denominator)."""
        start = self._since(samples, now, window)
        if start is None:
            return 0.0
        return service_level_denominator(
            self.formula, point[6] - start[6], point[2] - start[2], point[7] - start[7]
        )

    def _compute(self, key: tuple[str, str, str], due: _Due) -> Forecast:
        opts = self.options
        step, point, samples, now = due.step, due.point, due.samples, due.now
        target = step.service_level_target
        agents, agents_from = due.staffed, "staffing"
        if agents is None and key[2] in opts.agents:
            agents, agents_from = opts.agents[key[2]], "config"
        goal = next((t.breach for t in step.thresholds if t.measure == "service_level"), None)

        def empty(note: str, rate: float | None = None, aht: float | None = None) -> Forecast:
            return Forecast(
                now, rate, None, aht, None, agents, agents_from, target, None, goal=goal, note=note
            )

        first = self._since(samples, now, opts.arrival_span)
        if first is None or now - samples[0][0] < min(WARM_UP, opts.handle_span):
            return empty("warming up")
        rate = (point[1] - first[1]) / (now - first[0])
        slow = self._since(samples, now, opts.handle_span) or first
        # The usual rate, once it rests on enough history (a few minutes of it would be noise), less
        # a standard error (a queue of a few contacts an hour knows its rate only roughly).
        long = self._since(samples, now, max(USUAL_SPAN, opts.handle_span)) or slow
        usual = point[1] - long[1]
        sure_rate = 0.0
        if now - long[0] >= opts.handle_span / 2:
            sure_rate = max(0.0, usual - math.sqrt(usual)) / (now - long[0])
        for scale in SCAN:
            start = self._since(samples, now, opts.arrival_span * scale) or first
            if now - start[0] >= MIN_SPAN:
                n = point[1] - start[1]
                sure_rate = max(sure_rate, max(0.0, n - SURE * math.sqrt(n)) / (now - start[0]))
        handled = point[4] - slow[4]
        aht = (point[5] - slow[5]) / handled if handled >= MIN_HANDLED else None
        if aht is None or aht <= 0:
            return empty("too few handled contacts to know the handle time", rate)
        if agents is None:
            return empty("no staffing figures", rate, aht)
        abandons = point[2] - slow[2]
        waited = point[3] - slow[3]
        patience = waited / abandons if abandons >= opts.min_abandons and waited > 0 else None
        work = Workload(rate, aht, patience)
        figures = evaluate(work, agents, target)
        track = self._tracks[key]
        if track.modelled_for is not step:
            track.modelled = [
                th for th in step.thresholds if th.measure in MODELLED and _channel_applies(th, key[1])
            ]
            track.modelled_for = step
        modelled = track.modelled
        # Arrivals that surely rose above the usual rate are projected at the rate since they rose:
        # what the queue will face while it lasts (the bounds worked out above answer "how low could the rate
        # be", and stay under a surge's rate until long after it began).
        rests_on = ""
        profile = self.profiles.get((key[1], key[2]))
        usual_for = " usual" if profile is None else " usual for the time of day"
        spans = change.candidates(samples, now, point[1], 1, profile)
        rose = change.rise(samples, now, point[1], 1, opts.rise_score, profile, spans)
        if rose is None or rose.rate <= sure_rate:
            # Not surely another rate: but are the arrivals at the rate these agents break at?
            # The lowest such rate is looked for only when the arrivals could tell it.
            floor = sure_rate

            def rate_that_breaks() -> float | None:
                return breaking_rate(
                    modelled, aht, patience, agents, target, figures.model, floor, self.formula
                )

            rose = change.breaking(
                samples,
                now,
                point[1],
                1,
                rate_that_breaks,
                opts.breaking_score,
                opts.breaking_tolerance,
                profile,
                spans,
            )
        if rose is not None and rose.rate > sure_rate:
            sure_rate = rose.rate
            since = when(rose.since, self.tz).strftime("%H:%M")
            rests_on = f"arrivals {rose.factor:.1f}×{usual_for} since {since}"
            if rose.breaking > 0 and rose.rate < rose.breaking:
                # Under the breaking rate, near it: two places tell the two apart.
                rests_on = f"arrivals {rose.factor:.2f}×{usual_for} since {since}"
                rests_on += f", near the {rose.breaking / rose.usual:.2f}× that breaches"
            elif rose.breaking > 0:
                rests_on += f", past the {rose.breaking / rose.usual:.1f}× that breaches"
        sure_work = Workload(sure_rate, aht, patience)
        waits = transient.waits_of(due.waiting, now)
        prior = track.forecast  # its answers are where the searches look first
        projections = []
        for_all = ForAll()
        for th in modelled:
            # In the window's own terms (its service-level formula).
            project = projector(th.measure, work, target, figures.model, self.formula)
            project_sure = projector(th.measure, sure_work, target, figures.model, self.formula)
            if project is None or project_sure is None:
                continue
            # The steady states and the projection from the queue's state are worked out when
            # first read: the detector reads few of them (the agents needed are read every minute).
            exits_from = None
            if th.measure == "service_level" and waits:
                # The queue's state is followed in arrivals: the share of all of them answered in time.
                settles = projector(th.measure, sure_work, target, figures.model)
                assert settles is not None
                exits_from = (waits, aht, patience, sure_rate, self.short_abandon, settles)
            steady = _steady(
                th,
                project,
                project_sure,
                agents,
                sure_rate,
                target,
                exits_from,
                opts.breach_chance > 0.0,
            )
            clear = clear_of(th, project, work)
            for_all.checks.append(clear)
            projections.append(
                Projection.deferred(
                    steady,
                    needed_search(clear, agents, guess(prior, th, work.load), for_all),
                    measure=th.measure,
                    window=th.window,
                    breach=th.breach,
                    direction=th.direction,
                    agents=agents,
                    model=figures.model,
                    computed=now,
                    waits=waits,
                    outcomes=self._outcomes(samples, point, now, th.window),
                    formula=self.formula,
                    rests_on=rests_on,
                    chance_level=opts.breach_chance,
                    horizon=self.horizon,
                )
            )
        # The agents every threshold needs are the fewest that keep all of them clear (each
        # check holds for every count above one that passes): one search, where the minute
        # figures read nothing else; each threshold's own answer is worked out when read.
        needed = None
        if for_all.checks:
            needed = for_all.needed = fewest(for_all.clear, agents, last_needed_all(prior, work.load))
        if needed is None:
            # No count the search looks at keeps them all clear: the most any one of them needs.
            needed_all = [p.agents_needed for p in projections if p.agents_needed is not None]
            needed = max(needed_all) if needed_all else None
        return Forecast(
            now,
            rate,
            sure_rate,
            aht,
            patience,
            agents,
            agents_from,
            target,
            figures,
            tuple(projections),
            goal,
            needed,
        )


def _running(counts: Counts) -> tuple[list[int], float, int, float]:
    """(totals, wait sum, handled, handle time sum): a native series' fields read directly (through
    the protocol each is looked up by name), its bins added in a typed loop (sum() calls Python)."""
    if isinstance(counts, Series):
        # The same reads, narrowed: compiled, each is a native attribute here, a lookup by name below.
        return counts.totals, counts.wait_hist_sum, _added(counts.res_hist), counts.res_hist_sum
    return counts.totals, counts.wait_hist_sum, _added(counts.res_hist), counts.res_hist_sum


def _added(values: list[int]) -> int:
    total = 0
    for value in values:
        total += value
    return total


def _steady(
    th: Threshold,
    project: Callable[[int], float],
    project_sure: Callable[[int], float],
    agents: int,
    sure_rate: float,
    target: float,
    exits_from: tuple[tuple[float, ...], float, float | None, float, float, Callable[[int], float]] | None,
    chance: bool = False,
) -> Steady:
    """What works out each part of a threshold's projection (projected, sure, exits, risk) when it
    is first read: the detector mostly reads ``sure`` alone.

    ``exits_from`` is (waits, handle time, patience, arrival rate, short abandon, the share of all
    arrivals answered in time as a function of the agents) where contacts are waiting on a service
    level, else None; ``chance``: whether the chance of a breach within
    the horizon (risk) is asked for.
    """

    def work_out(name: str) -> float | transient.ExitSteps | tuple[float, float] | None:
        if name == "projected":
            return project(agents)
        if name == "sure":
            sure = project_sure(agents)
            if MEASURES[th.measure].kind == "ratio" and 0.0 < sure < 1.0:
                outcomes = max(1.0, sure_rate * th.window)
                spread = math.sqrt(DISPERSION * sure * (1.0 - sure) / outcomes)
                sure = sure - spread if th.direction == "below" else sure + spread
            return sure
        if name == "risk":
            if not chance or MEASURES[th.measure].kind != "ratio":
                return (0.0, 0.0)
            # Each contact to come meets the mark as the model says at the confident rate: how
            # likely the window is to stray past the breach within the horizon.
            outcomes = max(1.0, sure_rate * th.window)
            return noise.window_breach_outlook(
                project_sure(agents), outcomes, CHANCE_DISPERSION, th.breach, th.direction, th.window
            )
        if exits_from is None:
            return None
        # Contacts are waiting: where they take the window comes before any steady state.
        # The arrivals to come are counted at the confident rate, as the steady state's are.
        waits, aht, patience, arrivals, short_abandon, settles = exits_from
        settled = settles(agents)
        state = transient.QueueState(waits, agents, aht, patience, arrivals, min(1.0, max(0.0, settled)))
        return transient.ExitSteps(state, target, short_abandon, th.window)

    return work_out


def _channel_applies(th: Threshold, channel: str) -> bool:
    return th.channel == "*" or fnmatch.fnmatchcase(channel, th.channel)
