"""The pot-hole detector: OK → WATCH → POTHOLE per threshold, series and step, with readable reasons.

Per (series, threshold) a small state machine runs on each tick:

- POTHOLE when the measure has been past ``breach`` for at least ``for``; it stays a pot hole until
  the measure is back past ``clear`` (hysteresis), so a value hovering at the breach line cannot
  make an alert storm.
- WATCH when the measure is past ``warn``, is past ``breach`` but not yet for long enough, or its
  recent trend projects a breach within ``monitor.trend_horizon``. WATCH drops back to OK only after
  the condition has been gone for ``for`` (so WATCH does not flicker either).
- WATCH is worth a floor manager's attention: a share or score past ``warn`` counts at once only
  when it is past it beyond its noise (what it rests on: 40 calls, 12 surveys; see
  :mod:`cxmon.noise`, ``monitor.warn_confidence``), else once it has lasted a window, or when its
  series is WATCH already; a trend projects only when its slope stands out of its residuals and
  its sampling noise (``monitor.trend_confidence``).
- A series takes its worst threshold; a step takes its worst series. A step whose sources are all
  silent is STALE whatever its figures say: unknown is never shown as OK.

What a rule keeps between judgements (its fields, its last verdict, the texts of its last value) is
in :mod:`cxmon.rule_state`. Over 500 lines for a reason: a rule's state machine is one method
(``_judge``), its transitions side by side, where splitting it would hide each from the others.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Mapping
from typing import Final

from cxmon.config import Config, Step, Threshold
from cxmon.forecast.baseline import Baselines
from cxmon.forecast.breach import Projection
from cxmon.forecast.live import RECOMPUTE_EVERY
from cxmon.forecast.result import Forecast
from cxmon.measures import denominator, format_value, volume
from cxmon.noise import beyond_noise, quantile_chance
from cxmon.reason_text import compared, shown_limit, versus
from cxmon.rule_state import (
    OK_VERDICT,
    Line,
    RuleState,
    Verdict,
    same_value,
    shown_value,
    verdict_of,
    versus_breach_text,
)
from cxmon.snapshot import SeriesKey, State, Transition
from cxmon.trend import TREND_SAMPLE, TREND_SPAN, slope, towards_breach, trend_moves
from cxmon.units import format_duration

Tails = Callable[[float, str, float, str], tuple[int, int]]
"""(window, percentile measure, limit, bad direction) → (how many of the window's values are past
the limit on that side, how many values it holds): what a percentile's noise is judged from."""


# Imported constants as this module's own Final ones: compiled, an imported name is a look-up in
# the module's dict at each use.
_SAMPLE: Final = TREND_SAMPLE
_SPAN: Final = TREND_SPAN
_RECOMPUTE: Final = RECOMPUTE_EVERY

# The states as module constants: compiled, each ``State.X`` is an attribute lookup on the enum.
_OK: Final = State.OK
_WATCH: Final = State.WATCH
_POTHOLE: Final = State.POTHOLE
_SEVERITY: Final[dict[State, int]] = {state: state.severity for state in State}
"""Each state's :attr:`State.severity`, read without calling the property."""


