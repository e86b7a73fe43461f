"""The pot-hole detector: OK → WATCH → POTHOLE per threshold, series and step, with readable reasons.

Per (series, threshold) a small state machine runs on each tick:

- POTHOLE when the measure has been past ``breach`` for at least ``for``; it stays a pot hole until
  the measure is back past ``clear`` (hysteresis), so a value hovering at the breach line cannot
  make an alert storm.
- WATCH when the measure is past ``warn``, is past ``breach`` but not yet for long enough, or its
  recent trend projects a breach within ``monitor.trend_horizon``. WATCH drops back to OK only after
  the condition has been gone for ``for`` (so WATCH does not flicker either).
- A series takes its worst threshold; a step takes its worst series. A step whose sources are all
  silent is STALE whatever its figures say: unknown is never shown as OK.
"""

from __future__ import annotations

import fnmatch
import math
from bisect import bisect_right
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from cxmon.config import Config, Step, Threshold
from cxmon.forecast.baseline import Baselines
from cxmon.forecast.breach import Projection
from cxmon.forecast.live import MODELLED, RECOMPUTE_EVERY
from cxmon.forecast.result import Forecast
from cxmon.measures import MEASURES, format_value, volume
from cxmon.snapshot import SeriesKey, State, Transition
from cxmon.units import format_duration

TREND_SPAN = 300.0
"""Seconds of history the trend is fitted over."""
TREND_MIN_POINTS = 5
TREND_SAMPLE = 10.0
"""Seconds between trend samples."""