class Detector:
    """Judges every series against its step's thresholds, and rolls states up per step."""

    def __init__(self, config: Config) -> None:
        """Build a detector for the config's steps and thresholds."""
        self.config = config
        self.horizon = config.monitor.trend_horizon
        self.warn_confidence = config.monitor.warn_confidence
        self.trend_confidence = config.monitor.trend_confidence
        self.formula = config.monitor.service_level_formula
        self.baselines = Baselines(config)
        """What is usual per series and hour of the week; worse than usual is a WATCH reason."""
        self.rules: dict[tuple[SeriesKey, int], RuleState] = {}
        self._series_rules: dict[SeriesKey, list[RuleState | None]] = {}
        """Series → its rules by threshold index (None: not judged yet), the RuleStates of
        :attr:`rules`: read by index, not by a (series, index) key hashed at every look."""
        self.series_state: dict[SeriesKey, State] = {}
        """Each series' state when last judged: a figure past ``warn`` within its noise keeps a
        series WATCH that already is (raising the alarm takes evidence, keeping it does not)."""
        self.step_state: dict[str, State] = {s.name: _OK for s in config.steps}
        self._lines: dict[str, tuple[Step, tuple[Line, ...]]] = {}
        """Step → its thresholds as judging reads them (see :class:`Line`)."""
        self.step_since: dict[str, float] = {}
        self.step_reason: dict[str, str] = {}
        self.sample_ticks: deque[float] = deque()
        """Times of the ticks that opened a trend-sample slot (the first tick in each
        TREND_SAMPLE seconds of engine time), recent ones only: a rule judged again after ticks
        that skipped it takes the samples it would have taken at them (its value was the same)."""

    def judge_rule(
        self,
        key: SeriesKey,
        idx: int,
        th: Threshold,
        value: float | None,
        now: float,
        projection: Projection | None = None,
        n: float | None = None,
        raised: bool = False,
        tails: Tails | None = None,
    ) -> Verdict:
        """Advance one threshold's state machine and return its verdict.

        ``projection`` is the staffing model's view of the threshold: where it applies, a breach it
        projects within the horizon turns the rule WATCH in place of the trend. ``n`` is what a
        share or score rests on (its denominator in the window): past ``warn`` within its noise is
        no WATCH unless it lasts a window (and ``for``), or ``raised``: the series is WATCH
        already, for this threshold or another. Without ``n`` a
        value past ``warn`` is simply past it. A percentile's noise is judged from ``tails``
        (how many of the window's values are past the line; :func:`cxmon.noise.quantile_chance`);
        without it a percentile past ``warn`` is simply past it too.

        A rule need not be judged at every tick: at ticks where its value is unchanged and
        :attr:`RuleState.due` has not come, the verdict would be the same. Its trend samples of
        those ticks are taken when it is next judged, so the outcome is the same either way.
        """
        return self._judge(self._rule(key, idx), key, th, value, now, projection, n, raised, tails)

    def _rule(self, key: SeriesKey, idx: int) -> RuleState:
        """The state of threshold ``idx`` on series ``key``, made on first use."""
        rules = self._series_rules.get(key)
        if rules is None:
            rules = self._series_rules[key] = []
        while len(rules) <= idx:
            rules.append(None)
        rs = rules[idx]
        if rs is None:
            rs = rules[idx] = self.rules[(key, idx)] = RuleState()
        return rs

    def _rules_of(self, key: SeriesKey, step: Step) -> list[RuleState | None]:
        """The states of the series' rules by threshold index (None: not judged yet), as many as
        ``step`` has thresholds."""
        rules = self._series_rules.get(key)
        if rules is None:
            return []
        count = len(step.thresholds)
        return rules if len(rules) <= count else rules[:count]

    def _judge(
        self,
        rs: RuleState,
        key: SeriesKey,
        th: Threshold,
        value: float | None,
        now: float,
        projection: Projection | None,
        n: float | None,
        raised: bool,
        tails: Tails | None,
    ) -> Verdict:
        """:meth:`judge_rule` of the rule whose state is ``rs``."""
        line = rs.line
        if line is None or line.th is not th:
            line = rs.line = Line(th)
            rs.shown_for = math.nan
        samples = rs.samples
        if rs.value is not None and rs.judged_at is not None:
            self._missed_samples(rs, now)
        rs.value = value
        rs.judged_at = now
        rs.due = math.inf
        rs.every = rs.calm = rs.held = False
        rs.n = n
        label = line.label
        measure = line.measure
        if value is None:
            rs.breach_since = rs.warn_since = None
            rs.calm_since = None
            samples.clear()
            if projection is not None:
                # Too few contacts to judge the window is no reason to forget what the model
                # says of the ones to come (a quiet spell after agents left is the calm before it).
                rs.due = projection.computed + _RECOMPUTE
                eta = projection.eta(None)
                if eta is not None and eta <= self.horizon:
                    rs.state = _WATCH
                    rs.reason = projection.reason(eta, projection.crossing(None))
                    return verdict_of(rs, _WATCH, rs.reason, measure, None, 1.0)
            rs.state = _OK
            return verdict_of(rs, _OK, line.too_few, measure, None, 0.0)
        if not samples or now // _SAMPLE > samples[-1][0] // _SAMPLE:
            samples.append((now, value))
            while samples[0][0] < now - _SPAN:  # only the trend's span is ever read
                samples.popleft()
        if not same_value(value, rs.shown_for):
            # A new value: the texts that show the last one are worked out again when needed.
            rs.shown_for = value
            rs.fmt = rs.plain = rs.versus_breach = rs.versus_warn = ""
        breach = line.breach
        badness = abs(value - breach) / abs(breach) if breach else abs(value)

        breached = line.worse(value, breach)
        if breached:
            if rs.breach_since is None:
                rs.breach_since = now
        else:
            rs.breach_since = None
        warn = line.warn
        past_warn = breached or (warn is not None and line.worse(value, warn))
        if past_warn:
            if rs.warn_since is None:
                rs.warn_since = now
        else:
            rs.warn_since = None

        if rs.state is _POTHOLE:
            cleared = not line.worse(value, line.clear) and value != line.clear
            if not cleared:
                held = now - (rs.breach_since if rs.breach_since is not None else now)
                rs.every = breached  # "for …" grows with every tick
                if breached:
                    reason = versus_breach_text(rs, line)
                    if held:
                        reason = f"{reason} for {format_duration(held)}"
                else:
                    clear = shown_limit(measure, line.clear)
                    text = compared(measure, value, line.clear)
                    reason = (
                        f"{label} at {clear}, not yet back past it"
                        if text == "at"
                        else f"{label} {text}, not yet back past {clear}"
                    )
                rs.reason = reason
                return verdict_of(rs, _POTHOLE, reason, measure, value, 2.0 + badness)
            rs.state = _WATCH
            rs.calm_since = None

        if breached and now - (rs.breach_since if rs.breach_since is not None else now) >= line.for_:
            rs.state = _POTHOLE
            held = now - (rs.breach_since if rs.breach_since is not None else now)
            reason = f"{versus_breach_text(rs, line)} for {format_duration(held)}"
            rs.reason = reason
            rs.every = True
            return verdict_of(rs, _POTHOLE, reason, measure, value, 2.0 + badness)

        watch_reason = within_noise = shown = ""
        # Past warn (or breach) counts at once when it is beyond the figure's noise, else once it
        # has lasted a whole window (and at least ``for``): one bad minute stays in a window for
        # the window's length, so a chance dip lasts that long too.
        pending = False
        quantile = line.quantile
        if past_warn:
            limit = breach if warn is None else warn
            since = rs.warn_since if rs.warn_since is not None else now
            lasts = line.lasts
            over = n
            if quantile is not None and tails is not None and not raised and now - since < lasts:
                past, count = tails(line.window, measure, limit, line.direction)
                over = count
                beyond = quantile_chance(quantile, line.direction, past, count) < 1.0 - self.warn_confidence
            else:
                beyond = beyond_noise(measure, line.direction, value, n, limit, self.warn_confidence)
            if not raised and now - since < lasts and not beyond:
                pending = rs.held = True
                rs.due = since + lasts
                if breached and rs.breach_since is not None:
                    # Held back as WATCH, a breach still becomes a pot hole once it lasts ``for``.
                    rs.due = min(rs.due, rs.breach_since + line.for_)
                shown = compared(measure, value, limit)
                if shown == "at":
                    shown = ""
                name = "breach" if warn is None else "warn"
                # Shown with the value, so the detail pane says why a figure past a line is no WATCH.
                within_noise = (
                    f" (past {name} {shown_limit(measure, limit)} within its noise over {over or 0:.0f};"
                    f" WATCH if it lasts {format_duration(lasts)})"
                )
        if breached and not pending:
            watch_reason = versus_breach_text(rs, line) + line.if_lasts
            rs.due = (rs.breach_since if rs.breach_since is not None else now) + line.for_
        elif warn is not None and past_warn and not pending:
            if not rs.versus_warn:
                rs.versus_warn = versus(label, measure, value, line.op, warn, line.warn_text)
            watch_reason = rs.versus_warn
        elif unusual := self._unusual(rs, key, th, value, now):
            watch_reason = unusual
        elif projection is not None:
            # The forecast is worked out again every RECOMPUTE_EVERY: look again then.
            rs.due = min(rs.due, projection.computed + _RECOMPUTE)
            eta = projection.eta(value)
            if eta is not None and eta <= self.horizon:
                watch_reason = projection.reason(eta, projection.crossing(value))
        elif pending and quantile is not None:
            # Held within its noise, a percentile is not extrapolated either: its slope has no
            # sampling-noise model, and a line fits a figure that wanders near the line it is held at.
            pass
        else:
            rs.due = min(rs.due, trend_moves(rs.samples, value, now))
            s = towards_breach(rs.samples, th, value, now, self.horizon, self.trend_confidence, n)
            if s is not None:
                eta = (breach - value) / s
                rate = format_value(measure, abs(s) * 60) if not line.ratio else (f"{abs(s) * 6000:.1f} pts")
                word = "rising" if s > 0 else "falling"
                fmt = shown or shown_value(rs, line)
                watch_reason = (
                    f"{label} {fmt} {word} {rate}/min: {line.limit} in ~{format_duration(max(eta, 0))}"
                )
        if watch_reason:
            rs.state = _WATCH
            rs.calm_since = None
            rs.reason = watch_reason
            return verdict_of(rs, _WATCH, watch_reason, measure, value, 1.0 + badness)
        if rs.state is _WATCH:
            if rs.calm_since is None:
                rs.calm_since = now
            if now - rs.calm_since < max(line.for_, 1e-9):
                rs.due = min(rs.due, rs.calm_since + max(line.for_, 1e-9))
                rs.calm = not pending
                fmt = shown or shown_value(rs, line)
                return verdict_of(
                    rs,
                    _WATCH,
                    f"{label} {fmt}{within_noise}, recovering (was: {rs.reason})",
                    measure,
                    value,
                    1.0,
                )
        rs.state = _OK
        rs.calm_since = None
        rs.calm = not pending
        if within_noise:
            reason = f"{label} {shown or shown_value(rs, line)}{within_noise}"
        else:
            if not rs.plain:
                rs.plain = f"{label} {shown_value(rs, line)}"
            reason = rs.plain
        return verdict_of(rs, _OK, reason, measure, value, 0.0)

    def retrend(self, key: SeriesKey, step: Step, now: float) -> bool:
        """Take the trend samples of a series whose figures did not change, and say whether its
        verdict stands without judging it again: True when every threshold whose time came was
        calm (no trend towards a breach) and stays so, and none of their timers ran out.

        What this does is the first part of judging those thresholds; when it returns False the
        series must be judged (:meth:`judge_series`), which carries on from here.
        """
        rules = self._rules_of(key, step)
        for idx, th in enumerate(step.thresholds):
            rs = rules[idx] if idx < len(rules) else None
            if rs is None or rs.due > now:
                continue
            value = rs.value
            if not rs.calm or value is None or rs.awaits_forecast:
                return False
            if rs.state is _WATCH and rs.calm_since is not None and now - rs.calm_since >= max(th.for_, 1e-9):
                return False  # recovered: the verdict changes
            self._missed_samples(rs, now)
            rs.judged_at = now
            samples = rs.samples
            if not samples or now // _SAMPLE > samples[-1][0] // _SAMPLE:
                samples.append((now, value))
                while samples[0][0] < now - _SPAN:
                    samples.popleft()
            if towards_breach(samples, th, value, now, self.horizon, self.trend_confidence, rs.n) is not None:
                return False  # a trend towards a breach: the verdict changes
            due = trend_moves(samples, value, now)
            if rs.state is _WATCH and rs.calm_since is not None:
                due = min(due, rs.calm_since + max(th.for_, 1e-9))
            rs.due = due
        return True

    def _missed_samples(self, rs: RuleState, now: float) -> None:
        """Take the trend samples of the ticks since ``rs`` was last judged, at its last value."""
        ticks = self.sample_ticks
        last = rs.judged_at
        if not ticks or last is None or ticks[-1] <= last:
            return
        value = rs.value
        assert value is not None
        samples = rs.samples
        for i in range(bisect_right(ticks, last), len(ticks)):
            at = ticks[i]
            if at >= now:
                break
            if not samples or at // _SAMPLE > samples[-1][0] // _SAMPLE:
                samples.append((at, value))
                while samples[0][0] < at - _SPAN:
                    samples.popleft()

    def _unusual(self, rs: RuleState, key: SeriesKey, th: Threshold, value: float, now: float) -> str:
        """The baselines' "worse than usual" reason (or ""), with the rule's next look no later
        than when that answer can change for the same value (its ``for`` ends, a new hour's slot)."""
        reason = self.baselines.worse_reason(key, th, value, now)
        rs.due = min(rs.due, self.baselines.next_look(key, th, now))
        return reason

    def due(self, key: SeriesKey, step: Step) -> tuple[float, bool]:
        """When a series' verdict can next change with its figures unchanged, and whether it
        changes with every tick (see :attr:`RuleState.due` and :attr:`RuleState.every`)."""
        at, every = math.inf, False
        for rs in self._rules_of(key, step):
            if rs is None:
                continue
            if rs.every:
                every = True
            if rs.due < at:
                at = rs.due
        return at, every

    def judge_series(
        self,
        key: SeriesKey,
        step: Step,
        figures: Mapping[float, Mapping[str, float | None]],
        instant: Mapping[str, float | None],
        now: float,
        forecast: Forecast | None = None,
        tails: Tails | None = None,
    ) -> Verdict:
        """Judge one series against every threshold of its step that applies to its channel
        (``tails``: the series' percentile tails, see :meth:`judge_rule`)."""
        worst = OK_VERDICT
        first: Verdict | None = None
        raised = self.series_state.get(key, _OK) is not _OK
        lines = self._lines.get(step.name)
        if lines is None or lines[0] is not step:
            lines = self._lines[step.name] = (step, tuple(Line(th) for th in step.thresholds))
        channel = key[1]
        for idx, line in enumerate(lines[1]):
            th = line.th
            if not line.applies(channel):
                continue
            measure = line.measure
            # ``in`` then ``[]``: ``get`` on the read-only views the tick hands over is two method calls.
            value: float | None = None
            wf: Mapping[str, float | None] | None = None
            if line.windowed:
                window = line.window
                if window in figures:
                    wf = figures[window]
                    if measure in wf:
                        value = wf[measure]
                        if value is not None and line.min_volume and volume(measure, wf) < line.min_volume:
                            value = None
            elif measure in instant:
                value = instant[measure]
            projection = None if forecast is None else forecast.projection(th)
            n = None
            if value is not None and wf is not None:
                n = denominator(measure, wf, self.formula)
            rs = self._rule(key, idx)
            verdict = self._judge(rs, key, th, value, now, projection, n, raised, tails)
            if projection is not None and instant.get("waiting_now"):
                # The next forecast projects from the contacts waiting then, who get no event as they
                # wait: its verdict can change with nothing else changing, so it is judged again.
                rs.calm = False
            rs.awaits_forecast = projection is None and forecast is not None and line.modelled
            if rs.awaits_forecast and forecast is not None:
                rs.due = min(rs.due, forecast.ts + _RECOMPUTE)
            if first is None:
                first = verdict
            rank, worst_rank = _SEVERITY[verdict.state], _SEVERITY[worst.state]
            if rank > worst_rank or (rank == worst_rank and verdict.badness > worst.badness):
                worst = verdict
        self.series_state[key] = worst.state
        if not raised and worst.state is not _OK:
            # The series is raised now, and a figure held back within its noise no longer is: judged
            # again, its verdict changes with nothing else changing, so it is looked at next tick.
            for held in self._rules_of(key, step):
                if held is not None and held.held:
                    held.due, held.calm = now, False
        if worst is OK_VERDICT and first is not None:
            return first
        return worst

    def roll_up(
        self,
        step: Step,
        verdicts: Mapping[SeriesKey, Verdict],
        stale: bool,
        stale_reason: str,
        now: float,
    ) -> tuple[State, str, Transition | None]:
        """Return a step's state (worst series wins; STALE overrides), its reason, and any transition.

        A transition names the series that drives the step (its worst one) in ``channel`` and
        ``queue``; both are empty when no series does (STALE, or no contacts yet).
        """
        channel = queue = ""
        name = step.name
        if stale:
            state, reason, measure, value = State.STALE, stale_reason, "", None
        else:
            # The first of the worst, in the series' order (as max keeps the first of equals); a
            # loop, not max with a key function (a Python call per series, compiled).
            worst: Verdict | None = None
            worst_key: SeriesKey | None = None
            worst_rank = 0
            for key, v in verdicts.items():
                rank = _SEVERITY[v.state]
                if worst is None or rank > worst_rank or (rank == worst_rank and v.badness > worst.badness):
                    worst, worst_key, worst_rank = v, key, rank
            if worst is None or worst_key is None:
                state, reason, measure, value = _OK, "no contacts yet", "", None
            else:
                v = worst
                state, measure, value = v.state, v.measure, v.value
                channel, queue = worst_key[1], worst_key[2]
                reason = v.reason if len(verdicts) == 1 else f"{channel}/{queue}: {v.reason}"
        previous = self.step_state.get(name, _OK)
        self.step_reason[name] = reason
        if name not in self.step_since:
            self.step_since[name] = now
        if state is previous:
            return state, reason, None
        self.step_state[name] = state
        self.step_since[name] = now
        return (
            state,
            reason,
            Transition(
                ts=now,
                step=name,
                channel=channel,
                queue=queue,
                from_state=previous,
                to_state=state,
                reason=reason,
                measure=measure,
                value=value,
            ),
        )


__all__ = [
    "OK_VERDICT",
    "TREND_SAMPLE",
    "TREND_SPAN",
    "Detector",
    "RuleState",
    "Verdict",
    "compared",
    "slope",
]