@dataclass(slots=True)
class RuleState:
    """State of one threshold on one series."""

    state: State = State.OK
    breach_since: float | None = None
    calm_since: float | None = None
    reason: str = ""
    samples: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=64))
    value: float | None = None
    """The value last judged."""
    judged_at: float | None = None
    """When it was last judged."""
    due: float = math.inf
    """When judging it again with the same value can next give another verdict (a ``for`` timer,
    the trend moving); inf when only a new value can."""
    every: bool = False
    """Its verdict changes with every tick while it lasts (a pot hole's "for 3m05s")."""
    calm: bool = False
    """Its last verdict came from a trend that projects no breach (OK, or WATCH recovering)."""
    awaits_forecast: bool = False
    """The staffing model covers its measure but had no projection yet: the verdict can change when
    the forecast is next worked out (``due`` is then)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """A state with its reason, and the figures behind it."""

    state: State
    reason: str
    measure: str = ""
    value: float | None = None
    badness: float = 0.0
    """How far past its limit (relative), to rank verdicts of the same state."""


OK_VERDICT = Verdict(State.OK, "within bounds")


def _label(th: Threshold) -> str:
    return MEASURES[th.measure].label


def compared(measure: str, value: float, limit: float) -> str:
    """Return ``value`` with enough precision to tell it apart from ``limit`` as shown.

    ``service level 85% < warn 85%`` reads as a contradiction: 84.6 % is shown as ``84.6%`` instead. A
    value that no sensible precision separates from its limit comes back as ``"at"``, for "at 85%".
    """
    text = format_value(measure, value)
    if text != format_value(measure, limit):
        return text
    kind = MEASURES[measure].kind
    scale, unit = {"ratio": (100.0, "%"), "duration": (1.0, "s")}.get(kind, (1.0, ""))
    for digits in (1, 2, 3):
        text = f"{value * scale:.{digits}f}{unit}"
        if text != f"{limit * scale:.{digits}f}{unit}":
            return text
    return "at"


def _versus(label: str, measure: str, value: float, op: str, limit: float, limit_text: str) -> str:
    """``"wait p90 1m01s > 1m"``, or ``"service level at 85%"`` when the two cannot be told apart."""
    text = compared(measure, value, limit)
    return f"{label} at {limit_text}" if text == "at" else f"{label} {text} {op} {limit_text}"


def slope(samples: deque[tuple[float, float]], now: float) -> float | None:
    """Least-squares slope (units per second) of samples in the last TREND_SPAN seconds."""
    cutoff = now - TREND_SPAN
    pts = [p for p in samples if p[0] >= cutoff]
    n = len(pts)
    if n < TREND_MIN_POINTS or pts[-1][0] - pts[0][0] < 60.0:
        return None
    first = pts[0][1]
    if all(p[1] == first for p in pts):
        return 0.0  # flat, exactly (the sums below could leave a rounding residue)
    # One pass over the sums, with time measured from the first point (keeps them small).
    t0 = pts[0][0]
    st = sv = stt = stv = 0.0
    for t, v in pts:
        t -= t0
        st += t
        sv += v
        stt += t * t
        stv += t * v
    den = stt - st * st / n
    if den <= 0:
        return None
    return (stv - st * sv / n) / den


class Detector:
    """Judges every series against its step's thresholds, and rolls states up per step."""

    def __init__(self, config: Config) -> None:
        """Build a detector for the config's steps and thresholds."""
        self.config = config
        self.horizon = config.monitor.trend_horizon
        self.baselines = Baselines(config)
        """What is usual per series and hour of the week; worse than usual is a WATCH reason."""
        self.rules: dict[tuple[SeriesKey, int], RuleState] = {}
        self.step_state: dict[str, State] = {s.name: State.OK for s in config.steps}
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
    ) -> Verdict:
        """Advance one threshold's state machine and return its verdict.

        ``projection`` is the staffing model's view of the threshold: where it applies, a breach it
        projects within the horizon turns the rule WATCH in place of the trend.

        A rule need not be judged at every tick: at ticks where its value is unchanged and
        :attr:`RuleState.due` has not come, the verdict would be the same. Its trend samples of
        those ticks are taken when it is next judged, so the outcome is the same either way.
        """
        rs = self.rules.get((key, idx))
        if rs is None:
            rs = self.rules[(key, idx)] = RuleState()
        samples = rs.samples
        if rs.value is not None and rs.judged_at is not None:
            self._missed_samples(rs, now)
        rs.value, rs.judged_at, rs.due, rs.every, rs.calm = value, now, math.inf, False, False
        label = _label(th)
        if value is None:
            rs.breach_since = None
            rs.calm_since = None
            samples.clear()
            if projection is not None:
                # Too few contacts to judge the window is no reason to forget what the model
                # says of the ones to come (a quiet spell after agents left is the calm before it).
                rs.due = projection.computed + RECOMPUTE_EVERY
                eta = projection.eta(None)
                if eta is not None and eta <= self.horizon:
                    rs.state = State.WATCH
                    rs.reason = projection.reason(eta)
                    return Verdict(State.WATCH, rs.reason, th.measure, None, 1.0)
            rs.state = State.OK
            return Verdict(State.OK, f"{label}: too few contacts to judge", th.measure, None)
        if not samples or now // TREND_SAMPLE > samples[-1][0] // TREND_SAMPLE:
            samples.append((now, value))
            while samples[0][0] < now - TREND_SPAN:  # only the trend's span is ever read
                samples.popleft()
        fmt = format_value(th.measure, value)
        limit = format_value(th.measure, th.breach)
        op = ">" if th.direction == "above" else "<"
        badness = abs(value - th.breach) / abs(th.breach) if th.breach else abs(value)

        breached = th.worse(value, th.breach)
        if breached:
            if rs.breach_since is None:
                rs.breach_since = now
        else:
            rs.breach_since = None

        if rs.state is State.POTHOLE:
            cleared = not th.worse(value, th.clear) and value != th.clear
            if not cleared:
                held = now - (rs.breach_since if rs.breach_since is not None else now)
                reason = _versus(label, th.measure, value, op, th.breach, limit) + (
                    f" for {format_duration(held)}" if held else ""
                )
                rs.every = breached  # "for …" grows with every tick
                if not breached:
                    clear = format_value(th.measure, th.clear)
                    text = compared(th.measure, value, th.clear)
                    reason = (
                        f"{label} at {clear}, not yet back past it"
                        if text == "at"
                        else f"{label} {text}, not yet back past {clear}"
                    )
                rs.reason = reason
                return Verdict(State.POTHOLE, reason, th.measure, value, 2.0 + badness)
            rs.state = State.WATCH
            rs.calm_since = None

        if breached and now - (rs.breach_since if rs.breach_since is not None else now) >= th.for_:
            rs.state = State.POTHOLE
            held = now - (rs.breach_since if rs.breach_since is not None else now)
            reason = f"{_versus(label, th.measure, value, op, th.breach, limit)} for {format_duration(held)}"
            rs.reason = reason
            rs.every = True
            return Verdict(State.POTHOLE, reason, th.measure, value, 2.0 + badness)

        watch_reason = ""
        if breached:
            watch_reason = (
                f"{_versus(label, th.measure, value, op, th.breach, limit)}"
                f" (pot hole if it lasts {format_duration(th.for_)})"
            )
            rs.due = (rs.breach_since if rs.breach_since is not None else now) + th.for_
        elif th.warn is not None and th.worse(value, th.warn):
            warn = f"warn {format_value(th.measure, th.warn)}"
            watch_reason = _versus(label, th.measure, value, op, th.warn, warn)
        elif unusual := self.baselines.worse_reason(key, th, value, now):
            watch_reason = unusual
        elif projection is not None:
            # The forecast is worked out again every RECOMPUTE_EVERY: look again then.
            rs.due = projection.computed + RECOMPUTE_EVERY
            eta = projection.eta(value)
            if eta is not None and eta <= self.horizon:
                watch_reason = projection.reason(eta)
        else:
            rs.due = _trend_moves(rs.samples, value, now)
            s = slope(rs.samples, now)
            if s is not None and s != 0:
                projected = value + s * self.horizon
                if th.worse(projected, th.breach) and ((s > 0) == (th.direction == "above")):
                    eta = (th.breach - value) / s
                    rate = (
                        format_value(th.measure, abs(s) * 60)
                        if MEASURES[th.measure].kind != "ratio"
                        else (f"{abs(s) * 6000:.1f} pts")
                    )
                    word = "rising" if s > 0 else "falling"
                    watch_reason = (
                        f"{label} {fmt} {word} {rate}/min: {limit} in ~{format_duration(max(eta, 0))}"
                    )
        if watch_reason:
            rs.state = State.WATCH
            rs.calm_since = None
            rs.reason = watch_reason
            return Verdict(State.WATCH, watch_reason, th.measure, value, 1.0 + badness)
        if rs.state is State.WATCH:
            if rs.calm_since is None:
                rs.calm_since = now
            if now - rs.calm_since < max(th.for_, 1e-9):
                rs.due = min(rs.due, rs.calm_since + max(th.for_, 1e-9))
                rs.calm = True
                return Verdict(
                    State.WATCH, f"{label} {fmt}, recovering (was: {rs.reason})", th.measure, value, 1.0
                )
        rs.state = State.OK
        rs.calm_since = None
        rs.calm = True
        return Verdict(State.OK, f"{label} {fmt}", th.measure, value, 0.0)

    def retrend(self, key: SeriesKey, step: Step, now: float) -> bool:
        """Take the trend samples of a series whose figures did not change, and say whether its
        verdict stands without judging it again: True when every threshold whose time came was
        calm (no trend towards a breach) and stays so, and none of their timers ran out.

        What this does is the first part of judging those thresholds; when it returns False the
        series must be judged (:meth:`judge_series`), which carries on from here.
        """
        for idx, th in enumerate(step.thresholds):
            rs = self.rules.get((key, idx))
            if rs is None or rs.due > now:
                continue
            value = rs.value
            if not rs.calm or value is None or rs.awaits_forecast:
                return False
            if (
                rs.state is State.WATCH
                and rs.calm_since is not None
                and now - rs.calm_since >= max(th.for_, 1e-9)
            ):
                return False  # recovered: the verdict changes
            self._missed_samples(rs, now)
            rs.judged_at = now
            samples = rs.samples
            if not samples or now // TREND_SAMPLE > samples[-1][0] // TREND_SAMPLE:
                samples.append((now, value))
                while samples[0][0] < now - TREND_SPAN:
                    samples.popleft()
            s = slope(samples, now)
            if s is not None and s != 0:
                projected = value + s * self.horizon
                if th.worse(projected, th.breach) and ((s > 0) == (th.direction == "above")):
                    return False  # a trend towards a breach: the verdict changes
            due = _trend_moves(samples, value, now)
            if rs.state is State.WATCH and rs.calm_since is not None:
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
            if not samples or at // TREND_SAMPLE > samples[-1][0] // TREND_SAMPLE:
                samples.append((at, value))
                while samples[0][0] < at - TREND_SPAN:
                    samples.popleft()

    def due(self, key: SeriesKey, step: Step) -> tuple[float, bool]:
        """When a series' verdict can next change with its figures unchanged, and whether it
        changes with every tick (see :attr:`RuleState.due` and :attr:`RuleState.every`)."""
        at, every = math.inf, False
        for idx in range(len(step.thresholds)):
            rs = self.rules.get((key, idx))
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
    ) -> Verdict:
        """Judge one series against every threshold of its step that applies to its channel."""
        worst = OK_VERDICT
        first: Verdict | None = None
        for idx, th in enumerate(step.thresholds):
            if not _channel_applies(th, key[1]):
                continue
            if MEASURES[th.measure].windowed:
                wf = figures.get(th.window) or {}
                value = wf.get(th.measure)
                if value is not None and th.min_volume and volume(th.measure, wf) < th.min_volume:
                    value = None
            else:
                value = instant.get(th.measure)
            projection = None if forecast is None else forecast.projection(th)
            verdict = self.judge_rule(key, idx, th, value, now, projection)
            rs = self.rules[(key, idx)]
            rs.awaits_forecast = projection is None and forecast is not None and th.measure in MODELLED
            if rs.awaits_forecast and forecast is not None:
                rs.due = min(rs.due, forecast.ts + RECOMPUTE_EVERY)
            if first is None:
                first = verdict
            if (verdict.state.severity, verdict.badness) > (worst.state.severity, worst.badness):
                worst = verdict
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
        if stale:
            state, reason, measure, value = State.STALE, stale_reason, "", None
        else:
            # The first of the worst, in the series' order (max keeps the first of equals).
            worst = max(verdicts.items(), key=_rank, default=None)
            if worst is None:
                state, reason, measure, value = State.OK, "no contacts yet", "", None
            else:
                key, v = worst
                state, measure, value = v.state, v.measure, v.value
                channel, queue = key[1], key[2]
                reason = v.reason if len(verdicts) == 1 else f"{key[1]}/{key[2]}: {v.reason}"
        previous = self.step_state.get(step.name, State.OK)
        self.step_reason[step.name] = reason
        if step.name not in self.step_since:
            self.step_since[step.name] = now
        if state is previous:
            return state, reason, None
        self.step_state[step.name] = state
        self.step_since[step.name] = now
        return (
            state,
            reason,
            Transition(
                ts=now,
                step=step.name,
                channel=channel,
                queue=queue,
                from_state=previous,
                to_state=state,
                reason=reason,
                measure=measure,
                value=value,
            ),
        )


def _rank(item: tuple[SeriesKey, Verdict]) -> tuple[int, float]:
    verdict = item[1]
    return verdict.state.severity, verdict.badness


def _trend_moves(samples: deque[tuple[float, float]], value: float, now: float) -> float:
    """When the trend of ``samples`` can next change while the value stays ``value``: never when
    every sample in its span already equals it (it stays flat); else at the next sample or when
    the oldest sample leaves the span, whichever comes first."""
    cutoff = now - TREND_SPAN
    oldest = math.inf
    flat = True
    for t, v in samples:
        if t >= cutoff:
            if v != value:
                flat = False
            if t < oldest:
                oldest = t
    if flat:
        return math.inf
    return min((now // TREND_SAMPLE + 1) * TREND_SAMPLE, oldest + TREND_SPAN)


def _channel_applies(th: Threshold, channel: str) -> bool:
    if th.channel == "*":
        return True
    return fnmatch.fnmatchcase(channel, th.channel)
